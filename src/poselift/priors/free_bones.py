"""Free bones: each limb's direction in a frame fixed to the body next to it.

A free bone is four Human3.6M-17 keypoints (pivot, axis, plane, free). The
local frame has its origin at the pivot, one axis (x or y) along
pivot->axis keypoint and z normal to the plane through pivot, axis and plane
keypoints; the free keypoint's unit direction in that frame is the bone's
orientation. Because the frame moves with the body, the orientation is
invariant to global rotation and translation: a knee bent backwards or an
arm through the torso shows up as a vector in an unusual region of the sphere,
whatever the camera. That is what the JMC prior scores and what MPBOE
compares.

The 16 quadruplets, their order and each frame's axis conventions follow
Amadi & Agam's PoseReg (``agents/helper.py`` ``JMC_RMTX_JOINT_CONFIG``, per-joint
convention, four keypoints). Every frame here is a proper rotation; the left
bones' frames are the mirror images of their right partners' up to a sign of
local x, so :func:`mirror_free_bone_vectors` (negate x of the left bones) puts
left and right vectors into one convention, as PoseReg's grouped mode does.

Everything is torch and differentiable: norms are computed as
``sqrt(|v|^2 + eps^2)`` so degenerate poses (zero-length bones, collinear
keypoints, all-zero predictions) give finite values and finite gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from poselift.skeleton import H36M_17

_J = {name: i for i, name in enumerate(H36M_17.joint_names)}


@dataclass(frozen=True)
class FreeBone:
    """One free bone: four H36M_17 joint indices and its local frame's conventions.

    Attributes:
        name: e.g. ``"right_thigh"``.
        pivot / axis / plane / free: joint indices (frame origin, axis keypoint,
            plane keypoint, keypoint whose direction is measured).
        axis_row: local axis the pivot->axis direction lies on (0 = x, 1 = y).
        axis_sign: +1 if pivot->axis points along that axis' positive side, -1 if negative.
        normal_sign: local z = ``normal_sign * unit((axis - pivot) x (plane - pivot))``.
            The remaining axis completes a right-handed frame.
    """

    name: str
    pivot: int
    axis: int
    plane: int
    free: int
    axis_row: int = 1
    axis_sign: int = 1
    normal_sign: int = 1

    @property
    def keypoints(self) -> tuple[int, int, int, int]:
        """(pivot, axis, plane, free), the order of :data:`FREE_BONE_JOINT_WEIGHTS`."""
        return (self.pivot, self.axis, self.plane, self.free)


def _fb(name: str, pivot: str, axis: str, plane: str, free: str, axis_row: int, axis_sign: int,
        normal_sign: int) -> FreeBone:
    return FreeBone(name, _J[pivot], _J[axis], _J[plane], _J[free], axis_row, axis_sign, normal_sign)


# PoseReg's JMC_RMTX_JOINT_CONFIG (per-joint, quadruplets) re-expressed: where its
# config puts the axis keypoint (xy_idx, xy direction) and which cross product
# gives z (z_axb_idxs); its third axis is the right-handed completion in every case.
FREE_BONES: tuple[FreeBone, ...] = (
    _fb("upper_face", "head", "thorax", "right_shoulder", "neck_nose", 1, -1, -1),
    _fb("head", "thorax", "spine", "left_shoulder", "head", 1, -1, 1),
    _fb("thorax", "spine", "pelvis", "left_hip", "thorax", 1, -1, 1),
    _fb("abdomen", "pelvis", "thorax", "right_hip", "spine", 1, 1, 1),
    _fb("right_hip", "pelvis", "spine", "left_hip", "right_hip", 1, 1, -1),
    _fb("left_hip", "pelvis", "spine", "right_hip", "left_hip", 1, 1, 1),
    _fb("right_thigh", "right_hip", "pelvis", "spine", "right_knee", 0, 1, 1),
    _fb("left_thigh", "left_hip", "pelvis", "spine", "left_knee", 0, -1, -1),
    _fb("right_leg", "right_knee", "right_hip", "pelvis", "right_ankle", 1, 1, -1),
    _fb("left_leg", "left_knee", "left_hip", "pelvis", "left_ankle", 1, 1, 1),
    _fb("right_shoulder", "thorax", "spine", "left_shoulder", "right_shoulder", 1, -1, 1),
    _fb("left_shoulder", "thorax", "spine", "right_shoulder", "left_shoulder", 1, -1, -1),
    _fb("right_bicep", "right_shoulder", "thorax", "spine", "right_elbow", 0, 1, -1),
    _fb("left_bicep", "left_shoulder", "thorax", "spine", "left_elbow", 0, -1, 1),
    _fb("right_forearm", "right_elbow", "right_shoulder", "thorax", "right_wrist", 1, 1, -1),
    _fb("left_forearm", "left_elbow", "left_shoulder", "thorax", "left_wrist", 1, 1, 1),
)
FREE_BONE_NAMES: tuple[str, ...] = tuple(b.name for b in FREE_BONES)

# (right, left) indices into FREE_BONES.
MIRROR_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (FREE_BONE_NAMES.index(f"right_{part}"), FREE_BONE_NAMES.index(f"left_{part}"))
    for part in ("hip", "thigh", "leg", "shoulder", "bicep", "forearm")
)
LEFT_FREE_BONES: tuple[int, ...] = tuple(left for _, left in MIRROR_PAIRS)

# J-MPBOE spreads a bone's error to its (pivot, axis, plane, free) keypoints with these weights.
FREE_BONE_JOINT_WEIGHTS: tuple[float, float, float, float] = (0.03, 0.01, 0.01, 0.95)

_PIVOT = [b.pivot for b in FREE_BONES]
_AXIS = [b.axis for b in FREE_BONES]
_PLANE = [b.plane for b in FREE_BONES]
_FREE = [b.free for b in FREE_BONES]
_AXIS_IS_X = [b.axis_row == 0 for b in FREE_BONES]
_AXIS_SIGN = [float(b.axis_sign) for b in FREE_BONES]
_NORMAL_SIGN = [float(b.normal_sign) for b in FREE_BONES]
# Mirroring negates local x of the left bones (derived in the module docstring's terms:
# reflecting the pose and swapping sides turns a right frame R into diag(-1, 1, 1) R S).
_MIRROR_SIGN = np.ones((len(FREE_BONES), 3))
_MIRROR_SIGN[list(LEFT_FREE_BONES), 0] = -1.0


def as_float_tensor(x) -> tuple[torch.Tensor, bool]:
    """(tensor, came_from_numpy): numpy input becomes a float tensor, so functions return what they were given."""
    if isinstance(x, torch.Tensor):
        return x, False
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(arr)), True


def _check_poses(poses: torch.Tensor) -> None:
    if poses.ndim < 2 or tuple(poses.shape[-2:]) != (17, 3):
        raise ValueError(f"poses must have shape (..., 17, 3) (Human3.6M-17, metres), got {tuple(poses.shape)}")


def _unit(v: torch.Tensor, eps: float) -> torch.Tensor:
    # sqrt(|v|^2 + eps^2) rather than clamp(norm): differentiable at v = 0, where it returns 0.
    return v / torch.sqrt((v * v).sum(-1, keepdim=True) + eps * eps)


def _const(values, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def free_bone_frames(poses: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each free bone's local frame.

    Args:
        poses: (..., 17, 3) Human3.6M-17 positions (any units; any global pose).
        eps: guard added inside every norm.

    Returns:
        (..., 16, 3, 3) rotation matrices whose rows are the local x, y, z axes
        in the input's coordinates, so ``R @ (point - pivot)`` gives local
        coordinates. Degenerate keypoints give rows shrunk towards zero, never NaN.
    """
    _check_poses(poses)
    pivot = poses[..., _PIVOT, :]
    a = poses[..., _AXIS, :] - pivot
    p = poses[..., _PLANE, :] - pivot
    primary = _unit(a, eps) * _const(_AXIS_SIGN, poses)[:, None]
    normal = _unit(torch.linalg.cross(a, p, dim=-1), eps) * _const(_NORMAL_SIGN, poses)[:, None]
    axis_is_x = torch.tensor(_AXIS_IS_X, device=poses.device)[:, None]
    # Right-handed completion: y = z x x when the axis keypoint is on x, x = y x z when on y.
    third = torch.where(axis_is_x, torch.linalg.cross(normal, primary, dim=-1),
                        torch.linalg.cross(primary, normal, dim=-1))
    x_row = torch.where(axis_is_x, primary, third)
    y_row = torch.where(axis_is_x, third, primary)
    return torch.stack((x_row, y_row, normal), dim=-2)


def free_bone_vectors(poses, eps: float = 1e-8):
    """Unit pivot->free directions of the 16 free bones in their local frames.

    Args:
        poses: (..., 17, 3) torch tensor or numpy array, Human3.6M-17 order.
        eps: guard added inside every norm (a zero-length bone gives a zero vector).

    Returns:
        (..., 16, 3), same type (and for torch, dtype/device) as ``poses``;
        differentiable for torch input.
    """
    x, was_numpy = as_float_tensor(poses)
    frames = free_bone_frames(x, eps)
    bone = x[..., _FREE, :] - x[..., _PIVOT, :]
    local = _unit(torch.einsum("...ij,...j->...i", frames, bone), eps)
    return local.numpy() if was_numpy else local


def mirror_free_bone_vectors(vectors):
    """Put the left bones' vectors into their right partners' convention (negate local x).

    Args:
        vectors: (..., 16, 3) from :func:`free_bone_vectors` (torch or numpy).

    Returns:
        (..., 16, 3), same type; right and central bones unchanged. Applying it
        twice gives the input back. For a pose reflected through a plane with
        left and right labels swapped, the mirrored left vectors equal the
        original right ones (and vice versa).
    """
    if isinstance(vectors, torch.Tensor):
        if tuple(vectors.shape[-2:]) != (len(FREE_BONES), 3):
            raise ValueError(f"vectors must have shape (..., 16, 3), got {tuple(vectors.shape)}")
        return vectors * torch.as_tensor(_MIRROR_SIGN, dtype=vectors.dtype, device=vectors.device)
    arr = np.asarray(vectors)
    if arr.shape[-2:] != (len(FREE_BONES), 3):
        raise ValueError(f"vectors must have shape (..., 16, 3), got {arr.shape}")
    return arr * _MIRROR_SIGN.astype(arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64)
