"""Bones, bone lengths and the 15 bone-length ratios of the BPC prior.

Absolute bone lengths vary from person to person, but their proportions vary
much less (a forearm is ~0.8 of an upper arm on anyone). The BPC prior scores
15 such ratios; BSE compares the 6 left/right pairs. The bone list and the
ratio list follow PoseReg (``agents/helper.py``: ``BONE_KPT_PAIRS`` indexed by
child joint, ``select_bone_ratios``). Note PoseReg's head bones differ from
:data:`poselift.skeleton.H36M_17`'s tree: ``head`` is thorax->head and
``upper_face`` is head->neck_nose (the skeleton chains thorax->neck_nose->head).
"""

from __future__ import annotations

import numpy as np
import torch

from poselift.skeleton import H36M_17

_J = {name: i for i, name in enumerate(H36M_17.joint_names)}

# (name, child, parent), bone index = child joint index - 1 (PoseReg's order).
BONES: tuple[tuple[str, int, int], ...] = tuple(
    (name, _J[child], _J[parent]) for name, child, parent in (
        ("right_hip", "right_hip", "pelvis"),
        ("right_thigh", "right_knee", "right_hip"),
        ("right_leg", "right_ankle", "right_knee"),
        ("left_hip", "left_hip", "pelvis"),
        ("left_thigh", "left_knee", "left_hip"),
        ("left_leg", "left_ankle", "left_knee"),
        ("abdomen", "spine", "pelvis"),
        ("thorax", "thorax", "spine"),
        ("upper_face", "neck_nose", "head"),
        ("head", "head", "thorax"),
        ("left_shoulder", "left_shoulder", "thorax"),
        ("left_bicep", "left_elbow", "left_shoulder"),
        ("left_forearm", "left_wrist", "left_elbow"),
        ("right_shoulder", "right_shoulder", "thorax"),
        ("right_bicep", "right_elbow", "right_shoulder"),
        ("right_forearm", "right_wrist", "right_elbow"),
    )
)
BONE_NAMES: tuple[str, ...] = tuple(b[0] for b in BONES)
_B = {name: i for i, name in enumerate(BONE_NAMES)}

# (name, numerator bone index, denominator bone index) into BONES.
BONE_RATIOS: tuple[tuple[str, int, int], ...] = tuple(
    (f"{a}/{b}", _B[a], _B[b]) for a, b in (
        ("upper_face", "head"), ("head", "thorax"), ("right_shoulder", "thorax"), ("left_shoulder", "thorax"),
        ("abdomen", "thorax"), ("right_hip", "abdomen"), ("left_hip", "abdomen"),
        ("right_shoulder", "right_bicep"), ("left_shoulder", "left_bicep"),
        ("right_forearm", "right_bicep"), ("left_forearm", "left_bicep"),
        ("right_hip", "right_thigh"), ("left_hip", "left_thigh"),
        ("right_leg", "right_thigh"), ("left_leg", "left_thigh"),
    )
)
RATIO_NAMES: tuple[str, ...] = tuple(r[0] for r in BONE_RATIOS)

# (right, left) indices into BONES: hip, thigh, leg (shin), shoulder, bicep (upper arm), forearm.
SYMMETRIC_BONE_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (_B[f"right_{part}"], _B[f"left_{part}"]) for part in ("hip", "thigh", "leg", "shoulder", "bicep", "forearm")
)

_CHILD = [b[1] for b in BONES]
_PARENT = [b[2] for b in BONES]
_NUM = [r[1] for r in BONE_RATIOS]
_DEN = [r[2] for r in BONE_RATIOS]


def _check_poses(shape) -> None:
    if len(shape) < 2 or tuple(shape[-2:]) != (17, 3):
        raise ValueError(f"poses must have shape (..., 17, 3) (Human3.6M-17), got {tuple(shape)}")


def bone_lengths(poses, eps: float = 1e-8):
    """Lengths of the 16 :data:`BONES`.

    Args:
        poses: (..., 17, 3) torch tensor or numpy array.
        eps: ``sqrt(|d|^2 + eps^2)`` keeps the gradient finite at zero length.

    Returns:
        (..., 16), same type as ``poses``.
    """
    if not isinstance(poses, torch.Tensor):
        poses = np.asarray(poses)
        if not np.issubdtype(poses.dtype, np.floating):
            poses = poses.astype(np.float64)
    _check_poses(poses.shape)
    d = poses[..., _CHILD, :] - poses[..., _PARENT, :]
    if isinstance(poses, torch.Tensor):
        return torch.sqrt((d * d).sum(-1) + eps * eps)
    return np.sqrt((d * d).sum(-1) + eps * eps)


def ratios_from_lengths(lengths, eps: float = 1e-8):
    """(..., 16) bone lengths -> (..., 15) :data:`BONE_RATIOS` (denominators floored at ``eps``)."""
    if isinstance(lengths, torch.Tensor):
        return lengths[..., _NUM] / lengths[..., _DEN].clamp_min(eps)
    lengths = np.asarray(lengths)
    return lengths[..., _NUM] / np.maximum(lengths[..., _DEN], eps)


def bone_ratios(poses, eps: float = 1e-8):
    """The 15 BPC bone-length ratios of each pose.

    Args:
        poses: (..., 17, 3) torch tensor or numpy array.

    Returns:
        (..., 15), same type; finite for zero-length bones (a zero denominator
        counts as ``eps``).
    """
    return ratios_from_lengths(bone_lengths(poses, eps), eps)
