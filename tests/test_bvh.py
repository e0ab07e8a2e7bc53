"""BVH reader and forward kinematics (poselift.data.bvh): hand-computed poses, errors, real CMU data."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from poselift.data.bvh import BvhMotion, forward_kinematics, local_rotations, read_bvh
from poselift.errors import DataFormatError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Root: offset (1, 2, 3) plus position channels. Chest and Arm hang off it with
# different rotation orders; Arm's end site is written on one line.
SIMPLE = """HIERARCHY
ROOT Hips
{
  OFFSET 1 2 3
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Chest
  {
    OFFSET 0 1 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 0 2 0
    }
  }
  JOINT Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site { OFFSET 0 0 1 }
  }
}
MOTION
Frames: 3
Frame Time: 0.04
0 0 0 0 0 0 0 0 0 0 0 0
10 0 0 90 0 0 0 0 0 0 0 0
0 0 0 0 0 0 90 0 90 90 0 90
"""
NAMES = ["Hips", "Chest", "Chest_end", "Arm", "Arm_end"]


def _write(tmp_path: Path, text: str, name: str = "clip.bvh", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def _line_of(text: str, needle: str) -> int:
    return next(i for i, s in enumerate(text.splitlines(), 1) if needle in s)


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    return {"X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


# ---------------------------------------------------------------- hand-written files

def test_structure(tmp_path):
    m = read_bvh(_write(tmp_path, SIMPLE))
    sk = m.skeleton
    assert sk.joint_names == NAMES
    assert sk.parents == [-1, 0, 1, 0, 3]
    assert sk.is_end_site == [False, False, True, False, True]
    assert sk.channels[0] == ["Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation"]
    assert sk.channels[3] == ["Xrotation", "Yrotation", "Zrotation"] and sk.channels[2] == []
    np.testing.assert_array_equal(sk.offsets, [[1, 2, 3], [0, 1, 0], [0, 2, 0], [1, 0, 0], [0, 0, 1]])
    assert m.values.shape == (3, 12) and m.values.dtype == np.float64
    assert m.num_frames == 3 and m.frame_time == 0.04 and m.fps == pytest.approx(25.0)


def test_rest_pose_and_root_offset_plus_position_channels(tmp_path):
    pos = forward_kinematics(read_bvh(_write(tmp_path, SIMPLE)))
    assert pos.shape == (3, 5, 3)
    # Frame 0: all channels zero -> root at its OFFSET, children at summed offsets.
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [1, 3, 3], [1, 5, 3], [2, 2, 3], [2, 2, 4]], atol=1e-12)
    # Frame 1: root translation = OFFSET (1,2,3) + channels (10,0,0); Zrotation 90
    # turns the child offset (0,1,0) into (-1,0,0) and (1,0,0) into (0,1,0).
    np.testing.assert_allclose(pos[1], [[11, 2, 3], [10, 2, 3], [8, 2, 3], [11, 3, 3], [11, 3, 4]], atol=1e-12)


def test_channel_order_matters(tmp_path):
    # Frame 2: Chest and Arm both get Z=90 and X=90, Chest listed Z Y X, Arm X Y Z.
    pos = forward_kinematics(read_bvh(_write(tmp_path, SIMPLE)))[2]
    # Chest, R = Rz @ Rx: Rx90 (0,2,0) = (0,0,2), then Rz90 leaves it -> end at Chest + (0,0,2).
    np.testing.assert_allclose(pos[2] - pos[1], [0, 0, 2], atol=1e-12)
    # Arm, R = Rx @ Rz: Rz90 (0,0,1) = (0,0,1), then Rx90 (0,0,1) = (0,-1,0).
    np.testing.assert_allclose(pos[4] - pos[3], [0, -1, 0], atol=1e-12)


@pytest.mark.parametrize("order", ["ZYX", "XYZ", "YXZ", "ZXY", "YZX", "XZY"])
def test_rotation_is_product_in_listed_order(tmp_path, order):
    angles = {"X": 30.0, "Y": -50.0, "Z": 115.0}
    text = (f"HIERARCHY\nROOT a\n{{\nOFFSET 0 0 0\nCHANNELS 3 {' '.join(c + 'rotation' for c in order)}\n"
            f"End Site\n{{\nOFFSET 0.3 -0.7 1.1\n}}\n}}\nMOTION\nFrames: 1\nFrame Time: 0.01\n"
            f"{' '.join(str(angles[c]) for c in order)}\n")
    m = read_bvh(_write(tmp_path, text))
    expected = _rot(order[0], angles[order[0]]) @ _rot(order[1], angles[order[1]]) @ _rot(order[2], angles[order[2]])
    np.testing.assert_allclose(local_rotations(m)[0, 0], expected, atol=1e-12)
    np.testing.assert_allclose(local_rotations(m)[0, 1], np.eye(3))  # end site
    np.testing.assert_allclose(forward_kinematics(m)[0, 1], expected @ [0.3, -0.7, 1.1], atol=1e-12)


def test_non_root_position_channels_and_channel_subsets(tmp_path):
    # Convention: a non-root joint's translation is OFFSET + its position channels,
    # expressed in the parent's (rotated) frame. Joints may list any channel subset.
    text = """HIERARCHY
ROOT r
{
  OFFSET 0 0 0
  CHANNELS 1 Zrotation
  JOINT slider
  {
    OFFSET 0 1 0
    CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
    JOINT tip
    {
      OFFSET 0 0 0
      CHANNELS 2 Yposition Xrotation
      End Site
      {
        OFFSET 0 0 1
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.1
0   0 0 0 0 0 0   0 0
90  0.5 0 0 0 0 0   2 90
"""
    m = read_bvh(_write(tmp_path, text))
    assert m.skeleton.channels[2] == ["Yposition", "Xrotation"]
    pos = forward_kinematics(m)
    np.testing.assert_allclose(pos[0], [[0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 1]], atol=1e-12)
    # Frame 1: root Z=90. slider translation (0,1,0)+(0.5,0,0) = (0.5,1,0) -> (-1,0.5,0).
    # tip: (0,0,0)+(0,2,0) in slider's frame (= root's) -> (-2,0,0) -> (-3,0.5,0).
    # End site: tip's Rx90 turns (0,0,1) into (0,-1,0); Rz90 turns that into (1,0,0).
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [-1, 0.5, 0], [-3, 0.5, 0], [-2, 0.5, 0]], atol=1e-12)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_whitespace_line_endings_and_exponents(tmp_path, newline):
    messy = (SIMPLE.replace("  ", "\t \t").replace("OFFSET 1 2 3", "OFFSET   1.0e0\t2E+0  30e-1  ")
             .replace("10 0 0 90", "1e1 0 0 9.0E+01").replace("End Site\n", "End   Site\n")
             .replace("Frame Time: 0.04", "Frame Time:   4e-2  ") + "\n\n")
    m = read_bvh(_write(tmp_path, messy, newline=newline))
    ref = read_bvh(_write(tmp_path, SIMPLE, name="ref.bvh"))
    assert m.skeleton.joint_names == NAMES and m.frame_time == 0.04
    np.testing.assert_array_equal(m.values, ref.values)
    np.testing.assert_allclose(forward_kinematics(m), forward_kinematics(ref))


def test_two_end_sites_under_one_joint_get_distinct_names(tmp_path):
    text = ("HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\nCHANNELS 1 Yrotation\nEnd Site\n{\nOFFSET 1 0 0\n}\n"
            "End Site\n{\nOFFSET 0 1 0\n}\n}\nMOTION\nFrames: 1\nFrame Time: 0.5\n90\n")
    m = read_bvh(_write(tmp_path, text))
    np.testing.assert_allclose(forward_kinematics(m)[0], [[0, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    assert m.skeleton.joint_names == ["a", "a_end", "a_end2"]


def test_frame_selection(tmp_path):
    m = read_bvh(_write(tmp_path, SIMPLE))
    full = forward_kinematics(m)
    np.testing.assert_allclose(forward_kinematics(m, slice(1, None)), full[1:])
    np.testing.assert_allclose(forward_kinematics(m, np.array([2, 0])), full[[2, 0]])
    np.testing.assert_allclose(forward_kinematics(m, np.array([True, False, True])), full[[0, 2]])
    np.testing.assert_allclose(local_rotations(m, slice(2, 3)), local_rotations(m)[2:])


# ---------------------------------------------------------------- errors

def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="nope.bvh"):
        read_bvh(tmp_path / "nope.bvh")


def _bad(tmp_path, text: str, *fragments: str) -> str:
    path = _write(tmp_path, text, name="bad.bvh")
    with pytest.raises(DataFormatError) as exc:
        read_bvh(path)
    msg = str(exc.value)
    assert str(path) in msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_unbalanced_braces(tmp_path):
    missing = SIMPLE.replace("    End Site { OFFSET 0 0 1 }\n  }\n", "    End Site { OFFSET 0 0 1 }\n")
    _bad(tmp_path, missing, f"line {_line_of(missing, 'MOTION')}:", "unbalanced")
    extra = SIMPLE.replace("}\nMOTION", "}\n}\nMOTION")
    _bad(tmp_path, extra, f"line {_line_of(extra, 'MOTION') - 1}:", "found '}'")
    _bad(tmp_path, SIMPLE.replace("End Site { OFFSET 0 0 1 }", "End Site { OFFSET 0 0 1"), "unbalanced")


def test_bad_channels(tmp_path):
    short = SIMPLE.replace("CHANNELS 3 Zrotation", "CHANNELS 4 Zrotation")
    _bad(tmp_path, short, f"line {_line_of(short, 'CHANNELS 4')}:", "declares 4 channels but lists 3")
    long = SIMPLE.replace("CHANNELS 3 Zrotation", "CHANNELS 2 Zrotation")
    _bad(tmp_path, long, f"line {_line_of(long, 'CHANNELS 2')}:", "declares 2")
    unknown = SIMPLE.replace("CHANNELS 3 Xrotation", "CHANNELS 3 Wrotation")
    _bad(tmp_path, unknown, f"line {_line_of(unknown, 'Wrotation')}:", "unknown channel name 'Wrotation'")
    _bad(tmp_path, SIMPLE.replace("CHANNELS 3 Xrotation Yrotation", "CHANNELS 3 Xrotation Xrotation"), "twice")


def test_bad_offset_and_missing_sections(tmp_path):
    bad = SIMPLE.replace("OFFSET 0 1 0", "OFFSET 0 one 0")
    _bad(tmp_path, bad, f"line {_line_of(bad, 'OFFSET 0 one')}:", "OFFSET needs 3 finite numbers")
    _bad(tmp_path, SIMPLE.split("MOTION")[0], "no MOTION section")
    _bad(tmp_path, "ROOT a\n" + SIMPLE, "line 1:", "expected 'HIERARCHY'")
    _bad(tmp_path, SIMPLE.replace("Frames: 3\n", ""), "expected 'Frames: <value>'")
    _bad(tmp_path, SIMPLE.replace("Frame Time: 0.04", "Frame Time: -1"), "Frame Time must be a positive")


def test_bad_motion_rows(tmp_path):
    narrow = SIMPLE.replace("10 0 0 90 0 0 0 0 0 0 0 0", "10 0 0 90 0 0 0 0 0 0 0")
    _bad(tmp_path, narrow, f"line {_line_of(narrow, '10 0 0 90')}:", "expected 12 values", "found 11")
    word = SIMPLE.replace("10 0 0 90", "10 0 zero 90")
    _bad(tmp_path, word, f"line {_line_of(word, '10 0 zero')}:", "'zero'")
    nan = SIMPLE.replace("10 0 0 90", "10 0 nan 90")
    _bad(tmp_path, nan, f"line {_line_of(nan, '10 0 nan')}:", "'nan'")


def test_frames_count_disagrees_with_rows(tmp_path):
    more = SIMPLE.replace("Frames: 3", "Frames: 4")
    _bad(tmp_path, more, "end of file", "'Frames: 4'", f"(line {_line_of(more, 'Frames:')})", "3 data rows")
    fewer = SIMPLE.replace("Frames: 3", "Frames: 2")
    # Points at the first surplus row.
    _bad(tmp_path, fewer, f"line {len(fewer.splitlines())}:", "3 data rows")
    _bad(tmp_path, SIMPLE.replace("Frames: 3", "Frames: three"), "bad Frames value 'three'")


# ---------------------------------------------------------------- real CMU data

# (folder, file, metres per unit, fps, first motion frame): cmu-mb's frame 0 is a T-pose.
REAL = [
    ("cmu-131", "131_01.bvh", 0.056444, 120.0, 0),
    ("cmu-mb", "09_02.bvh", 0.056444, 120.0, 1),
    ("cmu-cc-avatar", "007_12.bvh", 0.01, 60.0, 0),  # root CC_Base_Hip, OFFSET 0 105.2 0 (Y-up rest)
    ("cmu-cc-avatar", "002_01.bvh", 0.01, 60.0, 0),  # root RL_BoneRoot rotated -90 about X (Z-up rest)
]


@pytest.fixture(scope="module")
def real_fk():
    cache = {}

    def get(folder, name):
        path = DATA / folder / name
        if not path.is_file():
            pytest.skip(f"{path} not present (shared CMU data lives in ../shared/data)")
        if path not in cache:
            m = read_bvh(path)
            cache[path] = (m, forward_kinematics(m))
        return cache[path]

    return get


def _subtree(parents: list[int], root: int) -> list[int]:
    out = {root}
    for j, p in enumerate(parents):  # parents precede children
        if p in out:
            out.add(j)
    return sorted(out)


@pytest.mark.parametrize("folder,name,unit,fps,first", REAL, ids=[f"{r[0]}/{r[1]}" for r in REAL])
def test_real_data(real_fk, folder, name, unit, fps, first):
    m, pos = real_fk(folder, name)
    sk = m.skeleton
    header = re.search(r"Frames:\s*(\d+)", (DATA / folder / name).read_text()).group(1)
    assert m.num_frames == int(header) == pos.shape[0]
    assert m.fps == pytest.approx(fps, rel=1e-4)
    assert m.values.shape[1] == sum(len(c) for c in sk.channels)
    pos = pos[first:] * unit  # metres

    # Bone lengths are constant over frames for every non-end-site joint.
    child = np.array([j for j, p in enumerate(sk.parents) if p >= 0 and not sk.is_end_site[j]])
    length = np.linalg.norm(pos[:, child] - pos[:, np.array(sk.parents)[child]], axis=-1)
    assert (length.std(0) <= 1e-9 + 1e-9 * length.mean(0)).all()

    # Y is up: a body's per-frame extent is largest vertically.
    extent = (pos.max(1) - pos.min(1)).mean(0)
    assert extent.argmax() == 1, extent

    # Heights in metres. "Head top" = highest joint under the head (CMU: Head_end,
    # which sits below the crown; the CC rig has no crown point, its eyes are highest);
    # "foot" = lowest foot/toe/ankle joint, a few cm above the floor. Both make this
    # under-read stature by ~0.1-0.2 m, hence the 1.3 m floor (all 13 CMU cgspeed
    # clips give 1.31-1.60 m in their most upright frame).
    head = _subtree(sk.parents, sk.joint_names.index("Head" if "Head" in sk.joint_names else "CC_Base_Head"))
    feet = [j for j, n in enumerate(sk.joint_names) if re.search("Foot|Toe|Ankle", n)]
    stature = pos[:, head, 1].max(1) - pos[:, feet, 1].min(1)
    assert 1.3 < stature.max() < 2.0, stature.max()
    # A floor at y ~ 0 (this also checks that the root OFFSET is added: without it the
    # CC_Base_Hip clips would have their hips at y ~ 0 and feet at -1 m).
    assert -0.05 < np.median(pos[:, feet, 1].min(1)) < 0.15
    # Thigh (hip to knee) of an adult.
    thigh = [j for j, n in enumerate(sk.joint_names) if n in ("LeftLeg", "LeftKnee", "CC_Base_L_Calf")]
    assert 0.33 < np.linalg.norm(sk.offsets[thigh[0]]) * unit < 0.5


def test_fk_speed_on_4000_frames(real_fk):
    m, _ = real_fk("cmu-131", "131_01.bvh")
    long = BvhMotion(m.skeleton, m.frame_time, np.tile(m.values, (5, 1))[:4000])
    start = time.perf_counter()
    pos = forward_kinematics(long)
    elapsed = time.perf_counter() - start
    assert pos.shape == (4000, len(m.skeleton.joint_names), 3)
    assert elapsed < 1.0, elapsed  # ~0.05 s here; generous for loaded CI machines
