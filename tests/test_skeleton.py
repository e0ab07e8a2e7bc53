"""Joint layouts and conversions between them (poselift.skeleton)."""

from __future__ import annotations

import numpy as np
import pytest

from poselift.errors import PoseliftError
from poselift.skeleton import (
    COCO_17,
    H36M_17,
    H36M_17_FROM_32,
    H36M_32,
    HUMANEVA_15,
    MPII_16,
    SKELETONS,
    Skeleton,
    convert_keypoints,
    conversion_matrix,
    get_skeleton,
    skeleton_for_joint_count,
)

ALL = [H36M_32, H36M_17, COCO_17, HUMANEVA_15, MPII_16]


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[len("left_"):]
    if name.startswith("right_"):
        return "left_" + name[len("right_"):]
    return name


# --------------------------------------------------------------------------- H36M 17 from 32


def test_h36m17_is_subset_of_h36m32_with_shoulders_on_thorax():
    sub = H36M_32.subset(list(H36M_17_FROM_32), "h36m")
    # Without the rewire, the shoulders (subset indices 11, 14) hang off the spine (7),
    # because their 32-joint parents (the clavicles 16, 24) are removed and those hang off 12.
    assert sub.parents[11] == 7 and sub.parents[14] == 7
    rewired = H36M_32.subset(list(H36M_17_FROM_32), "h36m", rewire={11: 8, 14: 8})
    assert rewired.parents == H36M_17.parents
    assert rewired.joints_left == H36M_17.joints_left
    assert rewired.joints_right == H36M_17.joints_right
    assert rewired.num_joints == 17
    # The reference kept-joint list (VideoPose3D's h36m_dataset.remove_joints complement).
    assert H36M_17_FROM_32 == (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
    # The hand-written parents match VideoPose3D's 17-joint Human3.6M tree.
    assert H36M_17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)


def test_h36m17_subset_keeps_semantics_of_left_right_names():
    # Every left/right joint of the 17 comes from a left/right marker of the 32 on the same side.
    for new, old in enumerate(H36M_17_FROM_32):
        n17, n32 = H36M_17.joint_names[new], H36M_32.joint_names[old]
        for side in ("left_", "right_"):
            assert n17.startswith(side) == n32.startswith(side), (n17, n32)


def test_subset_reparents_removed_joint_children_to_nearest_kept_ancestor():
    chain = Skeleton("chain", ("a", "b", "c", "d"), (-1, 0, 1, 2), (), ())
    sub = chain.subset([0, 3], "sub")
    assert sub.parents == (-1, 0)
    assert sub.joint_names == ("a", "d")


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("sk", ALL, ids=lambda s: s.name)
def test_flip_permutation_is_involution_mapping_left_to_right_names(sk):
    perm = sk.flip_permutation
    assert perm.shape == (sk.num_joints,)
    assert sorted(perm.tolist()) == list(range(sk.num_joints))  # a permutation
    np.testing.assert_array_equal(perm[perm], np.arange(sk.num_joints))
    for j, name in enumerate(sk.joint_names):
        assert sk.joint_names[perm[j]] == _mirror_name(name), (sk.name, name, sk.joint_names[perm[j]])
    # every sided joint is in a left/right list, on the right side
    for j, name in enumerate(sk.joint_names):
        if name.startswith("left_"):
            assert j in sk.joints_left
        elif name.startswith("right_"):
            assert j in sk.joints_right
        else:
            assert j not in sk.joints_left and j not in sk.joints_right


def test_flip_permutation_h36m17_explicit():
    expected = [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]
    assert H36M_17.flip_permutation.tolist() == expected


@pytest.mark.parametrize("sk", ALL, ids=lambda s: s.name)
def test_bones_and_tree(sk):
    assert len(sk.bones) == sk.num_joints - 1
    assert sk.parents.count(-1) == 1
    assert sk.parents[sk.root] == -1
    for child, parent in sk.bones:
        assert sk.parents[child] == parent
        assert child in sk.children[parent]
    # The tree is connected: every joint reaches the root.
    for j in range(sk.num_joints):
        seen = set()
        while j != -1:
            assert j not in seen
            seen.add(j)
            j = sk.parents[j]


def test_bone_counts_and_children_by_hand():
    assert len(H36M_17.bones) == 16
    assert len(H36M_32.bones) == 31
    assert len(COCO_17.bones) == 16
    assert len(HUMANEVA_15.bones) == 14
    assert len(MPII_16.bones) == 15
    assert H36M_17.children[8] == (9, 11, 14)  # thorax -> neck, both shoulders
    assert H36M_17.children[0] == (1, 4, 7)
    assert MPII_16.root == 6


def test_lookup_and_errors():
    assert get_skeleton("h36m") is H36M_17
    assert set(SKELETONS) == {"h36m32", "h36m", "coco", "humaneva15", "mpii", "mediapipe33"}
    with pytest.raises(PoseliftError, match="nope"):
        get_skeleton("nope")
    assert skeleton_for_joint_count(17) is H36M_17
    assert skeleton_for_joint_count(32) is H36M_32
    assert skeleton_for_joint_count(15) is HUMANEVA_15
    assert skeleton_for_joint_count(16) is MPII_16
    with pytest.raises(PoseliftError, match="18"):
        skeleton_for_joint_count(18)
    with pytest.raises(PoseliftError, match="elbow"):
        H36M_17.index("elbow")
    assert H36M_17.index("thorax") == 8


def test_invalid_skeleton_definitions():
    with pytest.raises(ValueError):
        Skeleton("x", ("a", "b"), (-1,), (), ())
    with pytest.raises(ValueError):
        Skeleton("x", ("a", "b"), (-1, 1), (), ())  # self parent
    with pytest.raises(ValueError):
        Skeleton("x", ("a", "b"), (-1, 5), (), ())
    with pytest.raises(ValueError):
        Skeleton("x", ("a", "b"), (-1, 0), (0,), ())


# --------------------------------------------------------------------------- conversions


def test_h36m32_to_h36m_picks_reference_joints():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 32, 3))
    y = convert_keypoints(x, H36M_32, H36M_17)
    assert y.shape == (5, 17, 3)
    np.testing.assert_array_equal(y, x[:, list(H36M_17_FROM_32)])
    # by hand for a few joints: pelvis = hip (0), thorax = 32-joint 13 (neck), right wrist = 27
    np.testing.assert_array_equal(y[:, 0], x[:, 0])
    np.testing.assert_array_equal(y[:, 8], x[:, 13])
    np.testing.assert_array_equal(y[:, 16], x[:, 27])
    np.testing.assert_array_equal(y[:, 11], x[:, 17])


def test_coco_to_h36m_by_hand():
    x = np.zeros((17, 2))
    ci = {n: i for i, n in enumerate(COCO_17.joint_names)}
    x[ci["left_hip"]] = (10.0, 20.0)
    x[ci["right_hip"]] = (30.0, 40.0)
    x[ci["left_shoulder"]] = (0.0, 100.0)
    x[ci["right_shoulder"]] = (50.0, 110.0)
    x[ci["nose"]] = (7.0, 8.0)
    x[ci["left_eye"]] = (1.0, 3.0)
    x[ci["right_eye"]] = (3.0, 5.0)
    x[ci["left_wrist"]] = (-4.0, -5.0)
    x[ci["right_knee"]] = (9.0, 9.5)
    y = convert_keypoints(x, COCO_17, H36M_17)
    assert y.shape == (17, 2)
    hi = {n: i for i, n in enumerate(H36M_17.joint_names)}
    np.testing.assert_allclose(y[hi["pelvis"]], (20.0, 30.0))
    np.testing.assert_allclose(y[hi["thorax"]], (25.0, 105.0))
    np.testing.assert_allclose(y[hi["spine"]], ((10 + 30 + 0 + 50) / 4, (20 + 40 + 100 + 110) / 4))
    np.testing.assert_allclose(y[hi["neck_nose"]], (7.0, 8.0))
    np.testing.assert_allclose(y[hi["head"]], (2.0, 4.0))
    np.testing.assert_allclose(y[hi["left_wrist"]], (-4.0, -5.0))
    np.testing.assert_allclose(y[hi["right_knee"]], (9.0, 9.5))
    np.testing.assert_allclose(y[hi["left_hip"]], (10.0, 20.0))
    np.testing.assert_allclose(y[hi["right_shoulder"]], (50.0, 110.0))


def test_conversion_rows_sum_to_one_and_batch_dims():
    for src, dst in [(COCO_17, H36M_17), (MPII_16, H36M_17), (HUMANEVA_15, H36M_17),
                     (H36M_17, MPII_16), (H36M_17, HUMANEVA_15), (H36M_32, H36M_17), (H36M_17, H36M_17)]:
        w = conversion_matrix(src, dst)
        assert w.shape == (dst.num_joints, src.num_joints)
        np.testing.assert_allclose(w.sum(axis=1), 1.0)
    x = np.random.default_rng(1).normal(size=(2, 4, 17, 3)).astype(np.float32)
    y = convert_keypoints(x, COCO_17, H36M_17)
    assert y.shape == (2, 4, 17, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(convert_keypoints(x, COCO_17, COCO_17), x)


def test_mpii_to_h36m():
    x = np.arange(16 * 2, dtype=np.float64).reshape(16, 2)
    y = convert_keypoints(x, MPII_16, H36M_17)
    m = {n: i for i, n in enumerate(MPII_16.joint_names)}
    h = {n: i for i, n in enumerate(H36M_17.joint_names)}
    for name in ("pelvis", "thorax", "right_ankle", "left_knee", "left_hip", "right_wrist",
                 "left_shoulder", "right_elbow"):
        np.testing.assert_array_equal(y[h[name]], x[m[name]])
    np.testing.assert_allclose(y[h["spine"]], (x[m["pelvis"]] + x[m["thorax"]]) / 2)
    np.testing.assert_array_equal(y[h["neck_nose"]], x[m["upper_neck"]])
    np.testing.assert_array_equal(y[h["head"]], x[m["head_top"]])


def test_h36m_to_mpii():
    x = np.random.default_rng(2).normal(size=(17, 3))
    y = convert_keypoints(x, H36M_17, MPII_16)
    m = {n: i for i, n in enumerate(MPII_16.joint_names)}
    h = {n: i for i, n in enumerate(H36M_17.joint_names)}
    np.testing.assert_array_equal(y[m["upper_neck"]], x[h["neck_nose"]])
    np.testing.assert_array_equal(y[m["head_top"]], x[h["head"]])
    np.testing.assert_array_equal(y[m["right_ankle"]], x[h["right_ankle"]])
    np.testing.assert_array_equal(y[m["pelvis"]], x[h["pelvis"]])


def test_humaneva_conversions():
    x = np.random.default_rng(3).normal(size=(15, 3))
    y = convert_keypoints(x, HUMANEVA_15, H36M_17)
    e = {n: i for i, n in enumerate(HUMANEVA_15.joint_names)}
    h = {n: i for i, n in enumerate(H36M_17.joint_names)}
    np.testing.assert_allclose(y[h["spine"]], (x[e["pelvis"]] + x[e["thorax"]]) / 2)
    np.testing.assert_allclose(y[h["neck_nose"]], (x[e["thorax"]] + x[e["head"]]) / 2)
    np.testing.assert_array_equal(y[h["head"]], x[e["head"]])
    np.testing.assert_array_equal(y[h["left_elbow"]], x[e["left_elbow"]])
    np.testing.assert_array_equal(y[h["right_hip"]], x[e["right_hip"]])
    # back: every HumanEva joint exists by name in the 17
    z = np.random.default_rng(4).normal(size=(17, 3))
    back = convert_keypoints(z, H36M_17, HUMANEVA_15)
    for j, name in enumerate(HUMANEVA_15.joint_names):
        np.testing.assert_array_equal(back[j], z[h[name]])


def test_conversion_errors():
    with pytest.raises(PoseliftError, match="no conversion"):
        convert_keypoints(np.zeros((17, 2)), COCO_17, MPII_16)
    with pytest.raises(PoseliftError, match="no conversion"):
        conversion_matrix(H36M_17, COCO_17)
    with pytest.raises(PoseliftError, match="17"):
        convert_keypoints(np.zeros((16, 2)), COCO_17, H36M_17)
    with pytest.raises(PoseliftError):
        convert_keypoints(np.zeros((17, 3)), H36M_32, H36M_17)
