"""CMU BVH clips -> Human3.6M-17 (poselift.data.cmu): resampling, frame cleaning, and mapping
sanity on real clips of every rig family (skipped when ../shared/data is absent)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from poselift.data.bvh import BvhMotion, BvhSkeleton, forward_kinematics, read_bvh
from poselift.data.cmu import (
    ANKLE_HEIGHT_M,
    UNIT_M,
    _Y_UP_TO_Z_UP,
    find_cmu_clips,
    h36m_from_bvh,
    load_cmu_clip,
    motion_frame_mask,
    place_on_ground,
    resample,
    rig_family,
    subject_of,
)
from poselift.data.coco_synthesis import coco_from_h36m
from poselift.errors import DataFormatError
from poselift.skeleton import COCO_17, H36M_17

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
J = {n: i for i, n in enumerate(H36M_17.joint_names)}

# One clip per family and variant; all are walks or runs (feet on the floor most of the time).
CLIPS = {
    "131_01": ("cmu-131/131_01.bvh", "cmu-131"),              # start-walk-stop
    "07_12": ("cmu-mb/07_12.bvh", "cmu-mb"),                  # brisk walk; T-pose + zero row
    "09_02": ("cmu-mb/09_02.bvh", "cmu-mb"),                  # run
    "002_01": ("cmu-cc-avatar/002_01.bvh", "cmu-cc-avatar"),  # walk, RL_BoneRoot (Z-up rest)
    "007_03": ("cmu-cc-avatar/007_03.bvh", "cmu-cc-avatar"),  # walk, CC_Base_Hip root
}


def _path(rel: str) -> Path:
    path = DATA / rel
    if not path.exists():
        pytest.skip(f"{path} not present (shared CMU data lives in ../shared/data)")
    return path


_CACHE: dict[str, object] = {}


def _clip(key: str):
    if key not in _CACHE:
        _CACHE[key] = load_cmu_clip(_path(CLIPS[key][0]))
    return _CACHE[key]


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _length(p, a, b):
    return np.linalg.norm(p[:, J[a]] - p[:, J[b]], axis=-1)


# ---------------------------------------------------------------- resampling (no data needed)

@pytest.mark.parametrize("frames", [1, 2, 3, 7, 12, 13, 121, 994])
def test_resample_120_to_50_count_and_coincident_frames(frames):
    rng = np.random.default_rng(frames)
    x = rng.normal(size=(frames, 17, 3))
    y = resample(x, 120.0, 50.0)
    assert len(y) == math.floor((frames - 1) * 50 / 120) + 1
    # Output frame 5k is at time k/10 s = input frame 12k: bit-for-bit equal.
    k = np.arange(0, len(y), 5)
    np.testing.assert_array_equal(y[k], x[12 * k // 5])


def test_resample_reproduces_linear_signal_and_keeps_dtype():
    t = np.arange(241) / 120.0
    x = np.stack([3.0 * t - 1.0, -0.5 * t, np.full_like(t, 2.0)], axis=-1)[:, None, :]  # (T, 1, 3)
    y = resample(x, 120.0, 50.0)
    tt = np.arange(len(y)) / 50.0
    expect = np.stack([3.0 * tt - 1.0, -0.5 * tt, np.full_like(tt, 2.0)], axis=-1)[:, None, :]
    np.testing.assert_allclose(y, expect, atol=1e-12)
    assert resample(x.astype(np.float32), 120, 50).dtype == np.float32
    up = resample(x, 120.0, 240.0)  # upsampling too
    assert len(up) == 481
    np.testing.assert_allclose(up[1::2, 0, 0], (x[1:, 0, 0] + x[:-1, 0, 0]) / 2, atol=1e-12)


def test_resample_same_rate_and_empty():
    x = np.arange(30.0).reshape(10, 3)
    np.testing.assert_array_equal(resample(x, 60, 60), x)
    assert resample(np.zeros((0, 17, 3)), 120, 50).shape == (0, 17, 3)


def test_axis_conversion_is_a_proper_rotation():
    c = _Y_UP_TO_Z_UP
    np.testing.assert_allclose(c @ c.T, np.eye(3))
    assert np.linalg.det(c) == pytest.approx(1.0)
    np.testing.assert_allclose(c @ [0, 1, 0], [0, 0, 1])   # BVH up -> world up
    np.testing.assert_allclose(c @ [1, 0, 0], [1, 0, 0])   # cgspeed rest: subject's left, kept
    np.testing.assert_allclose(c @ [0, 0, 1], [0, -1, 0])  # cgspeed rest: facing +Z -> -Y


def _one_joint_motion(values: np.ndarray) -> BvhMotion:
    sk = BvhSkeleton(["Hips"], [-1], np.zeros((1, 3)),
                     [["Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation"]], [False])
    return BvhMotion(sk, 1 / 120, np.asarray(values, dtype=np.float64))


def test_motion_frame_mask_drops_leading_integer_tpose_and_zero_rows():
    rows = np.array([
        [1.0534, 17.8153, -16.2679, 0, -21, 8],  # T-pose: rotations all integers
        [0, 0, 0, 0, 0, 0],                      # glitch: all zeros
        [1.05, 17.8, -16.2, 0.3318, -0.9965, 5.6999],
        [0, 0, 0, 0, 0, 0],                      # glitch inside the clip: dropped too
        [1.06, 17.8, -16.2, 0.3, 1.0, 5.0],      # integer rotations after motion started: kept
    ])
    np.testing.assert_array_equal(motion_frame_mask(_one_joint_motion(rows)), [False, False, True, False, True])


def test_subject_numbers_are_plain_integers():
    assert [subject_of(n) for n in ("131_01", "07_12", "001_01", "143_37", "007_12")] == ["131", "7", "1", "143", "7"]


def test_place_on_ground_puts_low_ankle_at_ankle_height():
    p = np.zeros((100, 17, 3))
    p[:, J["left_ankle"], 2] = np.linspace(1.0, 2.0, 100)
    p[:, J["right_ankle"], 2] = 1.5
    q = place_on_ground(p)
    assert np.percentile(q[:, [J["left_ankle"], J["right_ankle"]], 2].min(1), 5) == pytest.approx(ANKLE_HEIGHT_M)
    np.testing.assert_allclose(q[..., :2], p[..., :2])


def test_find_cmu_clips_recursive_sorted(tmp_path):
    for rel in ("b/2.bvh", "a/1.BVH", "a/z/3.bvh", "a/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_cmu_clips(tmp_path)] == ["a/1.BVH", "a/z/3.bvh", "b/2.bvh"]


# ---------------------------------------------------------------- real data

def test_find_all_shared_clips():
    if not DATA.exists():
        pytest.skip("../shared/data not present")
    clips = find_cmu_clips(DATA)
    folders = [c.parent.name for c in clips]
    assert (folders.count("cmu-131"), folders.count("cmu-mb")) == (3, 10)
    assert folders.count("cmu-cc-avatar") >= 60  # README says 60; 61 files are present
    assert clips == sorted(clips)


@pytest.mark.parametrize("key", list(CLIPS))
def test_rig_family_and_metadata(key):
    rel, family = CLIPS[key]
    motion = read_bvh(_path(rel))
    assert rig_family(motion) == family
    clip = _clip(key)
    assert (clip.name, clip.source, clip.fps) == (key, family, 50.0)
    assert clip.subject == str(int(key.split("_")[0]))
    assert clip.positions.dtype == np.float32 and clip.positions.shape[1:] == (17, 3)
    assert clip.head_frame.shape == (clip.num_frames, 3, 3)
    native = motion.num_frames - (1 if family == "cmu-mb" else 0) - (1 if key == "07_12" else 0)
    src_fps = round(motion.fps)
    assert clip.num_frames == math.floor((native - 1) * 50 / src_fps) + 1


def test_rig_family_rejects_other_rigs():
    sk = BvhSkeleton(["root", "thing"], [-1, 0], np.zeros((2, 3)), [["Xrotation"], ["Xrotation"]], [False, False])
    with pytest.raises(DataFormatError, match="unknown BVH rig"):
        rig_family(BvhMotion(sk, 0.01, np.zeros((1, 2))))


@pytest.mark.parametrize("key", list(CLIPS))
def test_units_axes_and_joint_sources(key):
    """h36m_from_bvh copies named rig joints, converted with x'=x, y'=-z, z'=y and the family's unit."""
    rel, family = CLIPS[key]
    motion = read_bvh(_path(rel))
    frames = np.arange(5, 15)
    h36m = h36m_from_bvh(motion, frames=frames)
    raw = forward_kinematics(motion, frames)
    names = motion.skeleton.joint_names
    src = {"cmu-131": "LeftKnee", "cmu-mb": "LeftLeg", "cmu-cc-avatar": "CC_Base_L_Calf"}[family]
    expect = raw[:, names.index(src)] @ _Y_UP_TO_Z_UP.T * UNIT_M[family]
    np.testing.assert_allclose(h36m[:, J["left_knee"]], expect, atol=1e-9)
    # the thigh is exactly the knee's OFFSET, in metres
    thigh = np.linalg.norm(motion.skeleton.offsets[names.index(src)]) * UNIT_M[family]
    np.testing.assert_allclose(_length(h36m, "left_hip", "left_knee"), thigh, rtol=1e-9)


@pytest.mark.parametrize("key", list(CLIPS))
def test_mapping_sanity(key):
    clip = _clip(key)
    p = clip.positions.astype(np.float64)
    z = p[..., 2]
    # Body frame: up = pelvis -> thorax, left = right_hip -> left_hip, forward = left x up.
    # "forward" is only a convention here; the checks below show it is the body's real front.
    up = _unit(p[:, J["thorax"]] - p[:, J["pelvis"]])
    left = p[:, J["left_hip"]] - p[:, J["right_hip"]]
    fwd = _unit(np.cross(left, up))
    # 1. Knees bend forward (a mirrored skeleton would bend them backwards in this frame).
    for side in ("left", "right"):
        hip, knee, ankle = (p[:, J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        bent = np.einsum("ti,ti->t", _unit(hip - knee), _unit(ankle - knee)) > math.cos(math.radians(160))
        assert bent.sum() > 10
        ahead = np.einsum("ti,ti->t", knee - (hip + ankle) / 2, fwd)[bent]
        assert np.mean(ahead > 0) > 0.9, f"{side} knee bends backwards in the body frame"
    # 2. The face is in front and the subject's left is on the left: the rig's own head frame
    #    (eyes for the CC rig, the Head joint's rotation for CMU rigs) agrees with the body frame.
    hf = clip.head_frame.astype(np.float64)
    assert np.median(np.einsum("ti,ti->t", hf[:, :, 0], fwd)) > 0.7
    assert np.median(np.einsum("ti,ti->t", hf[:, :, 1], _unit(left))) > 0.7
    np.testing.assert_allclose(np.linalg.det(hf), 1.0, atol=1e-4)
    nose = coco_from_h36m(p)[:, COCO_17.joint_names.index("nose")]
    assert np.mean(np.einsum("ti,ti->t", nose - p[:, J["neck_nose"]], fwd) > 0.03) > 0.95
    # 3. Upright, Z-up: head above pelvis, the body's vertical extent along z.
    assert np.all(z[:, J["head"]] > z[:, J["pelvis"]] + 0.2)  # 131_01 bends down to 0.39 m
    assert np.all(z[:, J["head"]] > z[:, J["neck_nose"]])
    extent = np.ptp(p, axis=1).mean(0)
    assert extent[2] > 1.5 * max(extent[0], extent[1])
    # 4. Ankles are the lowest joints; feet on the floor.
    lowest = np.argmin(z, axis=1)
    assert np.mean(np.isin(lowest, [J["left_ankle"], J["right_ankle"]])) > 0.9  # 131_01 kneels a while
    assert z.min() > -0.03  # nothing below the floor
    for side in ("left", "right"):
        assert 0.02 <= np.percentile(z[:, J[f"{side}_ankle"]], 5) <= 0.15
    # 5. Rigid bones keep their length; segment lengths are human, in metres.
    lengths = {
        "thigh": [_length(p, f"{s}_hip", f"{s}_knee") for s in ("left", "right")],
        "shank": [_length(p, f"{s}_knee", f"{s}_ankle") for s in ("left", "right")],
        "upper_arm": [_length(p, f"{s}_shoulder", f"{s}_elbow") for s in ("left", "right")],
        "forearm": [_length(p, f"{s}_elbow", f"{s}_wrist") for s in ("left", "right")],
        "hip_width": [_length(p, "left_hip", "right_hip")],
        "head": [_length(p, "neck_nose", "head")],
    }
    bounds = {"thigh": (0.35, 0.5), "shank": (0.33, 0.5), "upper_arm": (0.22, 0.38), "forearm": (0.17, 0.30),
              "hip_width": (0.12, 0.25), "head": (0.10, 0.14)}
    for name, segs in lengths.items():
        for seg in segs:
            assert seg.std() < 2e-3, f"{name} length varies: std {seg.std():.4f} m"
            lo, hi = bounds[name]
            assert lo <= seg.mean() <= hi, f"{name} {seg.mean():.3f} m outside [{lo}, {hi}]"
    np.testing.assert_allclose(p[:, J["pelvis"]], (p[:, J["left_hip"]] + p[:, J["right_hip"]]) / 2, atol=1e-5)
    # 6. Stature (head top over the floor), standing height = 95th percentile over a walk.
    assert 1.45 <= np.percentile(z[:, J["head"]], 95) <= 2.0


def test_mb_tpose_and_zero_frames_removed():
    motion = read_bvh(_path("cmu-mb/07_12.bvh"))
    mask = motion_frame_mask(motion)
    np.testing.assert_array_equal(mask[:3], [False, False, True])
    assert mask[2:].all()
    clip = load_cmu_clip(_path("cmu-mb/07_12.bvh"), fps=None)
    assert clip.fps == 120.0 and clip.num_frames == motion.num_frames - 2
    raw = h36m_from_bvh(motion)
    # The clip starts at the first real frame (file row 2): same pose up to the ground shift.
    np.testing.assert_allclose(clip.positions[0, :, :2], raw[2, :, :2], atol=1e-5)
    rel = clip.positions - clip.positions[:, :1]
    np.testing.assert_allclose(rel, raw[2:] - raw[2:, :1], atol=1e-5)
    # No frame is the all-zero pose (every joint at the root) or the T-pose.
    spread = np.linalg.norm(clip.positions - clip.positions[:, :1], axis=-1).max(1)
    assert spread.min() > 0.3
    tpose_rel = raw[0] - raw[0, :1]
    assert np.abs(rel - tpose_rel).max(axis=(1, 2)).min() > 0.05
    # Every other mb file: exactly the first row goes.
    first = read_bvh(_path("cmu-mb/09_02.bvh"))
    np.testing.assert_array_equal(np.flatnonzero(~motion_frame_mask(first)), [0])
    assert motion_frame_mask(read_bvh(_path("cmu-131/131_01.bvh"))).all()
    assert motion_frame_mask(read_bvh(_path("cmu-cc-avatar/002_01.bvh"))).all()


def test_zero_row_inside_a_clip_is_bridged(tmp_path):
    text = _path("cmu-mb/09_02.bvh").read_text()
    lines = text.splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith("Frame Time")) + 1
    row = start + 50
    lines[row] = " ".join(["0.0000"] * len(lines[row].split()))
    path = tmp_path / "09_02.bvh"
    path.write_text("\n".join(lines) + "\n")
    clip = load_cmu_clip(path, fps=None)
    ref = load_cmu_clip(_path("cmu-mb/09_02.bvh"), fps=None)
    assert clip.num_frames == ref.num_frames  # the gap is filled, timing kept
    k = 49  # file row 50 is clip frame 49 (row 0, the T-pose, is dropped)
    rel = lambda c, i: c.positions[i] - c.positions[i, :1]  # noqa: E731  (ground may differ slightly)
    np.testing.assert_allclose(rel(clip, k), (rel(ref, k - 1) + rel(ref, k + 1)) / 2, atol=1e-5)
    np.testing.assert_allclose(rel(clip, k + 1), rel(ref, k + 1), atol=1e-6)


def test_resampled_clip_matches_native_at_shared_times():
    native = load_cmu_clip(_path("cmu-131/131_01.bvh"), fps=None)
    at50 = _clip("131_01")
    np.testing.assert_allclose(at50.positions[::5], native.positions[::12][: len(at50.positions[::5])], atol=1e-6)
