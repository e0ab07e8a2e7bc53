"""3D COCO-17 keypoints synthesised from Human3.6M-17 joints, for detector-style 2D.

A 2D detector trained on COCO reports nose, eyes and ears, which Human3.6M-17 lacks. Given
3D H36M-17 joints (metres, any orientation, Z-up in poselift's world), this module copies the
twelve body joints COCO shares with Human3.6M and places the five face points on a rigid
average-adult head model attached to a head frame. Projecting the result with a camera
gives 2D keypoints laid out like a COCO detector's. The model is documented, joint by
joint, in ``docs/cmu_mapping.md``.

Head frame (right-handed; columns forward, left, up):

* up = unit(head - neck_nose): the head's own axis, so nodding and tilting move the face;
* forward = unit(lateral x up) with lateral = left_shoulder - right_shoulder (the hips' line if
  the shoulders are degenerate): perpendicular to the shoulder line and the head axis, on the
  side the chest faces. The face therefore turns with the shoulders; H36M-17 carries no head
  yaw of its own. Callers that know the head's orientation (``CmuClip.head_frame``) pass it;
* left = up x forward.

Origin: ``neck_nose``, which the CMU mappings put at the skull base (top of the neck) on the
head's centre line.
"""

from __future__ import annotations

import numpy as np

from poselift.errors import PoseliftError
from poselift.skeleton import COCO_17, H36M_17

__all__ = ["FACE_MODEL", "BODY_FROM_H36M", "head_frame_from_h36m", "coco_from_h36m"]

#: Face points in the head frame (forward, left, up), metres from neck_nose (skull base).
#: Average adult anthropometry (see docs/cmu_mapping.md): pupils 0.032 m either side of the
#: midline (interpupillary distance ~0.063 m); nose tip 0.11 m in front of the head axis and
#: 0.035 m below the pupils, which are 0.025 m behind it; ears (tragion / ear canal) 0.075 m
#: either side, on the head axis (0.11 m behind the nose tip) and 0.022 m below the pupils.
FACE_MODEL: dict[str, tuple[float, float, float]] = {
    "nose": (0.110, 0.0, 0.015),
    "left_eye": (0.085, 0.032, 0.050),
    "right_eye": (0.085, -0.032, 0.050),
    "left_ear": (0.0, 0.075, 0.028),
    "right_ear": (0.0, -0.075, 0.028),
}

#: COCO body joint -> the Human3.6M-17 joint it copies (same anatomical point).
BODY_FROM_H36M: dict[str, str] = {
    name: name for name in (
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    )
}

_H = {n: i for i, n in enumerate(H36M_17.joint_names)}
_EPS = 1e-9


def _norm(v: np.ndarray) -> np.ndarray:
    return np.linalg.norm(v, axis=-1, keepdims=True)


def _unit_or(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Unit vectors of ``v``; where ``v`` is (near) zero, unit ``fallback`` instead."""
    n = _norm(v)
    v = np.where(n > 1e-6, v, fallback)
    n = _norm(v)
    return v / np.maximum(n, _EPS)


def head_frame_from_h36m(positions: np.ndarray) -> np.ndarray:
    """(..., 3, 3) head frame from H36M-17 joints (..., 17, 3); columns forward, left, up."""
    p = np.asarray(positions, dtype=np.float64)
    world_up = np.broadcast_to(np.array([0.0, 0.0, 1.0]), p.shape[:-2] + (3,))
    neck, head = p[..., _H["neck_nose"], :], p[..., _H["head"], :]
    up = _unit_or(head - neck, _unit_or(neck - p[..., _H["thorax"], :], world_up))
    shoulders = p[..., _H["left_shoulder"], :] - p[..., _H["right_shoulder"], :]
    hips = p[..., _H["left_hip"], :] - p[..., _H["right_hip"], :]
    fwd = np.cross(shoulders, up)
    fwd = np.where(_norm(fwd) > 1e-6 * np.maximum(_norm(shoulders), _EPS), fwd, np.cross(hips, up))
    # Last resort (no usable lateral direction): any direction perpendicular to up.
    other = np.where(np.abs(up[..., :1]) < 0.9, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    fwd = _unit_or(fwd, np.cross(other, up))
    left = np.cross(up, fwd)
    return np.stack([fwd, left, up], axis=-1)


def coco_from_h36m(positions: np.ndarray, head_frame: np.ndarray | None = None,
                   face_model: dict[str, tuple[float, float, float]] | None = None) -> np.ndarray:
    """(..., 17, 3) COCO-17 keypoints from Human3.6M-17 joints (..., 17, 3), metres.

    Body joints are copies of the matching H36M joints; nose, eyes and ears are
    ``neck_nose + frame @ offset`` with the offsets of ``face_model`` (default
    :data:`FACE_MODEL`) and ``frame`` = ``head_frame`` (..., 3, 3; columns forward, left, up)
    or, when None, :func:`head_frame_from_h36m`. Rotating and translating the input pose
    (and ``head_frame``) rotates and translates the output the same way.
    """
    p = np.asarray(positions)
    if p.ndim < 2 or p.shape[-2:] != (H36M_17.num_joints, 3):
        raise PoseliftError(f"expected Human3.6M-17 3D joints of shape (..., 17, 3), got {p.shape}")
    p64 = p.astype(np.float64)
    if head_frame is None:
        frame = head_frame_from_h36m(p64)
    else:
        frame = np.asarray(head_frame, dtype=np.float64)
        if frame.shape != p.shape[:-2] + (3, 3):
            raise PoseliftError(f"head_frame must have shape {p.shape[:-2] + (3, 3)}, got {frame.shape}")
    model = FACE_MODEL if face_model is None else face_model
    out = np.empty(p.shape[:-2] + (COCO_17.num_joints, 3))
    origin = p64[..., _H["neck_nose"], :]
    for j, name in enumerate(COCO_17.joint_names):
        if name in BODY_FROM_H36M:
            out[..., j, :] = p64[..., _H[BODY_FROM_H36M[name]], :]
        else:
            out[..., j, :] = origin + frame @ np.asarray(model[name], dtype=np.float64)
    return out.astype(p.dtype) if np.issubdtype(p.dtype, np.floating) else out
