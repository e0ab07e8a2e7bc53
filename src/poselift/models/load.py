"""Load a lifter from any file poselift knows: poselift weights, poselift checkpoints, VideoPose3D ``.bin``."""

from __future__ import annotations

from pathlib import Path

import torch

from poselift.errors import CheckpointError
from poselift.models.temporal_conv import TemporalConvLifter
from poselift.models.videopose3d_checkpoint import build_from_state, load_videopose3d, read_torch_checkpoint
from poselift.models.weights import load_model


def _load_registered(path: Path, lifter: dict, state) -> torch.nn.Module:
    """A non-temporal-conv lifter from a training checkpoint's ``lifter`` record and ``model_pos`` state."""
    from poselift.models.registry import build_lifter

    if not isinstance(state, dict) or not isinstance(lifter.get("config"), dict):
        raise CheckpointError(f"{path}: the checkpoint's lifter record or model_pos is malformed")
    model = build_lifter(str(lifter["kind"]), lifter["config"])
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: model_pos does not match its {lifter['kind']} config: "
                              f"{str(exc).splitlines()[0]}") from None
    return model.eval()


def load_lifter(path: str | Path, *, causal: bool | None = None, dense: bool = False
                ) -> tuple[torch.nn.Module, TemporalConvLifter | None]:
    """(pose model, trajectory model or None), in eval mode; the pose model is any registered kind.

    ``causal`` applies to VideoPose3D checkpoints, which do not record it;
    poselift files carry their own architecture.
    """
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        pos, traj, _ = load_model(path)
        return pos, traj
    ckpt = read_torch_checkpoint(path)
    if isinstance(ckpt, dict) and ckpt.get("format", "").startswith("poselift-checkpoint"):
        model_cfg = ckpt["config"]["model"]
        is_causal = bool(model_cfg.get("causal", False))
        if ckpt.get("lifter"):  # checkpoints since the registry record the lifter's kind and config
            pos = _load_registered(path, ckpt["lifter"], ckpt.get("model_pos"))
        else:
            pos, _ = build_from_state(ckpt["model_pos"], f"{path} [model_pos]", causal=is_causal,
                                      dense=bool(model_cfg.get("dense", False)),
                                      dropout=float(model_cfg.get("dropout") or 0.25))
        traj = None
        if isinstance(ckpt.get("model_traj"), dict):
            traj, _ = build_from_state(ckpt["model_traj"], f"{path} [model_traj]", causal=is_causal,
                                       dense=bool(model_cfg.get("dense", False)))
        return pos, traj
    if isinstance(ckpt, dict) and "model_pos" in ckpt:
        loaded = load_videopose3d(path, causal=bool(causal), dense=dense)
        return loaded.model_pos, loaded.model_traj
    raise CheckpointError(f"{path}: neither poselift weights/checkpoint nor a VideoPose3D checkpoint")
