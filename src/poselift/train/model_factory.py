"""Build the lifter an experiment's ``model`` section describes, for a dataset's keypoint layout.

The trainer, ``poselift evaluate`` on a training checkpoint and the ablation
runner all call :func:`lifter_from_config`, so ``model.kind`` means the same
thing everywhere. Kinds whose inputs are per joint (RIE's body-part groups, the
SemGCN graph) need the 2D keypoints in the same joint order as the 3D skeleton
(``same_layout``); the temporal convolutions and the FC baseline take any layout.
"""

from __future__ import annotations

from torch import nn

from poselift.errors import ConfigError
from poselift.models.baseline import BaselineConfig, FCBaselineLifter
from poselift.models.refined import RefinedLifter, RefinedLifterConfig
from poselift.models.rie import REFERENCE_GROUPS, RIEConfig, RIELifter
from poselift.models.semgcn import SemGCNConfig, SemGCNLifter, SemGCNRefinerConfig
from poselift.models.temporal_conv import TemporalConvConfig, TemporalConvLifter
from poselift.skeleton import H36M_17
from poselift.train.config import ModelConfig

#: channels and dropout when the config leaves them unset (None: the kind has no such setting)
KIND_DEFAULTS: dict[str, dict[str, float | int | None]] = {
    "temporal_conv": {"channels": 1024, "dropout": 0.25},
    "rie": {"channels": 256, "dropout": 0.2},
    "baseline": {"channels": None, "dropout": 0.5},
    "semgcn": {"channels": None, "dropout": None},
}


def _default(m: ModelConfig, name: str):
    value = getattr(m, name)
    return KIND_DEFAULTS[m.kind][name] if value is None else value


def lifter_from_config(m: ModelConfig, *, num_joints_in: int, num_joints_out: int, parents: list[int] | None,
                       same_layout: bool, num_joints_traj: int | None = None) -> nn.Module:
    """A fresh lifter for ``m`` (train mode); ``num_joints_traj`` builds a trajectory twin (temporal_conv only).

    Args:
        num_joints_in / num_joints_out: 2D keypoints per frame / 3D joints predicted.
        parents: the 3D skeleton's tree (SemGCN's graph); None if unknown.
        same_layout: the 2D keypoints are the 3D skeleton's joints in the same order.
    """
    kind = m.kind
    if kind not in KIND_DEFAULTS:
        raise ConfigError(f"model.kind: unknown {kind!r}; choose from {sorted(KIND_DEFAULTS)}")
    if kind in ("rie", "semgcn") and num_joints_traj is None:
        if not same_layout:
            raise ConfigError(f"model.kind {kind} works on the skeleton's own joints: the 2D keypoints must be the "
                              "3D skeleton's joints in the same order (e.g. keypoints gt, not a COCO layout)")
    joints_out = num_joints_out if num_joints_traj is None else num_joints_traj
    try:
        if kind == "temporal_conv":
            lifter = TemporalConvLifter(TemporalConvConfig(
                num_joints_in=num_joints_in, in_features=2, num_joints_out=joints_out,
                filter_widths=list(m.architecture), causal=m.causal, dropout=_default(m, "dropout"),
                channels=_default(m, "channels"), dense=m.dense))
        elif num_joints_traj is not None:
            raise ConfigError(f"a trajectory model is only defined for temporal_conv, not {kind}")
        elif kind == "rie":
            lifter = RIELifter(_rie_config(m, num_joints_out, parents))
        elif kind == "baseline":
            lifter = FCBaselineLifter(BaselineConfig(
                num_joints_in=num_joints_in, in_features=2, num_joints_out=num_joints_out,
                linear_size=m.linear_size, num_stages=m.num_stages, dropout=_default(m, "dropout")))
        else:
            lifter = SemGCNLifter(_semgcn_config(m, parents, num_joints_out))
        if m.refiner and num_joints_traj is None:
            refiner = _semgcn_config(m, parents, num_joints_out, refiner=True, uses_2d=same_layout)
            lifter = RefinedLifter(RefinedLifterConfig(lifter_kind=kind, lifter=lifter.config.to_dict(),
                                                       refiner=refiner.to_dict()))
    except ValueError as exc:
        raise ConfigError(f"model: {exc}") from None
    return lifter


def _rie_config(m: ModelConfig, num_joints: int, parents: list[int] | None) -> RIEConfig:
    if num_joints != 17 or (parents is not None and list(parents) != list(H36M_17.parents)):
        raise ConfigError("model.kind rie: the body-part groups are defined for the Human3.6M-17 skeleton")
    return RIEConfig(num_joints=num_joints, filter_widths=list(m.architecture), channels=_default(m, "channels"),
                     latent_dim=m.latent_dim, mlp_channels=m.mlp_channels, dropout=_default(m, "dropout"),
                     groups=[list(g) for g in REFERENCE_GROUPS])


def _semgcn_config(m: ModelConfig, parents: list[int] | None, num_joints: int, *, refiner: bool = False,
                   uses_2d: bool = True):
    if parents is None or len(parents) != num_joints:
        raise ConfigError(f"SemGCN needs the 3D skeleton's parents for its graph ({num_joints} joints)")
    # The lifter's dropout setting is the first stage's; a refiner keeps SemGCN's default (none).
    p_dropout = None if refiner or m.kind != "semgcn" else _default(m, "dropout")
    common = dict(parents=list(parents), hid_dim=m.hid_dim, num_layers=m.num_layers, non_local=m.non_local,
                  p_dropout=p_dropout)
    if refiner:
        return SemGCNRefinerConfig(in_features=5 if uses_2d else 3, **common)
    return SemGCNConfig(in_features=2, **common)


def describe_lifter(model: nn.Module) -> str:
    """One line: kind, receptive field, parameter count."""
    from poselift.models.registry import kind_of

    kind = kind_of(model)
    if isinstance(model, RefinedLifter):
        kind = f"{kind_of(model.lifter)} + SemGCN refiner"
    n = sum(p.numel() for p in model.parameters())
    return f"{kind}, receptive field {model.receptive_field} frames, {n:,} parameters"
