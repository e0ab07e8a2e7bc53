"""Load a lifter from any file poselift knows: poselift weights, poselift checkpoints, VideoPose3D ``.bin``."""

from __future__ import annotations

from pathlib import Path

from poselift.errors import CheckpointError
from poselift.models.temporal_conv import TemporalConvLifter
from poselift.models.videopose3d_checkpoint import build_from_state, load_videopose3d, read_torch_checkpoint
from poselift.models.weights import load_model


def load_lifter(path: str | Path, *, causal: bool | None = None, dense: bool = False
                ) -> tuple[TemporalConvLifter, TemporalConvLifter | None]:
    """(pose model, trajectory model or None), in eval mode.

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
        pos, _ = build_from_state(ckpt["model_pos"], f"{path} [model_pos]", causal=is_causal,
                                  dense=bool(model_cfg.get("dense", False)), dropout=float(model_cfg.get("dropout", 0.25)))
        traj = None
        if isinstance(ckpt.get("model_traj"), dict):
            traj, _ = build_from_state(ckpt["model_traj"], f"{path} [model_traj]", causal=is_causal,
                                       dense=bool(model_cfg.get("dense", False)))
        return pos, traj
    if isinstance(ckpt, dict) and "model_pos" in ckpt:
        loaded = load_videopose3d(path, causal=bool(causal), dense=dense)
        return loaded.model_pos, loaded.model_traj
    raise CheckpointError(f"{path}: neither poselift weights/checkpoint nor a VideoPose3D checkpoint")
