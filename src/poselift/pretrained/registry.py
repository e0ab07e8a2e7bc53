"""Pretrained lifters shipped with poselift: model cards, listing, loading and the held-out check.

Each model is two files in the weights folder (default: ``poselift/pretrained/weights/``
inside the installed package; overridden by the ``weights_dir`` argument, then by the
``POSELIFT_PRETRAINED_DIR`` environment variable):

``<name>.safetensors``
    the tensors, as written by :func:`poselift.models.weights.save_model`.
``<name>.json``
    the **model card**: the JSON ``save_model`` writes (``format``, ``kind`` — any
    lifter kind in :data:`poselift.models.registry.LIFTERS`; a card without one is
    ``"temporal_conv"`` —, ``config`` — that kind's config, e.g.
    :class:`~poselift.models.temporal_conv.TemporalConvConfig` — and ``has_trajectory``)
    plus the card fields below. :func:`save_pretrained` writes both files and fills in
    the fields that follow from the model.

Card fields (all required; :func:`validate_card` checks them, building the model from
``kind`` and ``config``):

``name`` (str)
    the model's name, equal to the file stem (``[A-Za-z0-9][A-Za-z0-9._-]*``).
``description`` (str)
    one line for people: what the model is for.
``input_layout`` ("h36m" or "coco")
    the 17-joint 2D keypoint layout the model takes (Human3.6M-17 or COCO-17).
``output_layout`` ("h36m")
    the 3D joint layout it predicts (root-relative metres, Human3.6M-17).
``receptive_field`` (int)
    input frames per output frame; must equal the model's (1 for the single-frame
    kinds ``baseline`` and ``semgcn``; a ``refined`` model's is its first stage's).
``parameters`` (int)
    trainable parameters of the pose model (the trajectory model is not counted);
    checked against the weights when the model is loaded.
``training_data`` (str)
    what the model was trained on (data set, subjects/clips, 2D source, noise).
``training_command`` (str)
    the command(s) that reproduce the weights.
``metrics`` (dict, at least one entry)
    protocol name -> ``{"mpjpe", "p_mpjpe", "n_mpjpe", "mpjve"}`` in millimetres
    (P1, P2, P3 and velocity error), e.g. ``"cmu_open_gt"`` (exact 2D projections of
    held-out CMU clips) and ``"cmu_open_noisy"`` (the same with detector-like noise).
``license`` (str)
    the weights' licence (and the training data's terms where they matter).
``created`` (str)
    creation date, ISO 8601 (``"2025-01-31"``).

Kind-dependent fields (:data:`CONV_FIELDS`): they describe temporal convolutions, so they
are required for the kinds in :data:`CONV_KINDS` (``temporal_conv``, ``rie``, and a
``refined`` model whose first stage is one of them, which they then describe) and must be
absent or ``null`` for every other kind (``baseline``, ``semgcn``, ``semgcn_refiner``, a
``refined`` model over those; :func:`save_pretrained` writes ``null``):

``architecture`` (list of int)
    filter widths, e.g. ``[3, 3, 3]``; must equal the config's ``filter_widths``.
``channels`` (int)
    convolution channels; must equal the config's ``channels``.

Held-out check fields (optional for a card in general, but every card shipped in the
package must have them: ``tests/test_pretrained.py::test_shipped_models_meet_their_cards``
re-measures each shipped model with :func:`evaluate_heldout` and fails without them):

``heldout_clips`` (list of str)
    CMU BVH files relative to the shared data folder (``"cmu-131/131_02.bvh"``),
    none of them used for training. A couple of clips keeps the check fast.
``heldout_noise`` ("gt" or "noisy")
    "gt": exact projections (``data_2d_cmu_gt.npz`` for h36m input,
    ``data_2d_cmu_coco_gt.npz`` for coco input); "noisy": COCO-17 keypoints with
    :data:`poselift.data.cmu_dataset.DEFAULT_NOISE` (``data_2d_cmu_coco_noisy.npz``;
    coco input only).
``heldout_check`` (dict)
    ``{"mpjpe": P1 in mm measured by evaluate_heldout, "margin": allowed relative
    excess, e.g. 0.05}``; optional keys ``"fps"`` (50), ``"cameras"`` (4),
    ``"seed"`` (0) and ``"test_time_augmentation"`` (true) are passed to
    :func:`poselift.data.cmu_dataset.build_cmu_dataset` / the evaluation.

Any other keys (``metrics_mm``, ``epochs``, ``keypoints_symmetry`` ... as the trainer
writes them) are kept in :attr:`ModelCard.raw`.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poselift.errors import CheckpointError, ConfigError
from poselift.skeleton import get_skeleton

if TYPE_CHECKING:
    from torch import nn

    from poselift.models.temporal_conv import TemporalConvLifter
    from poselift.train.evaluation import EvaluationReport

__all__ = ["CONV_FIELDS", "CONV_KINDS", "DEFAULT_KIND", "ENV_VAR", "PACKAGE_WEIGHTS_DIR", "REQUIRED_FIELDS",
           "ModelCard", "evaluate_heldout", "list_pretrained", "load_pretrained", "read_card", "resolve_weights_dir",
           "save_pretrained", "validate_card"]

#: Environment variable naming a weights folder to use instead of the package's.
ENV_VAR = "POSELIFT_PRETRAINED_DIR"
#: The weights folder inside the installed package.
PACKAGE_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Card fields every card needs, whatever the model kind.
REQUIRED_FIELDS = ("name", "description", "input_layout", "output_layout", "receptive_field", "parameters",
                   "training_data", "training_command", "metrics", "license", "created")
#: Card fields describing temporal convolutions: required for :data:`CONV_KINDS`, absent or null otherwise.
CONV_FIELDS = ("architecture", "channels")
#: Lifter kinds built from temporal convolutions (``filter_widths`` and ``channels`` in their config).
CONV_KINDS = ("temporal_conv", "rie")
#: The kind of a card without a ``kind`` field (cards written before the lifter registry).
DEFAULT_KIND = "temporal_conv"
INPUT_LAYOUTS = ("h36m", "coco")
OUTPUT_LAYOUTS = ("h36m",)
METRIC_KEYS = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve")
HELDOUT_NOISE = ("gt", "noisy")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class ModelCard:
    """A validated model card: ``kind`` the lifter kind, ``path`` the ``.safetensors`` file, ``raw`` the JSON."""

    name: str
    description: str
    input_layout: str
    output_layout: str
    receptive_field: int
    parameters: int
    metrics: dict[str, dict[str, float]]
    kind: str
    path: Path
    raw: dict = field(repr=False)

    @property
    def card_path(self) -> Path:
        return self.path.with_suffix(".json")

    @property
    def size_mb(self) -> float:
        """Size of the weights file in megabytes (10^6 bytes)."""
        return self.path.stat().st_size / 1e6

    def to_dict(self) -> dict:
        """The card JSON plus ``path`` and ``size_mb`` (what ``poselift models --json`` prints)."""
        return {**self.raw, "kind": self.kind, "path": str(self.path), "size_mb": round(self.size_mb, 3)}


def resolve_weights_dir(weights_dir: str | Path | None = None) -> Path:
    """``weights_dir`` if given, else ``$POSELIFT_PRETRAINED_DIR`` if set, else the package's folder."""
    if weights_dir is not None:
        return Path(weights_dir)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else PACKAGE_WEIGHTS_DIR


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_card(card: Any, path: str | Path) -> None:
    """Raise :class:`CheckpointError` naming ``path`` and the field unless ``card`` is a complete model card."""
    path = Path(path)
    if not isinstance(card, dict):
        raise CheckpointError(f"{path}: a model card must be a JSON object, got {type(card).__name__}")
    missing = [f for f in (*REQUIRED_FIELDS, "config") if f not in card]
    if missing:
        raise CheckpointError(f"{path}: model card is missing field{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(repr(f) for f in missing)}")

    def bad(name: str, expected: str) -> CheckpointError:
        return CheckpointError(f"{path}: model card field {name!r} should be {expected}, got {card[name]!r}")

    for name in ("name", "description", "training_data", "training_command", "license", "created"):
        if not isinstance(card[name], str) or not card[name].strip():
            raise bad(name, "a non-empty string")
    if not _NAME.fullmatch(card["name"]) or card["name"] != path.stem:
        raise bad("name", f"the file name {path.stem!r} (letters, digits, '.', '_', '-')")
    if card["input_layout"] not in INPUT_LAYOUTS:
        raise bad("input_layout", " or ".join(repr(v) for v in INPUT_LAYOUTS))
    if card["output_layout"] not in OUTPUT_LAYOUTS:
        raise bad("output_layout", " or ".join(repr(v) for v in OUTPUT_LAYOUTS))
    for name in ("receptive_field", "parameters"):
        if not _is_int(card[name]) or card[name] < 1:
            raise bad(name, "a positive integer")
    metrics = card["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise bad("metrics", 'a non-empty object {protocol: {"mpjpe", "p_mpjpe", "n_mpjpe", "mpjve"}}')
    for protocol, values in metrics.items():
        if not isinstance(values, dict) or not all(_is_number(values.get(k)) for k in METRIC_KEYS):
            raise CheckpointError(f"{path}: model card field 'metrics' entry {protocol!r} should give "
                                  f"{', '.join(METRIC_KEYS)} in mm, got {values!r}")

    from poselift.models.registry import input_joints, output_joints

    model = _card_model(card, path, bad)
    if card["receptive_field"] != model.receptive_field:
        raise CheckpointError(f"{path}: model card field 'receptive_field' is {card['receptive_field']!r} but the "
                              f"model config says {model.receptive_field!r}")
    _validate_conv_fields(card, path, bad, model)
    for name, joints in (("input_layout", input_joints(model)), ("output_layout", output_joints(model))):
        expected = get_skeleton(card[name]).num_joints
        if joints != expected:
            raise CheckpointError(f"{path}: model card field {name!r} is {card[name]!r} ({expected} joints) but "
                                  f"the model config has {joints}")

    _validate_heldout(card, path, bad)


def _card_kind(card: dict) -> str:
    """The lifter kind of a card (``kind``; :data:`DEFAULT_KIND` when absent)."""
    return card.get("kind", DEFAULT_KIND)


def _card_model(card: dict, path: Path, bad) -> nn.Module:
    """The (untrained) lifter that the card's ``kind`` and ``config`` describe."""
    from poselift.models.registry import LIFTERS, build_lifter

    kind = _card_kind(card)
    if not isinstance(kind, str) or kind not in LIFTERS:
        raise CheckpointError(f"{path}: model card field 'kind' should be one of "
                              f"{', '.join(repr(k) for k in LIFTERS)}, got {kind!r}")
    if not isinstance(card["config"], dict):
        raise bad("config", f"an object (a {kind} config)")
    try:
        return build_lifter(kind, card["config"])
    except (CheckpointError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: model card field 'config' does not describe a {kind} lifter: {exc}") from None


def _first_stage(model: nn.Module) -> nn.Module:
    from poselift.models.refined import RefinedLifter

    return model.lifter if isinstance(model, RefinedLifter) else model


def _conv_fields(model: nn.Module) -> dict[str, Any] | None:
    """The card's ``architecture`` and ``channels`` for ``model`` (a refined model: its first stage's);
    ``None`` for a kind without temporal convolutions."""
    from poselift.models.registry import kind_of

    first = _first_stage(model)
    if kind_of(first) not in CONV_KINDS:
        return None
    return {"architecture": [int(w) for w in first.config.filter_widths], "channels": int(first.config.channels)}


def _describe_kind(model: nn.Module) -> str:
    from poselift.models.registry import kind_of

    kind, first = kind_of(model), kind_of(_first_stage(model))
    return f"a {kind} lifter" if kind == first else f"a {kind} lifter over {first}"


def _validate_conv_fields(card: dict, path: Path, bad, model: nn.Module) -> None:
    """``architecture`` and ``channels``: required and equal to the config's for temporal convolutions,
    absent or null for the other kinds."""
    expected = _conv_fields(model)
    if expected is None:
        for name in CONV_FIELDS:
            if card.get(name) is not None:
                raise CheckpointError(f"{path}: model card field {name!r} should be absent or null for "
                                      f"{_describe_kind(model)} (no temporal convolutions), got {card[name]!r}")
        return
    missing = [f for f in CONV_FIELDS if f not in card]
    if missing:
        raise CheckpointError(f"{path}: model card is missing field{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(repr(f) for f in missing)} (required for {_describe_kind(model)})")
    if not _is_int(card["channels"]) or card["channels"] < 1:
        raise bad("channels", "a positive integer")
    arch = card["architecture"]
    if not isinstance(arch, list) or not arch or not all(_is_int(w) and w >= 1 and w % 2 == 1 for w in arch):
        raise bad("architecture", "a list of odd filter widths like [3, 3, 3]")
    for name, actual in expected.items():
        if card[name] != actual:
            raise CheckpointError(f"{path}: model card field {name!r} is {card[name]!r} but the model config "
                                  f"says {actual!r}")


def _validate_heldout(card: dict, path: Path, bad) -> None:
    present = [f for f in ("heldout_clips", "heldout_noise", "heldout_check") if f in card]
    if not present:
        return
    missing = [f for f in ("heldout_clips", "heldout_noise", "heldout_check") if f not in card]
    if missing:
        raise CheckpointError(f"{path}: model card has {present[0]!r} but is missing field "
                              f"{', '.join(repr(f) for f in missing)} (the held-out check needs all three)")
    clips = card["heldout_clips"]
    if not isinstance(clips, list) or not clips or not all(isinstance(c, str) and c.lower().endswith(".bvh")
                                                            for c in clips):
        raise bad("heldout_clips", 'a non-empty list of BVH paths like "cmu-131/131_02.bvh"')
    if any(Path(c).is_absolute() or ".." in Path(c).parts for c in clips):
        raise bad("heldout_clips", "paths relative to the shared data folder, without '..'")
    if card["heldout_noise"] not in HELDOUT_NOISE:
        raise bad("heldout_noise", " or ".join(repr(v) for v in HELDOUT_NOISE))
    if card["heldout_noise"] == "noisy" and card["input_layout"] != "coco":
        raise bad("heldout_noise", "'gt' for an h36m-input model (detector-like noise exists for coco input only)")
    check = card["heldout_check"]
    if not isinstance(check, dict) or not _is_number(check.get("mpjpe")) or not _is_number(check.get("margin")) \
            or check["mpjpe"] <= 0 or check["margin"] < 0:
        raise bad("heldout_check", '{"mpjpe": P1 in mm > 0, "margin": relative allowance >= 0}')


def read_card(card_path: str | Path) -> ModelCard:
    """Read and validate one card; its weights must sit next to it."""
    card_path = Path(card_path)
    try:
        raw = json.loads(card_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{card_path}: no such model card") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{card_path}: not a readable JSON model card ({exc})") from None
    validate_card(raw, card_path)
    weights = card_path.with_suffix(".safetensors")
    if not weights.is_file():
        raise CheckpointError(f"{card_path}: the weights file {weights.name} is missing next to the card")
    return ModelCard(name=raw["name"], description=raw["description"], input_layout=raw["input_layout"],
                     output_layout=raw["output_layout"], receptive_field=raw["receptive_field"],
                     parameters=raw["parameters"], metrics=raw["metrics"], kind=_card_kind(raw), path=weights,
                     raw=raw)


def _card_paths(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.json") if p.is_file())


def list_pretrained(weights_dir: str | Path | None = None) -> list[ModelCard]:
    """Every model card in the weights folder, validated, sorted by name ([] when the folder is absent)."""
    cards = [read_card(p) for p in _card_paths(resolve_weights_dir(weights_dir))]
    return sorted(cards, key=lambda c: c.name)


def _unknown(name: str, directory: Path) -> CheckpointError:
    available = [p.stem for p in _card_paths(directory)]
    if not available:
        return CheckpointError(f"unknown pretrained model {name!r}: no pretrained models are installed in "
                               f"{directory} (set {ENV_VAR} to a folder of <name>.safetensors + <name>.json)")
    return CheckpointError(f"unknown pretrained model {name!r}; available: {', '.join(available)}")


def load_pretrained(name: str, weights_dir: str | Path | None = None) -> tuple[nn.Module, ModelCard]:
    """The pose model (any registered lifter kind, eval mode) and card of the shipped model ``name``.

    Raises:
        CheckpointError: unknown name (the message lists the available ones), an
            invalid card, missing weights, or weights that do not match the card.
    """
    from poselift.models.weights import load_model

    directory = resolve_weights_dir(weights_dir)
    card_path = directory / f"{name}.json"
    if not isinstance(name, str) or not _NAME.fullmatch(name) or not card_path.is_file():
        raise _unknown(str(name), directory)
    card = read_card(card_path)
    model, _, _ = load_model(card.path)
    count = sum(p.numel() for p in model.parameters())
    if count != card.parameters:
        raise CheckpointError(f"{card_path}: model card field 'parameters' is {card.parameters} but "
                              f"{card.path.name} holds a model with {count}")
    return model.eval(), card


def save_pretrained(model: nn.Module, name: str, weights_dir: str | Path, *,
                    trajectory: TemporalConvLifter | None = None, **fields: Any) -> ModelCard:
    """Write ``weights_dir/<name>.safetensors`` and its card; returns the validated card.

    ``model`` is any lifter in :data:`poselift.models.registry.LIFTERS` (``trajectory``:
    temporal convolutions only). ``fields`` are the card fields that do not follow from
    the model (description, input_layout, training_data, training_command, metrics,
    license, created, optionally the heldout_* fields and anything else to keep);
    ``name``, ``output_layout`` ("h36m"), ``receptive_field``, ``architecture`` and
    ``channels`` (null for a kind without temporal convolutions), ``parameters`` and
    ``kind`` are filled in (``config`` by :func:`~poselift.models.weights.save_model`).
    """
    from poselift.models.registry import kind_of
    from poselift.models.weights import save_model

    if not _NAME.fullmatch(name):
        raise ConfigError(f"model name {name!r}: use letters, digits, '.', '_' and '-' only")
    card = {"output_layout": "h36m", **fields, "name": name, "kind": kind_of(model),
            "receptive_field": int(model.receptive_field),
            **(_conv_fields(model) or dict.fromkeys(CONV_FIELDS)),
            "parameters": sum(p.numel() for p in model.parameters())}
    directory = Path(weights_dir)
    validate_card({**card, "config": model.config.to_dict()}, directory / f"{name}.json")
    directory.mkdir(parents=True, exist_ok=True)
    save_model(model, directory / f"{name}.safetensors", trajectory=trajectory, extra=card)
    return read_card(directory / f"{name}.json")


def evaluate_heldout(card: ModelCard, data_root: str | Path, work_dir: str | Path, *,
                     model: nn.Module | None = None) -> EvaluationReport:
    """Re-measure a model on its card's held-out CMU clips (see the module doc, ``heldout_*`` fields).

    Builds the CMU dataset files for ``heldout_clips`` (paths relative to
    ``data_root``) in ``work_dir`` and evaluates on every subject in them.
    ``model`` defaults to the card's weights.
    """
    from poselift.data.cmu_dataset import (DEFAULT_NOISE, FILE_2D_COCO_GT, FILE_2D_COCO_NOISY, FILE_2D_GT, FILE_3D,
                                           build_cmu_dataset)
    from poselift.data.dataset import load_dataset
    from poselift.models.registry import is_causal
    from poselift.models.weights import load_model
    from poselift.train.evaluation import evaluate_sequences

    raw = card.raw
    if "heldout_check" not in raw:
        raise CheckpointError(f"{card.card_path}: model card has no held-out check "
                              "(fields 'heldout_clips', 'heldout_noise', 'heldout_check')")
    data_root, work_dir = Path(data_root), Path(work_dir)
    clips = [data_root / c for c in raw["heldout_clips"]]
    absent = [str(c) for c in clips if not c.is_file()]
    if absent:
        raise ConfigError(f"{card.card_path}: held-out clips not found: {', '.join(absent)}")
    check = raw["heldout_check"]
    noisy = raw["heldout_noise"] == "noisy"
    build_cmu_dataset(data_root, work_dir, fps=float(check.get("fps", 50.0)),
                      cameras_per_clip=int(check.get("cameras", 4)), noise=DEFAULT_NOISE if noisy else None,
                      seed=int(check.get("seed", 0)), progress=False, find_clips=lambda _src: clips)
    file_2d = FILE_2D_GT if card.input_layout == "h36m" else FILE_2D_COCO_NOISY if noisy else FILE_2D_COCO_GT
    dataset = load_dataset(work_dir / file_2d, work_dir / FILE_3D)
    if model is None:
        model, _, _ = load_model(card.path)
    sequences = dataset.select(dataset.subjects())
    return evaluate_sequences(model, sequences, dataset, causal=is_causal(model),
                              test_time_augmentation=bool(check.get("test_time_augmentation", True)))
