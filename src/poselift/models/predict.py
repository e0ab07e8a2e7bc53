"""Whole-sequence prediction with VideoPose3D's edge padding and optional flip test-time augmentation.

Temporal convolutions go through the fused inference engine
(:mod:`poselift.models.fused`); every other registered lifter (RIE, the FC
baseline, SemGCN, refined chains) through its own ``forward`` on the explicitly
edge-padded sequence, in eval mode. Both give the same frames for the same padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from poselift.models.fused import FusedTemporalConvLifter, fuse_for_inference
from poselift.models.temporal_conv import _TemporalConvBase


def _flip_lists(flip: Sequence, num_joints_out: int) -> tuple[list[int], list[int], list[int], list[int]]:
    if len(flip) == 4:
        kl, kr, jl, jr = (list(v) for v in flip)
    elif len(flip) == 2:
        kl, kr = list(flip[0]), list(flip[1])
        jl, jr = (kl, kr) if num_joints_out > 1 else ([], [])
    else:
        raise ValueError("flip must be (left, right) or (kps_left, kps_right, joints_left, joints_right)")
    if len(kl) != len(kr) or len(jl) != len(jr):
        raise ValueError("flip: left and right index lists differ in length")
    return kl, kr, jl, jr


def _is_temporal_conv(model: torch.nn.Module) -> bool:
    return isinstance(model, (FusedTemporalConvLifter, _TemporalConvBase))


def _flip_input(x: torch.Tensor, kl: list[int], kr: list[int]) -> torch.Tensor:
    """(T, J, C): x negated, left/right keypoints swapped."""
    xf = x.clone()
    xf[..., 0] *= -1
    xf[:, kl + kr] = xf[:, kr + kl]
    return xf


def _unflip_output(y: torch.Tensor, jl: list[int], jr: list[int]) -> torch.Tensor:
    yf = y.clone()
    yf[..., 0] *= -1
    yf[:, jl + jr] = yf[:, jr + jl]
    return yf


def _predict_with_forward(model: torch.nn.Module, sequences: Sequence[np.ndarray], left: int, right: int,
                          flip: Sequence | None, batch_frames: int) -> list[np.ndarray]:
    """Any lifter with ``forward((B, T, J, C)) -> (B, T - rf + 1, J_out, 3)``: explicit edge padding.

    Single-frame models (receptive field 1) get all frames of all sequences in
    batches of ``batch_frames``; windowed models one sequence at a time.
    """
    from poselift.models.registry import output_joints

    param = next(model.parameters())
    rf = model.receptive_field
    was_training = model.training
    model.eval()
    inputs = []
    for k, seq in enumerate(sequences):
        x = torch.as_tensor(np.asarray(seq), dtype=param.dtype, device=param.device)
        if x.dim() != 3 or x.shape[0] < 1:
            raise ValueError(f"sequence {k}: expected (T, J, C) keypoints, got {tuple(x.shape)}")
        if x.shape[0] + left + right < rf:
            raise ValueError(f"sequence {k}: {x.shape[0]} frames + padding is shorter than the receptive field {rf}")
        inputs.append(x)
    lists = _flip_lists(flip, output_joints(model)) if flip is not None else None

    def run(x: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([x[:1].expand(left, *x.shape[1:]), x, x[-1:].expand(right, *x.shape[1:])])
        if rf == 1:
            return torch.cat([model(part.unsqueeze(0))[0] for part in padded.split(batch_frames)])
        return model(padded.unsqueeze(0))[0]

    try:
        with torch.inference_mode():
            results = []
            for x in inputs:
                y = run(x)
                if lists is not None:
                    yf = _unflip_output(run(_flip_input(x, lists[0], lists[1])), lists[2], lists[3])
                    y = torch.stack([y, yf]).mean(dim=0)
                results.append(y.cpu().numpy())
    finally:
        model.train(was_training)
    return results


def predict_sequences(
    model: torch.nn.Module,
    sequences: Sequence[np.ndarray],
    pad: int,
    causal_shift: int = 0,
    flip: Sequence | None = None,
    batch_frames: int = 4096,
) -> list[np.ndarray]:
    """Lift whole sequences like VideoPose3D's ``UnchunkedGenerator`` + ``evaluate``.

    Args:
        model: any registered lifter; a temporal convolution is fused first (or
            pass a :class:`FusedTemporalConvLifter`), other kinds run their own
            ``forward`` in eval mode.
        sequences: per sequence (T_i, J_in, C_in) 2D keypoints (any float dtype;
            computed in the model's dtype).
        pad: frames of context each side, normally ``(receptive_field - 1) // 2``.
        causal_shift: ``pad`` for causal models, else 0. Each sequence is padded
            with its first frame ``pad + causal_shift`` times on the left and its
            last frame ``pad - causal_shift`` times on the right (``np.pad`` mode
            'edge'); the padding is never materialised (see module docstring).
        flip: None, ``(left, right)``, or ``(kps_left, kps_right, joints_left,
            joints_right)``. Test-time augmentation: the input with x negated and
            left/right keypoints swapped is lifted too, its output gets x negated
            and left/right joints swapped back, and the two are averaged. With the
            two-list form the same lists index the output joints, except for a
            one-joint (trajectory) model, whose output is only x-negated.
        batch_frames: sequences are grouped so that one pass over the network
            covers up to about this many frames (a longer sequence goes alone);
            grouping amortises per-call overhead for short sequences.

    Returns:
        per sequence (T_i + 2 * pad - receptive_field + 1, J_out, 3) float arrays
        (T_i frames with the standard pad), in the model's dtype.
    """
    left, right = pad + causal_shift, pad - causal_shift
    if pad < 0 or left < 0 or right < 0:
        raise ValueError(f"invalid pad={pad}, causal_shift={causal_shift}")
    if batch_frames < 1:
        raise ValueError("batch_frames must be positive")
    if not _is_temporal_conv(model):
        return _predict_with_forward(model, sequences, left, right, flip, batch_frames)
    fused = model if isinstance(model, FusedTemporalConvLifter) else fuse_for_inference(model)
    cfg = fused.config
    rf = fused.receptive_field
    param = next(fused.parameters())
    lists = _flip_lists(flip, cfg.num_joints_out) if flip is not None else None
    inputs = []
    for k, seq in enumerate(sequences):
        x = torch.as_tensor(np.asarray(seq), dtype=param.dtype, device=param.device)
        if x.dim() != 3 or x.shape[1] != cfg.num_joints_in or x.shape[2] != cfg.in_features:
            want = f"(T, {cfg.num_joints_in}, {cfg.in_features})"
            raise ValueError(f"sequence {k}: expected {want}, got {tuple(x.shape)}")
        if x.shape[0] < 1 or x.shape[0] + left + right < rf:
            raise ValueError(f"sequence {k}: {x.shape[0]} frames + padding is shorter than the receptive field {rf}")
        inputs.append(x.reshape(x.shape[0], -1))
        if lists is not None:
            inputs.append(_flip_input(x, lists[0], lists[1]).reshape(x.shape[0], -1))
    with torch.inference_mode():
        outs = fused.predict_padded(inputs, left, right, batch_frames)
        results = []
        step = 2 if lists is not None else 1
        for k in range(0, len(outs), step):
            y = outs[k].reshape(outs[k].shape[0], cfg.num_joints_out, 3)
            if lists is not None:
                yf = _unflip_output(outs[k + 1].reshape_as(y), lists[2], lists[3])
                y = torch.stack([y, yf]).mean(dim=0)
            results.append(y.cpu().numpy())
    return results


def predict_sequence(model: torch.nn.Module, keypoints_2d: np.ndarray, *,
                     causal: bool = False, flip: Sequence | None = None) -> np.ndarray:
    """Lift one sequence: (T, J_2d, 2) normalised keypoints -> (T, J_out, 3).

    Padded by half the receptive field (all of it in front for causal models) so
    every frame gets a prediction; ``flip`` as in :func:`predict_sequences`.
    """
    pad = (model.receptive_field - 1) // 2
    return predict_sequences(model, [keypoints_2d], pad, pad if causal else 0, flip)[0]
