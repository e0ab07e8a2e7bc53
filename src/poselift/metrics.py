"""Evaluation metrics for 3D poses, in the units of the inputs (metres in, metres out).

All take ``(..., J, 3)`` tensors; errors are averaged over every joint of every
pose. Protocol numbering follows VideoPose3D: P1 = MPJPE, P2 = P-MPJPE
(similarity-aligned), P3 = N-MPJPE (scale-aligned); MPJVE compares the first
temporal derivative.
"""

from __future__ import annotations

import torch

from poselift.geometry.procrustes import procrustes_align


def _check(predicted: torch.Tensor, target: torch.Tensor) -> None:
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} differ in shape")


def mpjpe(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Protocol 1: mean Euclidean distance per joint. (..., J, 3) -> scalar."""
    _check(predicted, target)
    return torch.linalg.vector_norm(predicted - target, dim=-1).mean()


def p_mpjpe(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Protocol 2: MPJPE after per-pose rotation, scale and translation alignment. (..., J, 3)."""
    _check(predicted, target)
    return mpjpe(procrustes_align(predicted, target), target)


def n_mpjpe(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Protocol 3: MPJPE after the least-squares scale per pose (Rhodin et al. 2018). (..., J, 3)."""
    _check(predicted, target)
    num = (predicted * target).sum(dim=(-2, -1), keepdim=True)
    den = (predicted * predicted).sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return mpjpe(num / den * predicted, target)


def mpjve(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint velocity error: MPJPE of frame-to-frame differences. (T, J, 3), T >= 2."""
    _check(predicted, target)
    if predicted.shape[0] < 2:
        raise ValueError("MPJVE needs at least two frames")
    return mpjpe(torch.diff(predicted, dim=0), torch.diff(target, dim=0))
