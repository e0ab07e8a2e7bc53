"""BVH export (poselift.io.bvh_export): fitted rotations reproduce the joints when read back by poselift's reader.

The motions are made by forward kinematics on the Human3.6M-17 tree from
smooth random joint angles, so their bone lengths are constant and a BVH can
reproduce them exactly; a second test adds lifter-like noise.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from poselift.data.bvh import forward_kinematics, read_bvh
from poselift.errors import DataFormatError, OutputError
from poselift.geometry.rotations import axis_rotation
from poselift.infer.types import Poses3D, VideoMeta
from poselift.io.bvh_export import BVH_JOINT_NAMES, matrix_to_euler, write_bvh
from poselift.skeleton import H36M_17

PARENTS = np.array(H36M_17.parents)
CHAIN_BONES = [2, 3, 5, 6, 8, 10, 12, 13, 15, 16]  # bones whose parent joint has one child
BRANCH_BONES = [1, 4, 7, 9, 11, 14]  # bones leaving the pelvis and the thorax

# A rest skeleton (Y-up, metres) deliberately off the exporter's axes: hips a
# little low and forward, spine leaning, nose forward, arms hanging down.
GEN_OFFSETS = np.array([
    [0, 0, 0],
    [-0.13, -0.03, 0.01], [0.0, -0.44, 0.02], [0.01, -0.43, -0.03],
    [0.125, -0.035, 0.0], [0.01, -0.44, 0.02], [0.0, -0.43, -0.03],
    [0.0, 0.23, -0.02], [0.0, 0.25, 0.01], [0.0, 0.11, 0.06], [0.0, 0.12, -0.02],
    [0.15, -0.01, -0.01], [0.0, -0.28, 0.0], [0.0, -0.25, 0.01],
    [-0.15, -0.01, -0.01], [0.0, -0.28, 0.0], [0.0, -0.25, 0.01],
])


def _smooth(rng, t: int, amplitude_deg: float, fps: float) -> np.ndarray:
    """(t,) a smooth random signal: a few sinusoids of 0.2-1.5 Hz."""
    time = np.arange(t) / fps
    out = np.zeros(t)
    for _ in range(3):
        out += rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * rng.uniform(0.2, 1.5) * time + rng.uniform(0, 2 * np.pi))
    return np.deg2rad(amplitude_deg) * out / 3


def _rot_zyx(a: np.ndarray) -> np.ndarray:
    return axis_rotation("z", a[:, 0]) @ axis_rotation("y", a[:, 1]) @ axis_rotation("x", a[:, 2])


def synthetic_motion(t: int = 120, seed: int = 0, fps: float = 30.0, turns: float = 0.0) -> np.ndarray:
    """(t, 17, 3) camera-space joints from forward kinematics of random smooth joint angles."""
    rng = np.random.default_rng(seed)
    heading = _smooth(rng, t, 60, fps) + 2 * np.pi * turns * np.arange(t) / max(t - 1, 1)
    root = axis_rotation("y", heading) @ _rot_zyx(np.stack([_smooth(rng, t, 15, fps) for _ in range(3)], 1))
    root_pos = np.stack([_smooth(rng, t, 20, fps), 0.95 + _smooth(rng, t, 5, fps),
                         -4.0 + _smooth(rng, t, 30, fps)], axis=1)  # degrees used as a scale: ~0.3 m
    glob = np.empty((t, 17, 3, 3))
    pos = np.empty((t, 17, 3))
    glob[:, 0], pos[:, 0] = root, root_pos
    for j in range(1, 17):
        p = PARENTS[j]
        local = _rot_zyx(np.stack([_smooth(rng, t, 40, fps) for _ in range(3)], 1))
        pos[:, j] = pos[:, p] + glob[:, p] @ GEN_OFFSETS[j]
        glob[:, j] = glob[:, p] @ local
    return pos * [1, -1, -1]  # Y-up -> camera space (the same half turn about x)


def make_poses(k3: np.ndarray, fps: float = 30.0) -> Poses3D:
    t = len(k3)
    return Poses3D(
        keypoints_3d=k3.astype(np.float32), keypoints_2d=np.zeros((t, 17, 2), np.float32),
        scores_2d=np.ones((t, 17), np.float32), valid=np.ones(t, bool), detected=np.ones(t, bool),
        fps=fps, meta=VideoMeta(width=640, height=480, fps=fps, num_frames=t),
    )


def read_back(path) -> tuple[np.ndarray, object]:
    """(T, 17, 3) camera-space H36M joints of a written BVH, via poselift's own reader and FK."""
    motion = read_bvh(path)
    pos = forward_kinematics(motion)
    index = [motion.skeleton.joint_names.index(name) for name in BVH_JOINT_NAMES]
    return pos[:, index] * [1, -1, -1], motion


def bones(p: np.ndarray) -> np.ndarray:
    return p[:, 1:] - p[:, PARENTS[1:]]


def angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_matrix_to_euler_inverts_every_order():
    rng = np.random.default_rng(3)
    a = np.stack([rng.uniform(-np.pi, np.pi, 200), rng.uniform(-1.5, 1.5, 200), rng.uniform(-np.pi, np.pi, 200)], 1)
    for order in map("".join, itertools.permutations("XYZ")):
        r = axis_rotation(order[0], a[:, 0]) @ axis_rotation(order[1], a[:, 1]) @ axis_rotation(order[2], a[:, 2])
        np.testing.assert_allclose(matrix_to_euler(r, order), a, atol=1e-9, err_msg=order)


def test_constant_bone_lengths_round_trip_below_1mm(tmp_path):
    k3 = synthetic_motion(t=150, seed=1)
    write_bvh(make_poses(k3), tmp_path / "m.bvh")
    back, motion = read_back(tmp_path / "m.bvh")
    err = np.linalg.norm(back - k3.astype(np.float32), axis=-1)
    assert err.max() < 1e-3, f"max joint error {err.max() * 1000:.3f} mm"
    assert err.mean() < 1e-4  # float32 input and 6-decimal file values: a few micrometres
    # the OFFSETs are the generator's bone lengths
    lengths = np.linalg.norm(motion.skeleton.offsets[[motion.skeleton.joint_names.index(n)
                                                      for n in BVH_JOINT_NAMES[1:]]], axis=1)
    np.testing.assert_allclose(lengths, np.linalg.norm(GEN_OFFSETS[1:], axis=1), atol=2e-6)


def test_header_channels_frames_and_frame_time(tmp_path):
    k3 = synthetic_motion(t=40, seed=2)
    write_bvh(make_poses(k3, fps=30.0), tmp_path / "a.bvh")
    text = (tmp_path / "a.bvh").read_text()
    assert text.startswith("HIERARCHY\nROOT Hips\n{\n  OFFSET 0.000000 0.000000 0.000000\n"
                           "  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation\n")
    assert len(re.findall(r"CHANNELS 6 ", text)) == 1 and len(re.findall(r"CHANNELS 3 ", text)) == 16
    assert len(re.findall(r"End Site", text)) == 5
    assert "Frames: 40\nFrame Time: 0.03333333\n" in text
    motion = read_bvh(tmp_path / "a.bvh")
    sk = motion.skeleton
    assert [n for n, end in zip(sk.joint_names, sk.is_end_site) if not end] == list(BVH_JOINT_NAMES)
    assert sorted(n for n, end in zip(sk.joint_names, sk.is_end_site) if end) == sorted(
        ["RightFoot_end", "LeftFoot_end", "Head_end", "LeftHand_end", "RightHand_end"])
    assert [sk.joint_names[p] for p in sk.parents[1:] if p >= 0][:3] == ["Hips", "RightUpLeg", "RightLeg"]
    assert sk.joint_names[sk.parents[sk.joint_names.index("LeftArm")]] == "Thorax"
    assert motion.values.shape == (40, 6 + 16 * 3)
    assert sk.channels[sk.joint_names.index("LeftForeArm")] == ["Zrotation", "Xrotation", "Yrotation"]
    assert sk.channels[sk.joint_names.index("RightLeg")] == ["Xrotation", "Yrotation", "Zrotation"]

    write_bvh(make_poses(k3, fps=30.0), tmp_path / "b.bvh", fps=25.0)
    assert read_bvh(tmp_path / "b.bvh").frame_time == pytest.approx(1 / 25, abs=1e-9)
    assert read_bvh(tmp_path / "a.bvh").frame_time == pytest.approx(1 / 30, abs=1e-8)


def _t_pose() -> np.ndarray:
    """(17, 3) Y-up joints lying exactly on the exporter's rest axes (a T-pose facing +Z)."""
    p = np.zeros((17, 3))
    p[0] = [0, 1, 0]
    p[1], p[4] = p[0] + [-0.1, 0, 0], p[0] + [0.1, 0, 0]
    p[2], p[5] = p[1] + [0, -0.45, 0], p[4] + [0, -0.45, 0]
    p[3], p[6] = p[2] + [0, -0.4, 0], p[5] + [0, -0.4, 0]
    p[7] = p[0] + [0, 0.2, 0]
    p[8] = p[7] + [0, 0.25, 0]
    p[9] = p[8] + [0, 0.1, 0]
    p[10] = p[9] + [0, 0.12, 0]
    p[11], p[14] = p[8] + [0.15, 0, 0], p[8] + [-0.15, 0, 0]
    p[12], p[15] = p[11] + [0.3, 0, 0], p[14] + [-0.3, 0, 0]
    p[13], p[16] = p[12] + [0.25, 0, 0], p[15] + [-0.25, 0, 0]
    return p


def test_hand_computed_angles(tmp_path):
    rest = _t_pose()
    turned = rest @ axis_rotation("y", np.pi / 2).T  # whole body turned 90 degrees left about Y
    bent = rest.copy()
    bent[13] = bent[12] + [0, 0, 0.25]  # left forearm bent 90 degrees forward (+Z)
    frames = np.stack([rest, turned, bent]) * [1, -1, -1]
    write_bvh(make_poses(frames), tmp_path / "h.bvh")
    motion = read_bvh(tmp_path / "h.bvh")
    sk, v = motion.skeleton, motion.values

    def channels(name):
        start = sk.channel_start()[sk.joint_names.index(name)]
        return v[:, start:start + len(sk.channels[sk.joint_names.index(name)])]

    np.testing.assert_allclose(v[0, 3:], 0, atol=1e-6)  # the rest pose: every angle zero
    np.testing.assert_allclose(channels("Hips")[:, :3], [[0, 1, 0], [0, 1, 0], [0, 1, 0]], atol=1e-6)
    np.testing.assert_allclose(channels("Hips")[1, 3:], [0, 0, 90], atol=1e-5)  # Z X Y: Yrotation = 90
    np.testing.assert_allclose(v[1, 6:], 0, atol=1e-5)  # nothing moved relative to the pelvis
    np.testing.assert_allclose(channels("LeftForeArm")[2], [0, 0, -90], atol=1e-5)  # Ry(-90) takes +X to +Z
    others = v[2, 3:].copy()  # every other angle of the bent frame stays zero
    start = sk.channel_start()[sk.joint_names.index("LeftForeArm")] - 3
    others[start:start + 3] = 0
    np.testing.assert_allclose(others, 0, atol=1e-5)
    offsets = dict(zip(sk.joint_names, sk.offsets))
    np.testing.assert_allclose(offsets["RightLeg"], [0, -0.45, 0], atol=1e-6)
    np.testing.assert_allclose(offsets["LeftHand"], [0.25, 0, 0], atol=1e-6)
    np.testing.assert_allclose(offsets["LeftHand_end"], [0.35 * 0.25, 0, 0], atol=1e-6)
    np.testing.assert_allclose(offsets["RightFoot_end"], [0, 0, 0.4 * 0.4], atol=1e-6)
    back, _ = read_back(tmp_path / "h.bvh")
    np.testing.assert_allclose(back, frames, atol=2e-6)


def test_noisy_bone_lengths_directions_and_bounded_positions(tmp_path):
    rng = np.random.default_rng(7)
    clean = synthetic_motion(t=150, seed=4)
    sigma = 0.005  # 5 mm per joint and frame, plus a slow 2 % drift of the whole scale
    drift = 1 + 0.02 * np.sin(np.linspace(0, 3 * np.pi, len(clean)))[:, None, None]
    noisy = (clean - clean[:, :1]) * drift + clean[:, :1] + rng.normal(0, sigma, clean.shape)
    noisy = noisy.astype(np.float32).astype(np.float64)
    write_bvh(make_poses(noisy), tmp_path / "n.bvh")
    back, _ = read_back(tmp_path / "n.bvh")

    ang = angles_deg(bones(back), bones(noisy))  # (T, 16), bone k ends at joint k + 1
    chain, branch = ang[:, np.array(CHAIN_BONES) - 1], ang[:, np.array(BRANCH_BONES) - 1]
    assert chain.max() < 0.01  # single-child bones: matched exactly by construction
    # Bones leaving the pelvis and thorax: one rotation cannot fit three noisy
    # directions; bound: a 4-sigma noise tilt of the shortest (12.5 cm hip) bone, whose two
    # ends are both noisy, atan(4 sigma sqrt(2) / 0.125) = 12.7 deg (measured max: 8.9 deg).
    theta_branch = np.degrees(np.arctan(4 * sigma * np.sqrt(2) / 0.125))
    assert branch.max() < theta_branch, f"{branch.max():.2f} >= {theta_branch:.2f} deg"
    # typical error: about one noise-induced tilt of the shortest branch bone, sigma * sqrt(2) / 0.125
    assert np.median(branch) < np.degrees(np.arctan(sigma * np.sqrt(2) / 0.125))

    # Position bound from the triangle inequality along each joint's path to the
    # root: |L d - v| <= | L - |v| | + |v| * 2 sin(theta / 2) per bone.
    length_in = np.linalg.norm(bones(noisy), axis=-1)
    median_len = np.median(length_in, axis=0)
    theta = np.zeros(16)
    theta[np.array(BRANCH_BONES) - 1] = np.radians(theta_branch)
    theta[np.array(CHAIN_BONES) - 1] = np.radians(0.01)
    per_bone = np.abs(length_in - median_len) + length_in * 2 * np.sin(theta / 2)
    bound = np.zeros((len(noisy), 17))
    for j in range(1, 17):
        bound[:, j] = bound[:, PARENTS[j]] + per_bone[:, j - 1]
    err = np.linalg.norm(back - noisy, axis=-1)
    assert err[:, 0].max() < 1e-5  # the root is written as given
    assert (err <= bound + 1e-5).all()
    assert err.mean() < 0.02


def test_two_turns_give_continuous_angles(tmp_path):
    k3 = synthetic_motion(t=240, seed=5, turns=2.0)
    write_bvh(make_poses(k3), tmp_path / "spin.bvh")
    back, motion = read_back(tmp_path / "spin.bvh")
    assert np.linalg.norm(back - k3, axis=-1).max() < 1e-3
    rot_cols = [i for i, name in enumerate(c for chans in motion.skeleton.channels for c in chans)
                if name.endswith("rotation")]
    jumps = np.abs(np.diff(motion.values[:, rot_cols], axis=0))
    assert jumps.max() < 20.0, f"largest frame-to-frame angle change {jumps.max():.1f} deg"
    yrot = motion.values[:, 5]  # Hips: X Y Z position, Z X Y rotation
    assert abs(abs(yrot[-1] - yrot[0]) - 720.0) < 45.0  # two turns (+/- the random heading wobble)
    assert np.abs(motion.values[:, 3:5]).max() < 40.0  # tilts stay tilts


def test_errors(tmp_path):
    k3 = synthetic_motion(t=10, seed=6)
    bad = k3.copy()
    bad[4, 3] = np.nan
    with pytest.raises(DataFormatError, match=r"non-finite values in 1 of 10 frames \(first: frame 4\)"):
        write_bvh(make_poses(bad), tmp_path / "x.bvh")
    with pytest.raises(DataFormatError, match="rest_pose"):
        write_bvh(make_poses(k3), tmp_path / "x.bvh", rest_pose=np.zeros((16, 3)))
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match=r"f/x\.bvh: cannot write the BVH file"):
        write_bvh(make_poses(k3), tmp_path / "f" / "x.bvh")
    (tmp_path / "d.bvh").mkdir()
    with pytest.raises(OutputError, match=r"d\.bvh"):
        write_bvh(make_poses(k3), tmp_path / "d.bvh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.bvh", "f"]


def test_rest_pose_sets_offsets(tmp_path):
    k3 = synthetic_motion(t=30, seed=8)
    rest_cam = _t_pose() * [1, -1, -1]
    write_bvh(make_poses(k3), tmp_path / "r.bvh", rest_pose=rest_cam)
    sk = read_bvh(tmp_path / "r.bvh").skeleton
    offsets = dict(zip(sk.joint_names, sk.offsets))
    np.testing.assert_allclose(offsets["LeftUpLeg"], [0.1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(offsets["Neck"], [0, 0.1, 0], atol=1e-6)
    back, _ = read_back(tmp_path / "r.bvh")
    # other bone lengths than the motion's: only the directions of chain bones can match
    ang = angles_deg(bones(back), bones(k3))[:, np.array(CHAIN_BONES) - 1]
    assert ang.max() < 0.01
