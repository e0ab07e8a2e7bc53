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


def save_model(model: torch.nn.Module, path: str | Path, *, trajectory: TemporalConvLifter | None = None,
               extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``path`` (.safetensors) and its ``.json`` config (kind + architecture); returns both paths.

    ``model`` is any lifter in :data:`poselift.models.registry.LIFTERS`; ``trajectory``
    (temporal convolutions only) is stored beside it.
    """
    from poselift.models.registry import kind_of

    kind = kind_of(model)
    path = Path(path).with_suffix(".safetensors")
    tensors = {f"pos.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if trajectory is not None:
        tensors.update({f"traj.{k}": v.detach().cpu().contiguous() for k, v in trajectory.state_dict().items()})
    meta = {"format": "poselift-weights/1", "kind": kind, "config": model.config.to_dict(),
            "has_trajectory": trajectory is not None, **(extra or {})}
    atomic_write(path, lambda tmp: save_file(tensors, tmp))
    json_path = path.with_suffix(".json")
    atomic_write_text(json_path, json.dumps(meta, indent=2) + "\n")
    return path, json_path


def load_model(path: str | Path) -> tuple[torch.nn.Module, TemporalConvLifter | None, dict]:
    """Rebuild the models saved by :func:`save_model`; returned in eval mode with the JSON metadata.

    Files without a ``kind`` (written before the registry) are temporal convolutions.
    """
    from poselift.models.registry import build_lifter
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    json_path = path.with_suffix(".json")
    for p in (path, json_path):
        if not p.is_file():
            raise CheckpointError(f"{p} does not exist (poselift weights are a .safetensors file plus its .json)")
    try:
        meta = json.loads(json_path.read_text())
        kind, config = meta.get("kind", "temporal_conv"), dict(meta["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
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
        if prefix == "pos.":
            try:
                m = build_lifter(kind, config)
            except CheckpointError as exc:
                raise CheckpointError(f"{json_path}: {exc}") from None
        elif kind == "temporal_conv":
            m = TemporalConvLifter(TemporalConvConfig(**{**config, "num_joints_out": 1}))
        else:
            raise CheckpointError(f"{path}: a trajectory model is only defined for temporal convolutions, not {kind}")
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
