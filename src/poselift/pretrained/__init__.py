"""Pretrained lifters shipped with poselift (see :mod:`poselift.pretrained.registry` for the model cards)."""

from poselift.pretrained.registry import (CONV_FIELDS, CONV_KINDS, DEFAULT_KIND, ENV_VAR, PACKAGE_WEIGHTS_DIR,
                                          REQUIRED_FIELDS, ModelCard, evaluate_heldout, list_pretrained,
                                          load_pretrained, read_card, resolve_weights_dir, save_pretrained,
                                          validate_card)

__all__ = ["CONV_FIELDS", "CONV_KINDS", "DEFAULT_KIND", "ENV_VAR", "PACKAGE_WEIGHTS_DIR", "REQUIRED_FIELDS",
           "ModelCard", "evaluate_heldout", "list_pretrained", "load_pretrained", "read_card", "resolve_weights_dir",
           "save_pretrained", "validate_card"]
