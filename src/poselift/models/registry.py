"""One registry of lifter architectures: a name for every model kind, its config class and module class.

Weight files (:mod:`poselift.models.weights`) store the kind and the config as
JSON next to the tensors, so any registered lifter is saved, loaded and shipped
by the same mechanism. Every kind maps (B, T, J_in, 2) to
(B, T - receptive_field + 1, J_out, 3); :func:`poselift.train.model_factory.lifter_from_config`
builds one from the ``model`` section of an experiment config, and
:func:`poselift.models.predict.predict_sequences` lifts whole sequences with any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from poselift.errors import CheckpointError
from poselift.models.baseline import BaselineConfig, FCBaselineLifter
from poselift.models.refined import RefinedLifter, RefinedLifterConfig
from poselift.models.rie import RIEConfig, RIELifter
from poselift.models.semgcn import SemGCNConfig, SemGCNLifter, SemGCNRefiner, SemGCNRefinerConfig
from poselift.models.temporal_conv import TemporalConvConfig, TemporalConvLifter, TemporalConvLifterStrided

__all__ = ["LIFTERS", "LifterKind", "build_lifter", "input_joints", "is_causal", "kind_of", "output_joints"]


@dataclass(frozen=True)
class LifterKind:
    name: str
    config_class: type
    module_class: type[nn.Module]
    description: str


LIFTERS: dict[str, LifterKind] = {k.name: k for k in (
    LifterKind("temporal_conv", TemporalConvConfig, TemporalConvLifter,
               "VideoPose3D dilated temporal convolutions (Pavllo et al. CVPR 2019)"),
    LifterKind("rie", RIEConfig, RIELifter, "relative information encoding (Shan et al. ACM MM 2021)"),
    LifterKind("baseline", BaselineConfig, FCBaselineLifter, "fully connected baseline (Martinez et al. ICCV 2017)"),
    LifterKind("semgcn", SemGCNConfig, SemGCNLifter, "semantic graph convolutions (Zhao et al. CVPR 2019)"),
    LifterKind("semgcn_refiner", SemGCNRefinerConfig, SemGCNRefiner, "SemGCN refining a first-stage 3D estimate"),
    LifterKind("refined", RefinedLifterConfig, RefinedLifter, "any lifter followed by a SemGCN refiner"),
)}

# Variants that share a kind's parameters (saved under that kind).
_ALIASES: dict[type, str] = {TemporalConvLifterStrided: "temporal_conv"}


def kind_of(model: nn.Module) -> str:
    """The registered kind name of a lifter instance."""
    for kind in LIFTERS.values():
        if type(model) is kind.module_class:
            return kind.name
    if type(model) in _ALIASES:
        return _ALIASES[type(model)]
    raise CheckpointError(f"{type(model).__name__} is not a registered lifter; registered: {sorted(LIFTERS)}")


def build_lifter(kind: str, config: dict) -> nn.Module:
    """A new lifter of ``kind`` from its JSON config dict (unknown kinds and bad configs are CheckpointErrors)."""
    if kind not in LIFTERS:
        raise CheckpointError(f"unknown lifter kind {kind!r}; registered: {sorted(LIFTERS)}")
    entry = LIFTERS[kind]
    try:
        return entry.module_class(entry.config_class(**config))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"not a valid {kind} config ({exc})") from None


def _joint_count(model: nn.Module, fields: tuple[str, ...], what: str) -> int:
    if isinstance(model, RefinedLifter):  # the chain's input and output are its first stage's
        return _joint_count(model.lifter, fields, what)
    cfg = getattr(model, "config", None)
    for name in fields:
        if hasattr(cfg, name):
            return int(getattr(cfg, name))
    raise CheckpointError(f"cannot tell how many joints a {type(model).__name__} {what}")


def output_joints(model: nn.Module) -> int:
    """How many joints a lifter predicts (J_out)."""
    return _joint_count(model, ("num_joints_out", "num_joints"), "predicts")


def input_joints(model: nn.Module) -> int:
    """How many 2D keypoints per frame a lifter takes (J_in)."""
    return _joint_count(model, ("num_joints_in", "num_joints"), "takes")


def is_causal(model: nn.Module) -> bool:
    """True when output frame t uses input frames <= t only (causal temporal convolutions)."""
    if isinstance(model, RefinedLifter):
        return is_causal(model.lifter)
    return bool(getattr(getattr(model, "config", None), "causal", False))
