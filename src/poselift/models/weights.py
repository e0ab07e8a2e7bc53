"""poselift's own weight files: ``<name>.safetensors`` plus ``<name>.json`` (architecture and notes).

safetensors holds only tensors, so loading never executes code. The JSON
names the model kind and its config so the module can be rebuilt.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from poselift.atomic import atomic_write, atomic_write_text
from poselift.errors import CheckpointError
from poselift.models.temporal_conv import TemporalConvConfig, TemporalConvLifter


def save_model(model: TemporalConvLifter, path: str | Path, *, trajectory: TemporalConvLifter | None = None,
               extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``path`` (.safetensors) and its ``.json`` config; returns both paths."""
    path = Path(path).with_suffix(".safetensors")
    tensors = {f"pos.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if trajectory is not None:
        tensors.update({f"traj.{k}": v.detach().cpu().contiguous() for k, v in trajectory.state_dict().items()})
    meta = {"format": "poselift-weights/1", "kind": "temporal_conv", "config": model.config.to_dict(),
            "has_trajectory": trajectory is not None, **(extra or {})}
    atomic_write(path, lambda tmp: save_file(tensors, tmp))
    json_path = path.with_suffix(".json")
    atomic_write_text(json_path, json.dumps(meta, indent=2) + "\n")
    return path, json_path


def load_model(path: str | Path) -> tuple[TemporalConvLifter, TemporalConvLifter | None, dict]:
    """Rebuild the models saved by :func:`save_model`; returned in eval mode with the JSON metadata."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    json_path = path.with_suffix(".json")
    for p in (path, json_path):
        if not p.is_file():
            raise CheckpointError(f"{p} does not exist (poselift weights are a .safetensors file plus its .json)")
    try:
        meta = json.loads(json_path.read_text())
        config = TemporalConvConfig(**meta["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{json_path}: not a poselift model config ({exc})") from None
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    models = []
    for prefix in ("pos.", "traj."):
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not state:
            models.append(None)
            continue
        cfg = config if prefix == "pos." else TemporalConvConfig(**{**config.to_dict(), "num_joints_out": 1})
        m = TemporalConvLifter(cfg)
        try:
            m.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not match {json_path}: {str(exc).splitlines()[0]}") from None
        models.append(m.eval())
    if models[0] is None:
        raise CheckpointError(f"{path}: no pose-model tensors (keys starting with 'pos.')")
    return models[0], models[1], meta


def state_dict_to_cpu(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
