"""CMU motion-capture BVH clips as Human3.6M-17 joint positions (metres, world Z-up).

Three BVH rig families carry CMU motion (see ``docs/cmu_mapping.md`` for the joint-by-joint
mapping and the reasons behind each choice):

* ``cmu-131``: cgspeed's 3dsMax-friendly conversion (``LHipJoint``, ``LeftHip``, ``LeftKnee``,
  ``LeftAnkle``, ``lowerback``, ``Chest``, ``lowerneck``, ``Neck``, ``Head``, ``LeftShoulder``...).
* ``cmu-mb``: cgspeed's MotionBuilder-friendly conversion (``Hips``, ``LeftUpLeg``, ``LeftLeg``,
  ``LeftFoot``, ``LowerBack``, ``Spine``, ``Spine1``, ``Neck``, ``Neck1``, ``Head``, ``LeftArm``...).
  The first data row of every file is an integer T-pose, not motion.
* ``cmu-cc-avatar``: CMU motion retargeted onto one Character Creator body (``CC_Base_*`` joints,
  centimetres, 60 fps), rooted at ``CC_Base_Hip`` or, in four files, at ``RL_BoneRoot``.

Both CMU families use CMU length units (1 unit = 1/0.45 inch = 0.056444 m), the CC rig
centimetres. All three are Y-up in motion; poselift's world is Z-up like Human3.6M, so
``(x, y, z)_bvh -> (x, -z, y)``: a proper rotation (determinant +1), so the subject's left
stays left. :func:`load_cmu_clip` also drops non-motion rows, puts the ground at z = 0 and
resamples to a target frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poselift.data.bvh import BvhMotion, forward_kinematics, local_rotations, read_bvh
from poselift.errors import DataFormatError, PoseliftError
from poselift.skeleton import H36M_17

__all__ = [
    "CmuClip", "FAMILIES", "UNIT_M", "ANKLE_HEIGHT_M", "rig_family", "h36m_from_bvh", "head_frame_from_bvh",
    "motion_frame_mask", "place_on_ground", "load_cmu_clip", "resample", "find_cmu_clips", "subject_of",
]

FAMILIES = ("cmu-131", "cmu-mb", "cmu-cc-avatar")

#: Metres per file unit for each rig family.
UNIT_M = {"cmu-131": 0.056444, "cmu-mb": 0.056444, "cmu-cc-avatar": 0.01}

#: Height of the ankle joint centre above the floor in a flat-footed stance (metres): about
#: 0.04-0.045 of stature plus a shoe sole. :func:`place_on_ground` puts the clip's lowest
#: ankle (5th percentile over frames of the lower of the two ankles) at this height.
ANKLE_HEIGHT_M = 0.08

#: BVH Y-up file axes -> poselift world Z-up: x' = x, y' = -z, z' = y (rows are world axes).
_Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

# CMU rigs: the head top ("head") is the Head -> Head_end bone extended by this factor.
# Head_end sits 0.086-0.092 m above Head (upper end of the neck, the skull base), below the
# crown; x1.3 gives 0.11-0.12 m, the Human3.6M neck_nose -> head bone (0.115 m).
_CMU_HEAD_TOP_SCALE = 1.3
# CC rig (no head-top end site): the head top lies this far above CC_Base_Head along the head's
# up axis (Human3.6M's neck_nose -> head bone is 0.115 m; the CC body is a little larger).
_CC_HEAD_TOP_M = 0.12
# CC rig: angle between "eyes minus CC_Base_Head" and the head's forward axis, in the head's
# sagittal plane. Pupils sit ~5-6 cm above and ~10 cm in front of the skull base (about 30
# degrees); subject 7's relaxed walks (trunk upright) measure 27-32 degrees.
_CC_EYE_ELEVATION_DEG = 30.0

# Per family: H36M joint -> source joint names, averaged (one name: copied). "head" (the head
# top) has no source joint and is built in _map.
_JOINT_MAP: dict[str, dict[str, tuple[str, ...]]] = {
    "cmu-131": {
        "pelvis": ("LeftHip", "RightHip"),
        "right_hip": ("RightHip",), "right_knee": ("RightKnee",), "right_ankle": ("RightAnkle",),
        "left_hip": ("LeftHip",), "left_knee": ("LeftKnee",), "left_ankle": ("LeftAnkle",),
        "spine": ("Chest",),  # the first "Chest" if the file repeats the name
        "thorax": ("Neck",), "neck_nose": ("Head",),
        "left_shoulder": ("LeftShoulder",), "left_elbow": ("LeftElbow",), "left_wrist": ("LeftWrist",),
        "right_shoulder": ("RightShoulder",), "right_elbow": ("RightElbow",), "right_wrist": ("RightWrist",),
    },
    "cmu-mb": {
        "pelvis": ("LeftUpLeg", "RightUpLeg"),
        "right_hip": ("RightUpLeg",), "right_knee": ("RightLeg",), "right_ankle": ("RightFoot",),
        "left_hip": ("LeftUpLeg",), "left_knee": ("LeftLeg",), "left_ankle": ("LeftFoot",),
        "spine": ("Spine",),
        "thorax": ("Neck1",), "neck_nose": ("Head",),
        "left_shoulder": ("LeftArm",), "left_elbow": ("LeftForeArm",), "left_wrist": ("LeftHand",),
        "right_shoulder": ("RightArm",), "right_elbow": ("RightForeArm",), "right_wrist": ("RightHand",),
    },
    "cmu-cc-avatar": {
        "pelvis": ("CC_Base_L_Thigh", "CC_Base_R_Thigh"),
        "right_hip": ("CC_Base_R_Thigh",), "right_knee": ("CC_Base_R_Calf",), "right_ankle": ("CC_Base_R_Foot",),
        "left_hip": ("CC_Base_L_Thigh",), "left_knee": ("CC_Base_L_Calf",), "left_ankle": ("CC_Base_L_Foot",),
        "spine": ("CC_Base_Spine02",),
        "thorax": ("CC_Base_NeckTwist01",), "neck_nose": ("CC_Base_Head",),
        "left_shoulder": ("CC_Base_L_Upperarm",), "left_elbow": ("CC_Base_L_Forearm",),
        "left_wrist": ("CC_Base_L_Hand",),
        "right_shoulder": ("CC_Base_R_Upperarm",), "right_elbow": ("CC_Base_R_Forearm",),
        "right_wrist": ("CC_Base_R_Hand",),
    },
}
# Extra joints each family needs beyond the map: head-top construction and the head frame.
_EXTRA = {
    "cmu-131": ("Head_end",),
    "cmu-mb": ("Head_end",),
    "cmu-cc-avatar": ("CC_Base_L_Eye", "CC_Base_R_Eye"),
}


@dataclass
class CmuClip:
    """One CMU clip as Human3.6M-17 positions.

    Attributes:
        name: the file stem, e.g. ``"131_01"``, ``"07_12"``, ``"001_01"``.
        subject: the CMU subject number as a plain integer string (``"131"``, ``"7"``, ``"1"``),
            the same for a subject in every folder (cc-avatar ``"007_12"`` and mb ``"07_12"`` are
            both subject ``"7"``).
        source: rig family, one of :data:`FAMILIES`.
        fps: frame rate of ``positions`` (after resampling).
        positions: (T, 17, 3) float32, metres, Human3.6M-17 order, world Z-up, ground at z = 0.
        head_frame: (T, 3, 3) float32 head orientation, columns (forward, left, up), or None.
    """

    name: str
    subject: str
    source: str
    fps: float
    positions: np.ndarray
    head_frame: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])


def rig_family(motion: BvhMotion) -> str:
    """``"cmu-131"``, ``"cmu-mb"`` or ``"cmu-cc-avatar"``, from the joint names."""
    names = set(motion.skeleton.joint_names)
    if {"CC_Base_Hip", "CC_Base_L_Thigh", "CC_Base_Head"} <= names:
        return "cmu-cc-avatar"
    if {"LeftUpLeg", "LeftLeg", "LeftFoot", "Neck1", "LeftArm"} <= names:
        return "cmu-mb"
    if {"LeftHip", "LeftKnee", "LeftAnkle", "lowerneck", "LeftShoulder", "LeftElbow"} <= names:
        return "cmu-131"
    sample = ", ".join(motion.skeleton.joint_names[:8])
    raise DataFormatError(
        f"unknown BVH rig (joints {sample}, ...): expected a CMU cgspeed rig (3dsMax-friendly "
        "'LeftHip/LeftKnee/LeftAnkle' or MotionBuilder-friendly 'LeftUpLeg/LeftLeg/LeftFoot') "
        "or the Character Creator rig ('CC_Base_*')"
    )


def _indices(motion: BvhMotion, family: str) -> dict[str, int]:
    names = motion.skeleton.joint_names
    needed = {n for src in _JOINT_MAP[family].values() for n in src} | set(_EXTRA[family])
    missing = sorted(n for n in needed if n not in names)
    if missing:
        raise DataFormatError(f"BVH rig '{family}' lacks joints {missing}")
    return {n: names.index(n) for n in needed}  # index(): the first of duplicated names


def _check_family(motion: BvhMotion, family: str | None) -> str:
    if family is None:
        return rig_family(motion)
    if family not in _JOINT_MAP:
        raise PoseliftError(f"unknown rig family {family!r}; expected one of {list(FAMILIES)}")
    return family


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, 1.0)


def _global_rotation(motion: BvhMotion, joint: int, frames) -> np.ndarray:
    """(T, 3, 3) global rotation of ``joint`` in file axes (product of its chain's local rotations)."""
    sk = motion.skeleton
    chain = []
    j = joint
    while j >= 0:
        chain.append(j)
        j = sk.parents[j]
    local = local_rotations(motion, frames)
    rot = local[:, chain[-1]]
    for j in reversed(chain[:-1]):
        rot = rot @ local[:, j]
    return rot


def _map(motion: BvhMotion, family: str, frames=None) -> tuple[np.ndarray, np.ndarray]:
    """(positions (T, 17, 3) metres Z-up, head frame (T, 3, 3) columns forward/left/up)."""
    idx = _indices(motion, family)
    raw = forward_kinematics(motion, frames)  # (T, J, 3) file units, Y-up
    world = (raw @ _Y_UP_TO_Z_UP.T) * UNIT_M[family]
    out = np.empty((world.shape[0], H36M_17.num_joints, 3))
    for j, joint in enumerate(H36M_17.joint_names):
        if joint == "head":  # built below from the head's own axis
            continue
        out[:, j] = np.mean([world[:, idx[s]] for s in _JOINT_MAP[family][joint]], axis=0)
    head = out[:, H36M_17.index("neck_nose")]
    if family == "cmu-cc-avatar":
        eye_l, eye_r = world[:, idx["CC_Base_L_Eye"]], world[:, idx["CC_Base_R_Eye"]]
        left = _unit(eye_l - eye_r)
        gaze = (eye_l + eye_r) / 2 - head
        e1 = _unit(gaze - (gaze * left).sum(-1, keepdims=True) * left)  # in the sagittal plane
        e2 = np.cross(e1, left)  # perpendicular to it, pointing up
        a = np.deg2rad(_CC_EYE_ELEVATION_DEG)
        fwd, up = np.cos(a) * e1 - np.sin(a) * e2, np.sin(a) * e1 + np.cos(a) * e2
        frame = np.stack([fwd, left, up], axis=-1)
        out[:, H36M_17.index("head")] = head + _CC_HEAD_TOP_M * up
    else:
        end = world[:, idx["Head_end"]]
        out[:, H36M_17.index("head")] = head + _CMU_HEAD_TOP_SCALE * (end - head)
        # Rest pose of the cgspeed rigs: upright, facing +Z, subject's left +X, up +Y (file axes).
        rot = _Y_UP_TO_Z_UP @ _global_rotation(motion, idx["Head"], frames) @ _Y_UP_TO_Z_UP.T
        frame = rot @ np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # (z, x, y)_bvh
    return out, frame


def h36m_from_bvh(motion: BvhMotion, family: str | None = None, frames=None) -> np.ndarray:
    """(T, 17, 3) Human3.6M-17 joints in metres, world Z-up, in the file's own floor and origin.

    ``family`` defaults to :func:`rig_family`; ``frames`` selects rows as in
    :func:`poselift.data.bvh.forward_kinematics`. No frames are dropped and the ground is not
    moved here (see :func:`load_cmu_clip`).
    """
    return _map(motion, _check_family(motion, family), frames)[0]


def head_frame_from_bvh(motion: BvhMotion, family: str | None = None, frames=None) -> np.ndarray:
    """(T, 3, 3) head orientation in world Z-up axes; columns are forward, left and up."""
    return _map(motion, _check_family(motion, family), frames)[1]


def motion_frame_mask(motion: BvhMotion) -> np.ndarray:
    """(T,) bool: True for rows that are motion.

    Dropped: rows whose channel values are all zero (a capture glitch such as cmu-mb/07_12's
    second row) and, at the start of the clip, rows whose rotation channels are all integers
    (cgspeed's T-pose row, written as integers, e.g. ``0 0 0 -21 ...``; real motion rows carry
    four decimals, so an all-integer row of 90+ angles does not happen by chance).
    """
    sk = motion.skeleton
    values = motion.values
    rot_cols = [start + c for chans, start in zip(sk.channels, sk.channel_start())
                for c, name in enumerate(chans) if name.endswith("rotation")]
    keep = ~np.all(values == 0.0, axis=1)
    rot = values[:, rot_cols]
    integer = np.all(rot == np.round(rot), axis=1) if rot_cols else np.zeros(len(values), bool)
    for t in range(len(values)):
        if not (integer[t] or not keep[t]):
            break
        keep[t] = False
    return keep


def place_on_ground(positions: np.ndarray, ankle_height: float = ANKLE_HEIGHT_M,
                    percentile: float = 5.0) -> np.ndarray:
    """Shift z so the clip's lowest ankle sits ``ankle_height`` above z = 0.

    "Lowest ankle" is the ``percentile``-th percentile over frames of min(left, right ankle z):
    robust to a few glitch frames and to jumps; a clip must spend at least that share of its
    frames standing on the floor for the floor to be found (climbing clips qualify as long as
    they start or end on the ground).
    """
    p = np.asarray(positions)
    ankles = p[:, [H36M_17.index("left_ankle"), H36M_17.index("right_ankle")], 2].min(axis=1)
    shift = ankle_height - np.percentile(ankles, percentile)
    out = p.copy()
    out[..., 2] += shift
    return out


def _sample_points(first: float, last: float, src_fps: float, dst_fps: float) -> np.ndarray:
    """Source-frame coordinates (floats) of the output frames covering [first, last]."""
    if dst_fps <= 0 or src_fps <= 0 or not (np.isfinite(dst_fps) and np.isfinite(src_fps)):
        raise PoseliftError(f"frame rates must be positive, got {src_fps} -> {dst_fps}")
    count = int(np.floor((last - first) * dst_fps / src_fps + 1e-9)) + 1
    return first + np.arange(count) * src_fps / dst_fps


def _interp(values: np.ndarray, at: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` (N, ...) known at increasing ``at`` (N,), read at ``where``."""
    i = np.clip(np.searchsorted(at, where, side="right") - 1, 0, max(len(at) - 2, 0))
    if len(at) == 1:
        return np.repeat(values[:1], len(where), axis=0)
    w = ((where - at[i]) / (at[i + 1] - at[i])).reshape((-1,) + (1,) * (values.ndim - 1))
    return (1.0 - w) * values[i] + w * values[i + 1]  # exact at w == 0 and w == 1


def resample(positions: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Linear interpolation in time of ``positions`` (T, ...) from ``src_fps`` to ``dst_fps``.

    Output frame k is at time k / dst_fps (the first frame is kept); the last output frame is
    the last one not past the input's end, so there are floor((T - 1) * dst / src) + 1 frames.
    Values at times shared with an input frame are that frame's values exactly.
    """
    x = np.asarray(positions)
    if len(x) == 0:
        return x.copy()
    where = _sample_points(0.0, len(x) - 1.0, float(src_fps), float(dst_fps))
    out = _interp(x.astype(np.float64, copy=False), np.arange(len(x), dtype=np.float64), where)
    return out.astype(x.dtype) if np.issubdtype(x.dtype, np.floating) else out


def _orthonormalize(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    bad = np.linalg.det(r) < 0
    if np.any(bad):
        u[bad, :, -1] *= -1
        r = u @ vt
    return r


def _nominal_fps(frame_time: float) -> float:
    """1 / frame_time, snapped to an integer rate when within 0.1% of one (0.0083333 s -> 120)."""
    fps = 1.0 / frame_time
    return float(round(fps)) if round(fps) > 0 and abs(fps - round(fps)) < 1e-3 * fps else fps


def subject_of(name: str) -> str:
    """CMU subject number of a clip stem such as ``"07_12"`` or ``"001_01"``: ``"7"``, ``"1"``."""
    head = name.split("_")[0]
    return str(int(head)) if head.isdigit() else head


def load_cmu_clip(path: str | Path, fps: float | None = 50.0) -> CmuClip:
    """Read a CMU BVH clip and return it as Human3.6M-17 positions at ``fps`` (None: native rate).

    Steps: read; find the rig family; drop non-motion rows (:func:`motion_frame_mask`); map to
    Human3.6M-17 in metres, world Z-up; put the floor at z = 0 (:func:`place_on_ground`);
    resample linearly in time (dropped rows inside the clip are bridged by the interpolation).
    """
    path = Path(path)
    motion = read_bvh(path)
    family = rig_family(motion)
    keep = motion_frame_mask(motion)
    kept = np.flatnonzero(keep)
    if len(kept) == 0:
        raise DataFormatError(f"{path}: no motion frames (every row is a T-pose or all zeros)")
    positions, frame = _map(motion, family, kept)
    positions = place_on_ground(positions)
    src_fps = _nominal_fps(motion.frame_time)
    dst_fps = src_fps if fps is None else float(fps)
    if len(kept) != kept[-1] - kept[0] + 1 or dst_fps != src_fps:
        where = _sample_points(float(kept[0]), float(kept[-1]), src_fps, dst_fps)
        positions = _interp(positions, kept.astype(np.float64), where)
        frame = _orthonormalize(_interp(frame, kept.astype(np.float64), where))
    return CmuClip(
        name=path.stem,
        subject=subject_of(path.stem),
        source=family,
        fps=dst_fps,
        positions=positions.astype(np.float32),
        head_frame=frame.astype(np.float32),
    )


def find_cmu_clips(src_dir: str | Path) -> list[Path]:
    """Every ``*.bvh`` file under ``src_dir`` (recursively), sorted by path."""
    src = Path(src_dir)
    if not src.is_dir():
        raise PoseliftError(f"{src}: not a directory (expected a folder of CMU .bvh clips)")
    return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() == ".bvh")
