"""Free-bone frames and vectors: invariance, conventions, mirroring, degenerate inputs, PoseReg agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from model_helpers import h36m_pose_without_legs

from poselift.priors.bone_ratios import (BONE_NAMES, BONE_RATIOS, BONES, SYMMETRIC_BONE_PAIRS, bone_lengths,
                                         bone_ratios)
from poselift.priors.free_bones import (FREE_BONE_JOINT_WEIGHTS, FREE_BONE_NAMES, FREE_BONES, MIRROR_PAIRS,
                                        free_bone_frames, free_bone_vectors, mirror_free_bone_vectors)
from poselift.skeleton import H36M_17

J = {n: i for i, n in enumerate(H36M_17.joint_names)}
FB = {n: i for i, n in enumerate(FREE_BONE_NAMES)}

# PoseReg's TOY_3D_POSE (commented out in agents/helper.py; mm, camera-like axes: y down, +z the face's side),
# in metres. Its left ankle and right wrist are deliberately implausible.
TOY_POSE = np.array([
    [0, 0, 0], [160, 0, 0], [180, 360, 60], [160, 840, 0], [-160, 0, 0], [-180, 360, 60], [-180, 360, 480],
    [0, -260, -40], [0, -500, 0], [0, -600, 40], [0, -660, -20], [-240, -480, 0], [-320, -240, -80],
    [-220, 20, 80], [240, -480, 0], [240, -180, 0], [240, -180, -320]], dtype=np.float64) / 1000.0

# PoseReg's own free-bone unit vectors of TOY_POSE, obtained by running lawrenceamadi/PoseReg (HEAD c30da48)
# agents/rbo_transform_tc.FreeBoneOrientation (rot_tfm_mode=0, quintuple=False, validate_ops=True) configured
# by agents/pose_regs.fboa_rotamatrix_config(JMC_RMTX_JOINT_CONFIG, group_jnts=False), float32, CPU.
# Rows in JMC_RMTX_JOINT_CONFIG order (= FREE_BONES order).
POSEREG_TOY_VECTORS = np.array([
    [0.0063455, -0.7893522, 0.6139079],    # UFace
    [-0.0039106, 0.9583856, -0.2854498],   # Head
    [0.0, 0.9499258, 0.3124756],           # Thorax
    [0.0, 0.9883717, -0.1520572],          # Abdomen
    [-1.0, 0.0, 0.0],                      # RHip
    [1.0, 0.0, 0.0],                       # LHip
    [-0.0547176, -0.9984239, 0.0124803],   # RThigh
    [0.0547176, -0.9984239, 0.0124803],    # LThigh
    [0.0936435, -0.9538727, -0.2852329],   # RLeg
    [-0.0089955, -0.1641527, 0.9863939],   # LLeg (ankle bent forward, beyond hyperextension)
    [-0.9962652, -0.0819156, 0.0273026],   # RShoulder
    [0.9962652, -0.0819156, 0.0273026],    # LShoulder
    [-0.0830455, -0.9828945, 0.1643835],   # RBicep
    [0.3755874, -0.9141006, -0.1528209],   # LBicep
    [0.0, 0.0, -1.0],                      # RForearm
    [-0.459982, -0.4880532, 0.7417687],    # LForearm
])


def standing_pose(knee_deg: float = 30.0) -> np.ndarray:
    """A person facing +z with y up (their right at -x); knees flexed ``knee_deg`` (negative = bent backwards)."""
    p = h36m_pose_without_legs()
    k = math.radians(knee_deg)
    for side, sx in (("right", -1.0), ("left", 1.0)):
        p[J[f"{side}_knee"]] = (0.1 * sx, 0.55, 0.0)
        p[J[f"{side}_ankle"]] = (0.1 * sx, 0.55 - 0.45 * math.cos(k), -0.45 * math.sin(k))
    return p


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1.0
    return q


def random_poses(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return TOY_POSE[None] + rng.normal(scale=0.08, size=(n, 17, 3))


def test_definitions_follow_posereg():
    assert len(FREE_BONES) == 16 and len(BONES) == 16 and len(BONE_RATIOS) == 15
    names = lambda *ks: tuple(H36M_17.joint_names[k] for k in ks)  # noqa: E731
    assert names(*FREE_BONES[0].keypoints) == ("head", "thorax", "right_shoulder", "neck_nose")  # UFace
    assert names(*FREE_BONES[FB["left_thigh"]].keypoints) == ("left_hip", "pelvis", "spine", "left_knee")
    assert names(*FREE_BONES[FB["right_forearm"]].keypoints) == ("right_elbow", "right_shoulder", "thorax",
                                                                 "right_wrist")
    assert MIRROR_PAIRS == ((4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15))
    assert FREE_BONE_JOINT_WEIGHTS == (0.03, 0.01, 0.01, 0.95) and math.isclose(sum(FREE_BONE_JOINT_WEIGHTS), 1.0)
    # Bone index = child joint - 1; PoseReg's head bones: head = thorax->head, upper_face = head->nose.
    assert [b[1] for b in BONES] == list(range(1, 17))
    assert BONES[BONE_NAMES.index("upper_face")][1:] == (J["neck_nose"], J["head"])
    assert BONES[BONE_NAMES.index("head")][1:] == (J["head"], J["thorax"])
    assert BONE_RATIOS[9] == ("right_forearm/right_bicep", BONE_NAMES.index("right_forearm"),
                              BONE_NAMES.index("right_bicep"))
    assert [(BONE_NAMES[r], BONE_NAMES[l]) for r, l in SYMMETRIC_BONE_PAIRS][3] == ("right_shoulder", "left_shoulder")


def test_matches_posereg_reference_vectors():
    mine = free_bone_vectors(TOY_POSE)
    # The reference ran in float32: agreement to its precision on every bone.
    np.testing.assert_allclose(mine, POSEREG_TOY_VECTORS, atol=1e-6)


def test_frames_are_rotations_with_axis_and_plane_keypoints_in_place():
    poses = torch.from_numpy(random_poses(50))
    frames = free_bone_frames(poses)
    eye = torch.eye(3, dtype=poses.dtype)
    assert torch.allclose(frames @ frames.transpose(-1, -2), eye.expand_as(frames), atol=1e-12)
    assert torch.allclose(torch.linalg.det(frames), torch.ones(50, 16, dtype=poses.dtype), atol=1e-12)
    for j, b in enumerate(FREE_BONES):
        axis_local = torch.einsum("nij,nj->ni", frames[:, j], poses[:, b.axis] - poses[:, b.pivot])
        plane_local = torch.einsum("nij,nj->ni", frames[:, j], poses[:, b.plane] - poses[:, b.pivot])
        length = torch.linalg.norm(poses[:, b.axis] - poses[:, b.pivot], dim=-1)
        # Axis keypoint on the configured axis, on the configured side; plane keypoint in the local xy plane.
        assert torch.allclose(axis_local[:, b.axis_row], b.axis_sign * length, atol=1e-12)
        assert torch.allclose(axis_local[:, 1 - b.axis_row], torch.zeros(50, dtype=poses.dtype), atol=1e-12)
        assert torch.allclose(axis_local[:, 2], torch.zeros(50, dtype=poses.dtype), atol=1e-12)
        assert torch.allclose(plane_local[:, 2], torch.zeros(50, dtype=poses.dtype), atol=1e-12)


def test_invariant_to_global_rotation_and_translation_and_unit_norm():
    rng = np.random.default_rng(1)
    poses = random_poses(20, seed=2)
    rot = random_rotations(20, rng)
    moved = np.einsum("nij,nkj->nki", rot, poses) + rng.normal(scale=3.0, size=(20, 1, 3))
    v, v_moved = free_bone_vectors(poses), free_bone_vectors(moved)
    np.testing.assert_allclose(v_moved, v, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(v, axis=-1), 1.0, atol=1e-12)


def test_knee_bent_backwards_lands_on_the_other_side_of_the_plane():
    normal = free_bone_vectors(standing_pose(30.0))
    backwards = free_bone_vectors(standing_pose(-30.0))
    for name in ("right_leg", "left_leg"):
        j = FB[name]
        # Hand-derived: local y = knee->hip (up), z = forward normal of the knee-hip-pelvis plane, x = world x;
        # the shank (0, -cos 30, -/+ sin 30) in the world is the same in the local frame.
        np.testing.assert_allclose(normal[j], [0.0, -math.cos(math.radians(30)), -0.5], atol=1e-12)
        np.testing.assert_allclose(backwards[j], [0.0, -math.cos(math.radians(30)), 0.5], atol=1e-12)
    # PoseReg's toy left ankle, bent forward 90 degrees, also sits on the "backwards" side.
    assert POSEREG_TOY_VECTORS[FB["left_leg"], 2] > 0 > POSEREG_TOY_VECTORS[FB["right_leg"], 2]


def test_mirrored_pose_gives_equal_grouped_vectors():
    rng = np.random.default_rng(3)
    poses = random_poses(10, seed=4)
    # Reflect through a random plane (not only x -> -x) and swap the left/right labels.
    normal = rng.normal(size=3)
    normal /= np.linalg.norm(normal)
    reflect = np.eye(3) - 2.0 * np.outer(normal, normal)
    mirrored = (poses @ reflect.T)[:, H36M_17.flip_permutation]
    v, vm = free_bone_vectors(poses), free_bone_vectors(mirrored)
    g, gm = mirror_free_bone_vectors(v), mirror_free_bone_vectors(vm)
    for r, l in MIRROR_PAIRS:
        np.testing.assert_allclose(gm[:, l], v[:, r], atol=1e-9)
        np.testing.assert_allclose(gm[:, r], g[:, l], atol=1e-9)
        np.testing.assert_allclose(gm[:, l], g[:, r], atol=1e-9)  # grouped vectors equal across the mirror
    # The mirror is x-negation of the left bones only, and an involution.
    np.testing.assert_array_equal(mirror_free_bone_vectors(g), v)
    np.testing.assert_array_equal(g[:, [0, 1, 2, 3, 4, 6, 8, 10, 12, 14]], v[:, [0, 1, 2, 3, 4, 6, 8, 10, 12, 14]])
    np.testing.assert_array_equal(g[:, 5, 0], -v[:, 5, 0])


def test_torch_and_numpy_agree_and_keep_dtype():
    poses = random_poses(4)
    v_np = free_bone_vectors(poses.astype(np.float32))
    v_t = free_bone_vectors(torch.from_numpy(poses.astype(np.float32)))
    assert isinstance(v_np, np.ndarray) and v_np.dtype == np.float32 and v_t.dtype == torch.float32
    np.testing.assert_allclose(v_t.numpy(), v_np, atol=1e-7)
    assert free_bone_vectors(torch.zeros(2, 5, 17, 3)).shape == (2, 5, 16, 3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        free_bone_vectors(np.zeros((4, 16, 3)))


@pytest.mark.parametrize("case", ["all_zero", "zero_length_bones", "collinear"])
def test_degenerate_poses_give_finite_values_and_gradients(case):
    pose = torch.from_numpy(standing_pose()).float()
    if case == "all_zero":
        pose = torch.zeros(17, 3)
    elif case == "zero_length_bones":
        pose[J["right_knee"]] = pose[J["right_hip"]]  # thigh of length 0 (pivot == free, and an axis of length 0)
        pose[J["left_wrist"]] = pose[J["left_elbow"]]
        pose[J["spine"]] = pose[J["pelvis"]]
    else:
        pose[J["right_shoulder"]] = pose[J["thorax"]] + 0.3 * (pose[J["spine"]] - pose[J["thorax"]])  # on the axis
    pose = pose.clone().requires_grad_(True)
    v = free_bone_vectors(pose)
    loss = (v * torch.linspace(-1, 1, 48).reshape(16, 3)).sum() + bone_ratios(pose).sum() + bone_lengths(pose).sum()
    loss.backward()
    assert torch.isfinite(v).all() and torch.isfinite(loss)
    assert torch.isfinite(pose.grad).all()
    norms = torch.linalg.norm(v, dim=-1)
    assert torch.all((norms < 1e-6) | ((norms - 1).abs() < 1e-5))  # each vector is unit, or zero when undefined


def test_bone_lengths_and_ratios_hand_computed():
    pose = standing_pose(0.0)
    lengths = bone_lengths(pose)
    assert lengths[BONE_NAMES.index("right_thigh")] == pytest.approx(0.45, abs=1e-9)
    assert lengths[BONE_NAMES.index("right_leg")] == pytest.approx(0.45, abs=1e-9)
    assert lengths[BONE_NAMES.index("right_hip")] == pytest.approx(0.1, abs=1e-9)
    ratios = bone_ratios(pose)
    names = [r[0] for r in BONE_RATIOS]
    assert ratios[names.index("right_leg/right_thigh")] == pytest.approx(1.0, abs=1e-9)
    assert ratios[names.index("right_hip/right_thigh")] == pytest.approx(0.1 / 0.45, abs=1e-9)
    assert ratios[names.index("right_hip/abdomen")] == pytest.approx(0.1 / math.hypot(0.25, 0.01), abs=1e-9)
    t = bone_ratios(torch.from_numpy(pose))
    np.testing.assert_allclose(t.numpy(), ratios, atol=1e-12)
