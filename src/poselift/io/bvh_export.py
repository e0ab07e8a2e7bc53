"""BVH animation of the Human3.6M-17 skeleton, with joint rotations fitted to the lifted 3D joints.

Animation tools (Blender, Maya, MotionBuilder, game engines) want a skeleton
with constant bone lengths driven by joint rotations, not a cloud of moving
points. This module turns the pipeline's per-frame joint positions into that.

Axes and units: camera space (x right, y down, z forward) is rotated 180
degrees about x into the Y-up frame that BVH tools assume (``X = x, Y = -y,
Z = -z``, the same conversion as :mod:`poselift.io.trc`); a person facing the
camera faces +Z. Lengths are metres, and Blender's BVH importer uses the
file's units as Blender units, so the armature comes in at real size with its
default axis settings (forward -Z, up Y). The root keeps the camera-relative
trajectory (the origin is the camera centre).

Skeleton (:data:`BVH_JOINT_NAMES`, one BVH joint per Human3.6M joint, placed at
that joint)::

    Hips (pelvis; 6 channels) ─┬─ RightUpLeg ─ RightLeg ─ RightFoot ─ End Site (toes)
                               ├─ LeftUpLeg ─ LeftLeg ─ LeftFoot ─ End Site (toes)
                               └─ Spine ─ Thorax ─┬─ Neck (H36M neck/nose) ─ Head (top) ─ End Site
                                                  ├─ LeftArm ─ LeftForeArm ─ LeftHand ─ End Site
                                                  └─ RightArm ─ RightForeArm ─ RightHand ─ End Site

Rest pose (what every OFFSET describes, all rotations zero): a T-pose facing
+Z. Bone lengths are the median over the valid frames (a BVH cannot vary
them). Bones of a single-child chain lie along fixed axes: thighs and shins
along -Y, spine-to-thorax and neck-to-head along +Y, upper arms and forearms
along ±X (left arm +X). The bones leaving the two branching joints (pelvis to
hips and spine; thorax to neck and shoulders) keep the person's own geometry:
their directions are the median over valid frames in a body frame built from
the joint's children (x from the right to the left child, y towards the
middle child), so a rigid pelvis or shoulder girdle is reproduced exactly.
End sites continue the hand and head bones (35 % and 25 % of the forearm and
head-bone lengths) and point the feet forward (+Z, 40 % of the shin).
``rest_pose`` replaces all of this with the bone vectors of one given pose.

Rotation fitting, per frame, parents first (global rotations ``G``):

* branching joints (pelvis, thorax): the rotation that best maps the rest
  directions of all children onto the observed ones (Kabsch: SVD of their
  correlation matrix) — the full 3D orientation, twist included;
* single-child joints: the smallest rotation taking the bone's rest
  direction, as carried by the parent (``G_parent @ rest``), onto the
  observed direction, applied after the parent's rotation. The local
  rotation is then a pure swing with no twist about the bone, so twist is
  inherited down each limb from the pelvis or thorax: stable, never flips
  between frames, and exact for positions (every bone direction is matched);
* end joints (feet, head top, hands): no observed child, local rotation zero.

Local rotations ``G_parent.T @ G`` are written as Euler angles in degrees,
intrinsic, in the channel order of each joint: ``Zrotation Xrotation
Yrotation`` for the root and the arms, ``Xrotation Yrotation Zrotation`` for
legs and spine. The middle angle is the one that can lock (±90°); putting the
bone's own axis there (X for arms, Y for the vertical bones), whose angle a
pure swing keeps small, moves the lock away from everyday poses (sitting,
bending forward, arms down). Angles are unwrapped over time so a turning
person accumulates 360, 720... degrees instead of jumping. For the root, the
lock is a body pitched ±90° (lying down).

Frames where the pose is not valid are written too (the pipeline holds the
last pose there), so the animation keeps the video's timing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poselift.errors import ConfigError, DataFormatError
from poselift.infer.types import Poses3D
from poselift.io.poses_files import check_poses, write_atomically
from poselift.io.trc import camera_to_y_up
from poselift.skeleton import H36M_17

__all__ = ["BVH_JOINT_NAMES", "fit_global_rotations", "matrix_to_euler", "rest_offsets", "write_bvh"]

#: BVH joint name of each Human3.6M-17 joint, in ``H36M_17`` order (which is also the file order).
BVH_JOINT_NAMES = ("Hips", "RightUpLeg", "RightLeg", "RightFoot", "LeftUpLeg", "LeftLeg", "LeftFoot",
                   "Spine", "Thorax", "Neck", "Head", "LeftArm", "LeftForeArm", "LeftHand",
                   "RightArm", "RightForeArm", "RightHand")

_X, _Y, _Z = np.eye(3)
# Rest direction of the bone ending at each joint of a single-child chain.
_FIXED_DIRECTIONS = {2: -_Y, 3: -_Y, 5: -_Y, 6: -_Y, 8: _Y, 10: _Y,
                     12: _X, 13: _X, 15: -_X, 16: -_X}
# Branching joints: (right child, left child, middle child) to build a body frame from.
_BRANCHES = {0: (1, 4, 7), 8: (14, 11, 9)}
# End sites: joint -> (direction in the joint's rest frame, length as a fraction of the bone ending at it).
_END_SITES = {3: (_Z, 0.40), 6: (_Z, 0.40), 10: (_Y, 0.25), 13: (_X, 0.35), 16: (-_X, 0.35)}
_ORDERS = {j: ("ZXY" if j == 0 or j >= 11 else "XYZ") for j in range(H36M_17.num_joints)}
_EPS = 1e-12


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)


def _bone_vectors(points: np.ndarray) -> np.ndarray:
    """(T, 17, 3) vector from each joint's parent to the joint (zero for the root)."""
    parents = np.array(H36M_17.parents)
    out = points - points[:, np.maximum(parents, 0)]
    out[:, parents < 0] = 0.0
    return out


def _branch_frame(bones: np.ndarray, right: int, left: int, middle: int) -> np.ndarray:
    """(T, 3, 3) orthonormal frames, columns x (right -> left child), y (towards middle), z = x × y."""
    x = _unit(bones[:, left] - bones[:, right])
    m = bones[:, middle]
    y = _unit(m - np.sum(m * x, axis=-1, keepdims=True) * x)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def rest_offsets(points: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(17, 3) rest-pose OFFSET of each joint from its parent (Y-up, metres; zero for the root).

    ``points`` (T, 17, 3) are Y-up joints; lengths and branch geometry are
    medians over the frames where ``valid`` (T,) is True (all frames if none
    is). See the module docstring for the pose.
    """
    points = np.asarray(points, dtype=np.float64)
    sel = np.asarray(valid, dtype=bool) if valid is not None else np.ones(len(points), bool)
    if not sel.any():
        sel = np.ones(len(points), bool)
    bones = _bone_vectors(points[sel])
    lengths = np.median(np.linalg.norm(bones, axis=-1), axis=0)  # (17,)
    directions = np.zeros((H36M_17.num_joints, 3))
    for child, d in _FIXED_DIRECTIONS.items():
        directions[child] = d
    for joint, (right, left, middle) in _BRANCHES.items():
        frame = _branch_frame(bones, right, left, middle)
        for child in H36M_17.children[joint]:
            local = np.einsum("tba,tb->ta", frame, _unit(bones[:, child]))  # frame.T @ direction
            directions[child] = _unit(np.median(local, axis=0))
    return directions * lengths[:, None]


def _kabsch(rest: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations R minimising sum_k |R rest_k - observed_k(t)|²; rest (K, 3), observed (T, K, 3)."""
    h = np.einsum("tki,kj->tij", observed, rest)  # sum_k observed_k rest_k^T
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1.0
    u[:, :, 2] *= d[:, None]  # reflection guard: flip the weakest axis
    return u @ vt


def _minimal_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 3, 3) smallest rotations taking unit vectors a (T, 3) to b (T, 3) (axis a × b)."""
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    vx = np.zeros(a.shape[:-1] + (3, 3))
    vx[..., 0, 1], vx[..., 0, 2], vx[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    vx[..., 1, 0], vx[..., 2, 0], vx[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    opposite = c < -1.0 + 1e-9
    scale = 1.0 / np.where(opposite, 1.0, 1.0 + c)
    out = np.eye(3) + vx + vx @ vx * scale[..., None, None]
    if opposite.any():  # half turn about any axis perpendicular to a
        aa = a[opposite]
        helper = np.eye(3)[np.argmin(np.abs(aa), axis=-1)]
        n = _unit(np.cross(aa, helper))
        out[opposite] = 2.0 * n[:, :, None] * n[:, None, :] - np.eye(3)
    return out


def fit_global_rotations(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(T, 17, 3, 3) global joint rotations that pose the rest skeleton ``offsets`` (17, 3) like ``points``.

    ``points`` (T, 17, 3) are Y-up joints. Branching joints get a Kabsch fit
    of all child directions, single-child joints the minimal rotation after
    their parent's, end joints their parent's rotation (module docstring).
    """
    t = len(points)
    observed = _unit(_bone_vectors(np.asarray(points, dtype=np.float64)))
    rest = _unit(np.asarray(offsets, dtype=np.float64))
    rot = np.empty((t, H36M_17.num_joints, 3, 3))
    identity = np.broadcast_to(np.eye(3), (t, 3, 3))
    for j, p in enumerate(H36M_17.parents):  # parents come first in H36M_17 order
        parent_rot = rot[:, p] if p >= 0 else identity
        kids = H36M_17.children[j]
        if len(kids) >= 2:
            rot[:, j] = _kabsch(rest[list(kids)], observed[:, list(kids)])
        elif len(kids) == 1:
            carried = parent_rot @ rest[kids[0]]
            rot[:, j] = _minimal_rotation(carried, observed[:, kids[0]]) @ parent_rot
        else:
            rot[:, j] = parent_rot
    return rot


def matrix_to_euler(r: np.ndarray, order: str) -> np.ndarray:
    """(..., 3) angles in radians with ``r = R_order[0](a0) @ R_order[1](a1) @ R_order[2](a2)``.

    ``order`` is three distinct axes such as "ZXY" (intrinsic, as BVH channel
    lists are read). The middle angle is in [-90°, 90°].
    """
    i, j, k = ("XYZ".index(a) for a in order.upper())
    s = 1.0 if (j - i) % 3 == 1 else -1.0  # +1 for cyclic orders (XYZ, YZX, ZXY)
    middle = np.arcsin(np.clip(s * r[..., i, k], -1.0, 1.0))
    first = np.arctan2(-s * r[..., j, k], r[..., k, k])
    last = np.arctan2(-s * r[..., i, j], r[..., i, i])
    return np.stack([first, middle, last], axis=-1)


def _hierarchy_lines(offsets: np.ndarray) -> list[str]:
    lines = ["HIERARCHY"]

    def joint(j: int, depth: int) -> None:
        pad = "  " * depth
        keyword = "ROOT" if j == 0 else "JOINT"
        rotations = " ".join(f"{a}rotation" for a in _ORDERS[j])
        channels = f"CHANNELS 6 Xposition Yposition Zposition {rotations}" if j == 0 else f"CHANNELS 3 {rotations}"
        lines.extend([f"{pad}{keyword} {BVH_JOINT_NAMES[j]}", f"{pad}{{",
                      f"{pad}  OFFSET {_vec(offsets[j])}", f"{pad}  {channels}"])
        for c in H36M_17.children[j]:
            joint(c, depth + 1)
        if j in _END_SITES:
            direction, fraction = _END_SITES[j]
            end = direction * fraction * np.linalg.norm(offsets[j])
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {_vec(end)}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    joint(0, 0)
    return lines


def _vec(v: np.ndarray) -> str:
    return " ".join(f"{x:.6f}" for x in np.round(v, 6) + 0.0)  # + 0.0: no "-0.000000"


def write_bvh(poses: Poses3D, path: str | Path, *, rest_pose: np.ndarray | None = None,
              fps: float | None = None) -> Path:
    """Write ``poses`` as a BVH animation (Y-up, metres) of the Human3.6M-17 skeleton.

    Args:
        poses: the pipeline's result; every frame is written.
        path: output ``.bvh`` path (written atomically).
        rest_pose: optional (17, 3) Human3.6M joints in camera space (metres)
            whose bone vectors become the OFFSETs instead of the medians
            estimated from ``poses`` (e.g. a calibration frame, or one shared
            skeleton for several clips of the same person). Positions then
            match the input only as far as the bone lengths agree.
        fps: frame rate of the animation; default ``poses.fps``.
    """
    t = check_poses(poses)
    rate = float(poses.fps if fps is None else fps)
    if not (np.isfinite(rate) and rate > 0):
        raise ConfigError(f"BVH fps must be a positive number, got {fps}")
    points = camera_to_y_up(np.asarray(poses.keypoints_3d, dtype=np.float64))
    bad = ~np.isfinite(points).all(axis=(1, 2))
    if bad.any():
        raise DataFormatError(f"Poses3D.keypoints_3d has non-finite values in {int(bad.sum())} of {t} frames "
                              f"(first: frame {int(np.argmax(bad))}); a BVH needs every frame")
    if rest_pose is None:
        offsets = rest_offsets(points, poses.valid)
    else:
        rest = np.asarray(rest_pose, dtype=np.float64)
        if rest.shape != (H36M_17.num_joints, 3) or not np.isfinite(rest).all():
            raise DataFormatError(f"rest_pose must be finite (17, 3) Human3.6M joints, got shape {rest.shape}")
        offsets = _bone_vectors(camera_to_y_up(rest)[None])[0]

    glob = fit_global_rotations(points, offsets)
    parents = np.array(H36M_17.parents)
    local = glob.copy()
    local[:, 1:] = np.swapaxes(glob[:, parents[1:]], -1, -2) @ glob[:, 1:]
    columns = [points[:, 0]]  # root position channels (root OFFSET is zero)
    for j in range(H36M_17.num_joints):
        angles = np.degrees(matrix_to_euler(local[:, j], _ORDERS[j]))
        columns.append(np.unwrap(angles, period=360.0, axis=0))
    values = np.round(np.concatenate(columns, axis=1), 6) + 0.0  # + 0.0: no "-0.000000"

    lines = _hierarchy_lines(offsets)
    lines += ["MOTION", f"Frames: {t}", f"Frame Time: {1.0 / rate:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    text = "\n".join(lines) + "\n"
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text), "BVH file")
