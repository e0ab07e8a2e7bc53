"""Metric scale and the global trajectory of a lifted pose, from the 2D it was lifted from.

A lifter gives a root-relative pose whose size is the training subjects' mean,
and no position: monocular video fixes neither. Two stated assumptions fix both:

* **Scale**: the person's standing height (default 1.70 m). The pose's height is
  estimated from its own bones: mean leg (hip-knee-ankle) plus the trunk chain
  (pelvis-spine-thorax-neck-head top), times :data:`STATURE_PER_CHAIN`; the
  median over frames is scaled to the assumed height.
* **Camera**: a pinhole with the principal point at the image centre and a focal
  length in pixels (default :func:`default_focal_length`, the field of view of
  the Human3.6M-like cameras the shipped models were trained with).

With both, the root position ``T`` that makes the scaled pose project onto the
2D keypoints solves a linear least-squares problem per frame (the pinhole
equation ``f (X_j + T_x) = u_j (Z_j + T_z)`` is linear in ``T`` once ``u`` is
centred), weighted by the 2D confidences.
"""

from __future__ import annotations

import numpy as np

from poselift.skeleton import COCO_17, H36M_17

__all__ = ["DEFAULT_SUBJECT_HEIGHT_M", "STATURE_PER_CHAIN", "default_focal_length", "estimate_trajectory",
           "pose_height", "scale_to_height"]

#: Assumed standing height when the user states none (adult mean across sexes, roughly).
DEFAULT_SUBJECT_HEIGHT_M = 1.70
#: Standing height / (leg + trunk chain) of the Human3.6M-17 skeleton. Measured on the CMU-open 3D data
#: (docs/cmu_mapping.md places ``head`` at the head top): the 99th-percentile head-top height over the
#: chain length, median over the 15 subjects = 1.053 (clips with jumps excluded by the median).
STATURE_PER_CHAIN = 1.05
#: Focal length / longer image side of the Human3.6M cameras (1145 px for 1000 px): a 47 degree field of view.
H36M_FOCAL_PER_SIDE = 1.145

_LEGS = ((1, 2, 3), (4, 5, 6))  # right and left hip-knee-ankle in H36M_17
_TRUNK = (0, 7, 8, 9, 10)  # pelvis-spine-thorax-neck_nose-head
_SHARED = ("right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "left_shoulder",
           "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist")


def default_focal_length(width: int, height: int) -> float:
    """Focal length in pixels for an unknown camera: the Human3.6M field of view across the longer side."""
    return H36M_FOCAL_PER_SIDE * max(width, height)


def _path_length(x: np.ndarray, chain: tuple[int, ...]) -> np.ndarray:
    return sum(np.linalg.norm(x[..., a, :] - x[..., b, :], axis=-1) for a, b in zip(chain[:-1], chain[1:]))


def pose_height(poses: np.ndarray) -> np.ndarray:
    """(...,) standing height implied by Human3.6M-17 poses (..., 17, 3): bone lengths, not posture."""
    legs = 0.5 * (_path_length(poses, _LEGS[0]) + _path_length(poses, _LEGS[1]))
    return STATURE_PER_CHAIN * (legs + _path_length(poses, _TRUNK))


def scale_to_height(poses: np.ndarray, height_m: float, valid: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Scale root-relative poses (T, 17, 3) so their median implied height is ``height_m``.

    Returns the scaled poses and the factor applied. One factor for the whole
    sequence: a person does not change size.
    """
    if not height_m > 0:
        raise ValueError(f"subject height must be > 0 metres, got {height_m}")
    heights = pose_height(poses)
    use = heights if valid is None or not np.any(valid) else heights[np.asarray(valid, dtype=bool)]
    factor = float(height_m / np.median(use))
    return poses * factor, factor


def estimate_trajectory(poses: np.ndarray, keypoints_2d: np.ndarray, scores: np.ndarray | None, *,
                        focal_length: float, center: tuple[float, float]) -> np.ndarray:
    """Root positions (T, 3) in camera space, metres, that best explain the 2D.

    Args:
        poses: (T, 17, 3) root-relative Human3.6M-17 joints, metres (already scaled).
        keypoints_2d: (T, 17, 2) COCO-17 pixels (the lifter's input).
        scores: (T, 17) COCO-17 confidences (None: all 1), the joints' weights; 0 ignores a joint.
        focal_length: pixels. center: principal point (cx, cy) in pixels.
    Returns:
        (T, 3) translation T of the root such that ``poses + T`` projects onto the
        2D (weighted linear least squares per frame, in the image plane scaled by 1/f).
    """
    # Only the joints both layouts define at the same anatomical point (hips, knees, ankles, shoulders,
    # elbows, wrists): H36M's pelvis, spine, thorax and head top have no exact COCO counterpart, and
    # an approximate one (eyes for the head top) biases the root by centimetres.
    h36m_idx = [H36M_17.index(n) for n in _SHARED]
    coco_idx = [COCO_17.index(n) for n in _SHARED]
    uv = keypoints_2d[:, coco_idx].astype(np.float64)
    weight = np.ones(uv.shape[:2]) if scores is None else np.clip(scores[:, coco_idx].astype(np.float64), 0, None)
    poses = poses[:, h36m_idx]
    # Centred, focal-normalised image coordinates: a = (u - cx) / f.
    a = (uv - np.asarray(center, dtype=np.float64)) / focal_length  # (T, J, 2)
    x, y, z = poses[..., 0].astype(np.float64), poses[..., 1].astype(np.float64), poses[..., 2].astype(np.float64)
    # For each joint: Tx - a_x Tz = a_x Z - X and Ty - a_y Tz = a_y Z - Y.
    t, j = x.shape
    rows = np.zeros((t, 2 * j, 3))
    rhs = np.zeros((t, 2 * j))
    rows[:, :j, 0] = 1.0
    rows[:, :j, 2] = -a[..., 0]
    rhs[:, :j] = a[..., 0] * z - x
    rows[:, j:, 1] = 1.0
    rows[:, j:, 2] = -a[..., 1]
    rhs[:, j:] = a[..., 1] * z - y
    sw = np.sqrt(np.concatenate([weight, weight], axis=1))  # (T, 2J)
    rows *= sw[..., None]
    rhs *= sw
    normal = np.einsum("tki,tkj->tij", rows, rows) + 1e-9 * np.eye(3)
    return np.linalg.solve(normal, np.einsum("tki,tk->ti", rows, rhs)[..., None])[..., 0]
