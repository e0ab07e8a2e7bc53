"""Training checkpoints: a dict of tensors and plain values, loadable with ``weights_only=True``.

Keys follow VideoPose3D's (``epoch``, ``lr``, ``optimizer``, ``model_pos``,
``model_traj``, ``random_state``) so :func:`poselift.load_videopose3d` also reads
poselift checkpoints; NumPy random states are stored as tensors rather than
pickled objects, and ``config``/``history`` record the run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from poselift.atomic import atomic_write
from poselift.errors import CheckpointError
from poselift.models.videopose3d_checkpoint import read_torch_checkpoint

FORMAT = "poselift-checkpoint/1"


def encode_random_state(state: tuple) -> dict:
    name, keys, pos, has_gauss, cached = state
    return {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def decode_random_state(d: dict) -> tuple:
    return (d["name"], d["keys"].numpy().astype(np.uint32), d["pos"], d["has_gauss"], d["cached_gaussian"])


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write atomically (temporary file in the same folder, then rename)."""
    return atomic_write(path, lambda tmp: torch.save({"format": FORMAT, **payload}, tmp))


def load_checkpoint(path: str | Path) -> dict:
    ckpt = read_torch_checkpoint(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a poselift training checkpoint (expected format {FORMAT!r}); "
                              "original VideoPose3D checkpoints can be evaluated but not resumed")
    for key in ("epoch", "lr", "model_pos", "optimizer", "config"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    return ckpt
