"""Pretrained lifters shipped with poselift (see :mod:`poselift.pretrained.registry` for the model cards)."""

from poselift.pretrained.registry import (ENV_VAR, PACKAGE_WEIGHTS_DIR, REQUIRED_FIELDS, ModelCard, evaluate_heldout,
                                          list_pretrained, load_pretrained, read_card, resolve_weights_dir,
                                          save_pretrained, validate_card)

__all__ = ["ENV_VAR", "PACKAGE_WEIGHTS_DIR", "REQUIRED_FIELDS", "ModelCard", "evaluate_heldout", "list_pretrained",
           "load_pretrained", "read_card", "resolve_weights_dir", "save_pretrained", "validate_card"]
