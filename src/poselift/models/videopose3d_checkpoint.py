"""Load original VideoPose3D checkpoints (``.bin``) safely, inferring the architecture.

A VideoPose3D checkpoint is ``torch.save`` of a dict with ``model_pos`` (a state
dict), optionally ``model_traj``, ``epoch``, ``lr``, ``optimizer`` and the
training generators' ``random_state`` (a NumPy ``RandomState``). It is a
pickle, so it is opened with ``torch.load(weights_only=True)``, which refuses
arbitrary code; the only non-tensor globals allowed are the ones NumPy uses to
rebuild a ``RandomState`` and plain arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from poselift.errors import CheckpointError
from poselift.models.temporal_conv import TemporalConvConfig, TemporalConvLifter

REQUIRED_KEYS = ("expand_conv.weight", "expand_bn.weight", "shrink.weight", "shrink.bias")


def _numpy_safe_globals() -> list:
    import numpy.random._pickle as np_pickle

    allowed = [np.ndarray, np.dtype, np.random.RandomState, np_pickle.__randomstate_ctor]
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    allowed.append(_reconstruct)
    allowed += [type(np.dtype(t)) for t in ("uint32", "float64", "int64", "uint64", "float32")]
    bit_gen = getattr(np_pickle, "__bit_generator_ctor", None)
    if bit_gen is not None:
        allowed.append(bit_gen)
    allowed.append(np.random.MT19937)
    return allowed


def read_torch_checkpoint(path: str | Path) -> object:
    """``torch.load(weights_only=True)`` with NumPy's RandomState allowed; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} could not be loaded as a safe PyTorch checkpoint (weights only): {first_line}"
        ) from None


@dataclass
class VideoPose3DCheckpoint:
    """What :func:`load_videopose3d` returns: eval-mode models plus the training metadata."""

    model_pos: TemporalConvLifter
    model_traj: TemporalConvLifter | None
    config: TemporalConvConfig
    epoch: int | None
    lr: float | None


def infer_config(state: dict, source: str = "state dict", *, in_features: int = 2,
                 causal: bool = False, dense: bool = False, dropout: float = 0.25) -> TemporalConvConfig:
    """Architecture from tensor shapes.

    Shapes fix channels, joints and filter widths. They cannot tell ``causal``
    (same weights, different alignment) and, for some widths, dense from
    dilated kernels, so those are arguments (VideoPose3D's defaults: off).
    """
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{source}: not a VideoPose3D temporal model state dict; missing {missing}")
    w = state["expand_conv.weight"]
    if w.dim() != 3:
        raise CheckpointError(f"{source}: expand_conv.weight should be 3-D (channels, joints*2, width), got {tuple(w.shape)}")
    channels, in_dim, width0 = (int(s) for s in w.shape)
    if in_dim % in_features:
        raise CheckpointError(f"{source}: expand_conv input size {in_dim} is not a multiple of {in_features} features")
    widths = [width0]
    n_layers = len([k for k in state if k.startswith("layers_conv.") and k.endswith(".weight")])
    if n_layers % 2:
        raise CheckpointError(f"{source}: expected pairs of layers_conv weights, found {n_layers}")
    dilation = width0
    for i in range(0, n_layers, 2):
        k = int(state[f"layers_conv.{i}.weight"].shape[-1])
        if dense:
            if (k - 1) % dilation or ((k - 1) // dilation) % 2:
                raise CheckpointError(f"{source}: layers_conv.{i} kernel {k} does not fit a dense layout")
            widths.append((k - 1) // dilation + 1)
        else:
            widths.append(k)
        dilation *= widths[-1]
    shrink_out = int(state["shrink.weight"].shape[0])
    if shrink_out % 3:
        raise CheckpointError(f"{source}: shrink outputs {shrink_out} values, not a multiple of 3")
    return TemporalConvConfig(
        num_joints_in=in_dim // in_features, in_features=in_features, num_joints_out=shrink_out // 3,
        filter_widths=widths, causal=causal, dropout=dropout, channels=channels, dense=dense,
    )


def build_from_state(state: dict, source: str, **arch) -> tuple[TemporalConvLifter, TemporalConvConfig]:
    config = infer_config(state, source, **arch)
    model = TemporalConvLifter(config)
    try:
        model.load_state_dict({k: v for k, v in state.items()})
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: weights do not fit the inferred architecture: {str(exc).splitlines()[0]}") from None
    return model.eval(), config


def load_videopose3d(path: str | Path, *, causal: bool = False, dense: bool = False,
                     expected_joints: int | None = None) -> VideoPose3DCheckpoint:
    """Load an original VideoPose3D checkpoint; models come back in eval mode.

    ``expected_joints``: if given, the number of input joints the caller's data has;
    a mismatch raises :class:`CheckpointError` naming both numbers.
    """
    ckpt = read_torch_checkpoint(path)
    if not isinstance(ckpt, dict) or "model_pos" not in ckpt or not isinstance(ckpt["model_pos"], dict):
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a VideoPose3D checkpoint (expected a dict with 'model_pos'; found {keys})")
    model_pos, config = build_from_state(ckpt["model_pos"], f"{path} [model_pos]", causal=causal, dense=dense)
    if expected_joints is not None and config.num_joints_in != expected_joints:
        raise CheckpointError(
            f"{path}: model expects {config.num_joints_in} input joints but the data has {expected_joints}"
        )
    model_traj = None
    if isinstance(ckpt.get("model_traj"), dict):
        model_traj, _ = build_from_state(ckpt["model_traj"], f"{path} [model_traj]", causal=causal, dense=dense)
    epoch = ckpt.get("epoch")
    lr = ckpt.get("lr")
    return VideoPose3DCheckpoint(model_pos, model_traj, config,
                                 int(epoch) if epoch is not None else None,
                                 float(lr) if lr is not None else None)
