"""Evaluation metrics for 3D poses, in the units of the inputs (metres in, metres out).

All take ``(..., J, 3)`` tensors; errors are averaged over every joint of every
pose. Protocol numbering follows VideoPose3D: P1 = MPJPE, P2 = P-MPJPE
(similarity-aligned), P3 = N-MPJPE (scale-aligned); MPJVE compares the first
temporal derivative. MPBOE and J-MPBOE compare bone orientations in body-fixed
frames (Human3.6M-17 only).
"""

from __future__ import annotations

import torch

from poselift.geometry.procrustes import procrustes_align
from poselift.priors.free_bones import FREE_BONE_JOINT_WEIGHTS, FREE_BONES, free_bone_vectors


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


# --------------------------------------------------------------------------- bone orientation (posture)
#
# MPBOE and J-MPBOE (Amadi & Agam, Sensors 2023; docs/posture.md) measure posture
# alone: each free bone's direction in its body-fixed local frame
# (poselift.priors.free_bones) is compared, so global rotation, translation and,
# since the unit vectors are scaled by the TARGET bone lengths, the predicted
# bone lengths do not matter. Human3.6M-17 layout only.


def _free_bone_errors(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(..., 17, 3) -> (..., 16) distances ``L * |u_pred - u_target|`` per free bone, metres.

    ``L`` is the target's pivot-to-free-joint distance of each free bone.
    """
    _check(predicted, target)
    if predicted.dim() < 2 or predicted.shape[-2:] != (17, 3):
        raise ValueError(f"bone orientation errors need (..., 17, 3) Human3.6M-17 poses, got {tuple(predicted.shape)}")
    pivot = [fb.pivot for fb in FREE_BONES]
    free = [fb.free for fb in FREE_BONES]
    length = torch.linalg.vector_norm(target[..., free, :] - target[..., pivot, :], dim=-1, keepdim=True)
    diff = free_bone_vectors(predicted) - free_bone_vectors(target)
    return torch.linalg.vector_norm(length * diff, dim=-1)


def mpboe(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-bone orientation error: mean over free bones and poses of ``L_t |u_p - u_t|``. (..., 17, 3) -> scalar.

    ``u`` are the 16 free-bone unit vectors in their local frames and ``L_t``
    the target's bone lengths, as PoseReg's ``common/loss.py: mpboe``. A bone
    turned by ``a`` radians costs ``2 L_t sin(a / 2)``.
    """
    return _free_bone_errors(predicted, target).mean()


def free_bone_joint_weights(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(16, 17) share of each free bone's error given to each joint: its pivot, axis, plane and free joint
    get FREE_BONE_JOINT_WEIGHTS (0.03, 0.01, 0.01, 0.95); every row sums to 1."""
    w = torch.zeros(len(FREE_BONES), 17, dtype=dtype)
    for b, fb in enumerate(FREE_BONES):
        for joint, share in zip((fb.pivot, fb.axis, fb.plane, fb.free), FREE_BONE_JOINT_WEIGHTS):
            w[b, joint] += share
    return w


def j_mpboe(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Joint-propagated MPBOE: per-joint weighted sums of free-bone errors, averaged over the 17 joints. (..., 17, 3).

    As PoseReg's ``j_mpboe``, a joint's error is the plain weighted sum of the
    errors of every free bone it takes part in (no division by the number of
    contributions), and the mean runs over all 17 joints and poses. Each free
    bone hands out exactly its error (weights sum to 1), so the overall value is
    ``16 / 17 * MPBOE``; the per-joint split (:func:`j_mpboe_per_joint`) is what
    carries information.
    """
    return j_mpboe_per_joint(predicted, target).mean()


def j_mpboe_per_joint(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(..., 17, 3) -> (..., 17) each joint's weighted sum of free-bone orientation errors, metres."""
    err = _free_bone_errors(predicted, target)
    return err @ free_bone_joint_weights(err.dtype).to(err.device)
