"""3D COCO-17 keypoints from Human3.6M-17 joints (poselift.data.coco_synthesis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from poselift.data.coco_synthesis import BODY_FROM_H36M, FACE_MODEL, coco_from_h36m, head_frame_from_h36m
from poselift.errors import PoseliftError
from poselift.skeleton import COCO_17, H36M_17

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
H = {n: i for i, n in enumerate(H36M_17.joint_names)}
C = {n: i for i, n in enumerate(COCO_17.joint_names)}

# A standing subject facing +x, left +y, up +z (metres, ground z = 0).
STANDING = {
    "pelvis": (0.0, 0.0, 0.95), "right_hip": (0.0, -0.1, 0.95), "right_knee": (0.02, -0.1, 0.52),
    "right_ankle": (0.0, -0.1, 0.08), "left_hip": (0.0, 0.1, 0.95), "left_knee": (0.02, 0.1, 0.52),
    "left_ankle": (0.0, 0.1, 0.08), "spine": (0.0, 0.0, 1.18), "thorax": (0.0, 0.0, 1.43),
    "neck_nose": (0.0, 0.0, 1.55), "head": (0.0, 0.0, 1.67),
    "left_shoulder": (0.0, 0.17, 1.40), "left_elbow": (0.0, 0.19, 1.12), "left_wrist": (0.05, 0.2, 0.88),
    "right_shoulder": (0.0, -0.17, 1.40), "right_elbow": (0.0, -0.19, 1.12), "right_wrist": (0.05, -0.2, 0.88),
}
POSE = np.array([STANDING[n] for n in H36M_17.joint_names])


def _rot_z(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_body_joints_are_copies():
    coco = coco_from_h36m(POSE)
    assert coco.shape == (17, 3)
    for name in BODY_FROM_H36M:
        np.testing.assert_array_equal(coco[C[name]], POSE[H[name]])
    assert len(BODY_FROM_H36M) + len(FACE_MODEL) == 17


def test_face_geometry_on_a_standing_pose():
    coco = coco_from_h36m(POSE)
    fwd, left, up = np.eye(3)
    head, neck = POSE[H["head"]], POSE[H["neck_nose"]]
    for name in FACE_MODEL:
        p = coco[C[name]]
        assert np.linalg.norm(p - head) < 0.2 and np.linalg.norm(p - neck) < 0.2
    nose, le, re, lear, rear = (coco[C[n]] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"))
    assert (nose - neck) @ fwd == pytest.approx(0.11)  # in front of the head axis
    assert le @ left > 0.02 and re @ left < -0.02  # subject's left eye on the subject's left
    assert lear @ left > le @ left and rear @ left < re @ left  # ears wider than eyes
    assert (le - lear) @ fwd > 0.05 and (re - rear) @ fwd > 0.05  # ears behind the eyes
    assert (le - nose) @ up > 0.02 and (le - nose) @ fwd < 0  # eyes above and behind the nose tip
    np.testing.assert_allclose(le - re, [0, 0.064, 0], atol=1e-12)


def test_head_frame_is_right_handed_and_follows_the_head_axis():
    f = head_frame_from_h36m(POSE)
    np.testing.assert_allclose(f, np.eye(3), atol=1e-12)
    nod = POSE.copy()  # head pitched 30 degrees forward (chin down)
    a = np.deg2rad(30)
    nod[H["head"]] = nod[H["neck_nose"]] + 0.12 * np.array([np.sin(a), 0, np.cos(a)])
    f = head_frame_from_h36m(nod)
    np.testing.assert_allclose(f.T @ f, np.eye(3), atol=1e-12)
    assert np.linalg.det(f) == pytest.approx(1.0)
    np.testing.assert_allclose(f[:, 0], [np.cos(a), 0, -np.sin(a)], atol=1e-12)  # face tips down
    nose = coco_from_h36m(nod)[C["nose"]]
    assert nose[2] < coco_from_h36m(POSE)[C["nose"]][2] - 0.03


@pytest.mark.parametrize("seed", range(5))
def test_rotation_and_translation_equivariance(seed):
    rng = np.random.default_rng(seed)
    poses = POSE + rng.normal(scale=0.03, size=(8, 17, 3))  # a few perturbed frames
    base = coco_from_h36m(poses)
    rz, t = _rot_z(rng.uniform(-180, 180)), rng.normal(size=3) * 3
    np.testing.assert_allclose(coco_from_h36m(poses @ rz.T + t), base @ rz.T + t, atol=1e-10)
    r = _random_rotation(rng)  # any proper rotation, not only about z
    np.testing.assert_allclose(coco_from_h36m(poses @ r.T + t), base @ r.T + t, atol=1e-10)


def test_given_head_frame_is_used_and_batches_broadcast():
    turned = np.stack([_rot_z(90)[:, 0], _rot_z(90)[:, 1], [0, 0, 1]], axis=-1)  # looking to the left
    coco = coco_from_h36m(POSE, head_frame=turned)
    nose = coco[C["nose"]] - POSE[H["neck_nose"]]
    np.testing.assert_allclose(nose, [0, 0.11, 0.015], atol=1e-12)
    batch = np.broadcast_to(POSE, (2, 3, 17, 3)).astype(np.float32)
    out = coco_from_h36m(batch)
    assert out.shape == (2, 3, 17, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 2], coco_from_h36m(POSE), atol=1e-6)


def test_degenerate_inputs_stay_finite():
    p = POSE.copy()
    p[H["left_shoulder"]] = p[H["right_shoulder"]]  # no shoulder line: the hips give the side
    np.testing.assert_allclose(coco_from_h36m(p)[:5], coco_from_h36m(POSE)[:5], atol=1e-12)  # face
    assert np.isfinite(coco_from_h36m(np.zeros((17, 3)))).all()


def test_bad_shapes_raise():
    with pytest.raises(PoseliftError, match="17, 3"):
        coco_from_h36m(np.zeros((16, 3)))
    with pytest.raises(PoseliftError, match="head_frame"):
        coco_from_h36m(np.zeros((4, 17, 3)), head_frame=np.eye(3))


def test_real_clip_face_in_front_and_left_on_left():
    path = DATA / "cmu-mb" / "07_12.bvh"
    if not path.exists():
        pytest.skip(f"{path} not present (shared CMU data lives in ../shared/data)")
    from poselift.data.cmu import load_cmu_clip

    clip = load_cmu_clip(path)
    p = clip.positions.astype(np.float64)
    up = p[:, H["thorax"]] - p[:, H["pelvis"]]
    left = p[:, H["left_hip"]] - p[:, H["right_hip"]]
    fwd = np.cross(left, up)
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
    for frame in (None, clip.head_frame):
        coco = coco_from_h36m(p, head_frame=frame)
        assert np.mean(np.einsum("ti,ti->t", coco[:, C["nose"]] - p[:, H["neck_nose"]], fwd) > 0.05) > 0.95
        assert np.mean(np.einsum("ti,ti->t", coco[:, C["left_eye"]] - coco[:, C["right_eye"]], left) > 0) > 0.95
        assert np.mean(np.einsum("ti,ti->t", coco[:, C["left_eye"]] - coco[:, C["left_ear"]], fwd) > 0) > 0.95
        assert np.all(np.linalg.norm(coco[:, :5] - p[:, None, H["head"]], axis=-1) < 0.2)
