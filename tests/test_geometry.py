"""Quaternions, cameras, projection and the published calibrations (poselift.geometry)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from poselift.errors import PoseliftError
from poselift.geometry import (
    CameraParameters,
    camera_to_world,
    image_coordinates,
    normalize_screen_coordinates,
    project_to_2d,
    project_to_2d_linear,
    qinverse,
    qmul,
    qrot,
    quat_to_rotmat,
    rotmat_to_quat,
    undistort_normalized,
    world_to_camera,
)
from poselift.geometry.published_cameras import published_cameras


def _random_unit_quats(n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return (q / q.norm(dim=-1, keepdim=True)).to(dtype)


def _axis_angle_quat(axis, angle) -> torch.Tensor:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    return torch.tensor([math.cos(angle / 2), *(math.sin(angle / 2) * axis)], dtype=torch.float64)


def _rodrigues(axis, angle) -> np.ndarray:
    """Independent rotation matrix: R = I + sin(a) K + (1 - cos(a)) K^2."""
    n = np.asarray(axis, dtype=np.float64)
    n = n / np.linalg.norm(n)
    k = np.array([[0, -n[2], n[1]], [n[2], 0, -n[0]], [-n[1], n[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


# --------------------------------------------------------------------------- quaternions


def test_qrot_hand_case_90deg_about_z():
    q = _axis_angle_quat([0, 0, 1], math.pi / 2)
    v = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 2.0, 3.0]], dtype=torch.float64)
    out = qrot(q.expand(4, 4), v)
    expected = torch.tensor([[0, 1.0, 0], [-1.0, 0, 0], [0, 0, 1.0], [-2.0, 1.0, 3.0]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
    r = quat_to_rotmat(q)
    torch.testing.assert_close(r, torch.tensor([[0, -1.0, 0], [1.0, 0, 0], [0, 0, 1.0]], dtype=torch.float64),
                               atol=1e-12, rtol=0)


def test_qrot_matches_rotmat_and_rodrigues():
    q = _random_unit_quats(64, seed=1)
    v = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    r = quat_to_rotmat(q)
    torch.testing.assert_close(qrot(q, v), (r @ v[..., None])[..., 0], atol=1e-12, rtol=0)
    # rotation matrices are proper
    torch.testing.assert_close(r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(64, 3, 3),
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.det(r), torch.ones(64, dtype=torch.float64), atol=1e-12, rtol=0)
    # independent: axis-angle -> Rodrigues
    rng = np.random.default_rng(3)
    for _ in range(10):
        axis, angle = rng.normal(size=3), rng.uniform(-math.pi, math.pi)
        qa = _axis_angle_quat(axis, angle)
        np.testing.assert_allclose(quat_to_rotmat(qa).numpy(), _rodrigues(axis, angle), atol=1e-12)


def test_qrot_float32_and_broadcast():
    q = _random_unit_quats(5, seed=4)
    v = torch.randn(5, 7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    ref = qrot(q[:, None, :].expand(5, 7, 4), v)
    out32 = qrot(q.float()[:, None, :], v.float())  # broadcasting leading dims
    assert out32.dtype == torch.float32 and out32.shape == (5, 7, 3)
    torch.testing.assert_close(out32.double(), ref, atol=1e-5, rtol=0)


def test_qmul_composes_rotations_and_qinverse():
    a = _random_unit_quats(32, seed=6)
    b = _random_unit_quats(32, seed=7)
    v = torch.randn(32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    # qmul(a, b) rotates by b first, then a
    torch.testing.assert_close(qrot(qmul(a, b), v), qrot(a, qrot(b, v)), atol=1e-12, rtol=0)
    torch.testing.assert_close(quat_to_rotmat(qmul(a, b)), quat_to_rotmat(a) @ quat_to_rotmat(b), atol=1e-12, rtol=0)
    # hand value: i * j = k
    i = torch.tensor([0.0, 1, 0, 0], dtype=torch.float64)
    j = torch.tensor([0.0, 0, 1, 0], dtype=torch.float64)
    torch.testing.assert_close(qmul(i, j), torch.tensor([0.0, 0, 0, 1], dtype=torch.float64))
    torch.testing.assert_close(qmul(j, i), torch.tensor([0.0, 0, 0, -1], dtype=torch.float64))
    # inverse
    ai = qinverse(a)
    torch.testing.assert_close(ai, torch.cat((a[:, :1], -a[:, 1:]), dim=-1))
    ident = torch.tensor([1.0, 0, 0, 0], dtype=torch.float64).expand(32, 4)
    torch.testing.assert_close(qmul(a, ai), ident, atol=1e-12, rtol=0)
    torch.testing.assert_close(qrot(ai, qrot(a, v)), v, atol=1e-12, rtol=0)


def _same_rotation_quat(q1: torch.Tensor, q2: torch.Tensor, atol: float) -> None:
    # q and -q are the same rotation
    d = torch.minimum((q1 - q2).abs().amax(-1), (q1 + q2).abs().amax(-1))
    assert float(d.max()) < atol, float(d.max())


def test_rotmat_to_quat_round_trip_random():
    q = _random_unit_quats(200, seed=9)
    back = rotmat_to_quat(quat_to_rotmat(q))
    assert back.shape == (200, 4)
    assert bool((back[:, 0] >= 0).all())
    torch.testing.assert_close(back.norm(dim=-1), torch.ones(200, dtype=torch.float64), atol=1e-12, rtol=0)
    _same_rotation_quat(back, q, 1e-10)
    # batch shape kept
    r = quat_to_rotmat(q.reshape(10, 20, 4))
    assert rotmat_to_quat(r).shape == (10, 20, 4)


@pytest.mark.parametrize("axis", [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0.3, -0.5, 0.8], [-1, 2, 0.1]])
@pytest.mark.parametrize("angle", [math.pi, math.pi - 1e-7, math.pi - 1e-3, 1e-9, 0.0, math.pi / 2])
def test_rotmat_to_quat_near_180_and_identity(axis, angle):
    r = torch.from_numpy(_rodrigues(axis, angle))
    q = rotmat_to_quat(r)
    assert q.shape == (4,)
    assert abs(float(q.norm()) - 1) < 1e-9
    torch.testing.assert_close(quat_to_rotmat(q), r, atol=1e-9, rtol=0)
    _same_rotation_quat(q, _axis_angle_quat(axis, angle), 1e-7)


def test_rotmat_to_quat_float32():
    q = _random_unit_quats(50, seed=10)
    r32 = quat_to_rotmat(q).float()
    back = rotmat_to_quat(r32)
    assert back.dtype == torch.float32
    _same_rotation_quat(back.double(), q, 1e-5)


# --------------------------------------------------------------------------- screen coordinates


def test_normalize_screen_coordinates_hand_values():
    px = np.array([[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0], [250.0, 0.0]])
    n = normalize_screen_coordinates(px, 1000, 1002)
    np.testing.assert_allclose(n, [[-1, -1.002], [1, 1.002], [0, 0], [-0.5, -1.002]], atol=1e-12)
    np.testing.assert_allclose(image_coordinates(n, 1000, 1002), px, atol=1e-9)
    # torch path, float32 working dtype
    t = torch.tensor(px, dtype=torch.float32)
    nt = normalize_screen_coordinates(t, 1000, 1002)
    assert isinstance(nt, torch.Tensor) and nt.dtype == torch.float32
    np.testing.assert_allclose(nt.numpy(), n, atol=1e-6)
    np.testing.assert_allclose(image_coordinates(nt, 1000, 1002).numpy(), px, atol=1e-3)


def test_screen_coordinates_round_trip_random():
    rng = np.random.default_rng(11)
    px = rng.uniform(-100, 2000, size=(3, 40, 2))
    for w, h in [(1000, 1002), (1920, 1080), (640, 480)]:
        np.testing.assert_allclose(image_coordinates(normalize_screen_coordinates(px, w, h), w, h), px, atol=1e-9)
        n = normalize_screen_coordinates(px, w, h)
        np.testing.assert_allclose(n[..., 0], px[..., 0] / w * 2 - 1, atol=1e-12)
        np.testing.assert_allclose(n[..., 1], px[..., 1] / w * 2 - h / w, atol=1e-12)


# --------------------------------------------------------------------------- world <-> camera


def test_world_to_camera_hand_case():
    # Camera centre at t, rotated +90 deg about world y: camera z (forward) -> world +x.
    t = np.array([1.0, 2.0, 3.0])
    q = _axis_angle_quat([0, 1, 0], math.pi / 2).numpy()
    world = t + np.array([[5.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0, 0]])
    cam = world_to_camera(world, q, t)
    assert isinstance(cam, np.ndarray)
    np.testing.assert_allclose(cam, [[0, 0, 5.0], [0, 1.0, 0], [-1.0, 0, 0], [0, 0, 0]], atol=1e-12)
    np.testing.assert_allclose(camera_to_world(cam, q, t), world, atol=1e-12)


def test_world_camera_round_trip_and_dtypes():
    rng = np.random.default_rng(12)
    q = _random_unit_quats(1, seed=13)[0].numpy()
    t = rng.normal(size=3)
    x = rng.normal(size=(6, 17, 3))
    cam = world_to_camera(x, q, t)
    assert cam.dtype == np.float64 and cam.shape == x.shape
    np.testing.assert_allclose(camera_to_world(cam, q, t), x, atol=1e-12)
    # X_cam = R^T (X - t) with R = quat_to_rotmat(q)
    r = quat_to_rotmat(torch.from_numpy(q)).numpy()
    np.testing.assert_allclose(cam, (x - t) @ r, atol=1e-12)
    # float32 in, float32 out
    cam32 = world_to_camera(x.astype(np.float32), q.astype(np.float32), t.astype(np.float32))
    assert cam32.dtype == np.float32
    np.testing.assert_allclose(cam32, cam, atol=1e-5)
    # torch in, torch out
    ct = world_to_camera(torch.from_numpy(x), torch.from_numpy(q), torch.from_numpy(t))
    assert isinstance(ct, torch.Tensor)
    np.testing.assert_allclose(ct.numpy(), cam, atol=1e-12)


# --------------------------------------------------------------------------- published cameras


def test_published_h36m_s1_cam0_intrinsics():
    cams = published_cameras("h36m")
    assert set(["S1", "S5", "S6", "S7", "S8", "S9", "S11"]) <= set(cams)
    assert all(len(v) == 4 for v in cams.values())
    c = cams["S1"][0]
    assert c.id == "54138969" and (c.res_w, c.res_h) == (1000, 1002)
    np.testing.assert_allclose(c.focal_length, [1145.0494384765625, 1143.7811279296875])
    np.testing.assert_allclose(c.center, [512.54150390625, 515.4514770507812])
    # translation converted from millimetres to metres
    np.testing.assert_allclose(c.translation, [1.8411070556640625, 4.95528466796875, 1.5634454345703125])
    np.testing.assert_allclose(c.orientation, [0.1407056450843811, -0.1500701755285263,
                                               -0.755240797996521, 0.6223280429840088])
    v = c.intrinsic_vector()
    assert v.dtype == np.float32 and v.shape == (9,)
    expected = np.array([
        1145.0494384765625 / 1000 * 2, 1143.7811279296875 / 1000 * 2,
        512.54150390625 / 1000 * 2 - 1, 515.4514770507812 / 1000 * 2 - 1002 / 1000,
        -0.20709891617298126, 0.24777518212795258, -0.0030751503072679043,
        -0.0009756988729350269, -0.00142447161488235,
    ])
    np.testing.assert_allclose(v, expected, rtol=1e-6, atol=1e-7)
    # the same numbers as VideoPose3D's normalised cam['intrinsic'] (2.2900989, 2.2875624, 0.0250830, 0.0289029)
    np.testing.assert_allclose(v[:4], [2.2900989, 2.2875624, 0.0250830, 0.0289030], atol=2e-7)


def test_published_cameras_errors_and_humaneva():
    with pytest.raises(PoseliftError):
        published_cameras("nope")
    he = published_cameras("humaneva")
    assert "S1" in he and "Train/S1" in he and he["Train/S1"] is he["S1"]


def test_camera_parameters_dict_round_trip():
    c = published_cameras("h36m")["S5"][2]
    d = c.to_dict()
    c2 = CameraParameters.from_dict(d)
    np.testing.assert_array_equal(c2.intrinsic_vector(), c.intrinsic_vector())
    np.testing.assert_array_equal(c2.orientation, c.orientation)
    np.testing.assert_array_equal(c2.translation, c.translation)


# --------------------------------------------------------------------------- projection


def test_project_to_2d_hand_value_with_distortion():
    x = torch.tensor([[[0.3, -0.2, 2.0]]], dtype=torch.float64)  # (N=1, J=1, 3)
    f, c = (1.1, 1.2), (0.05, -0.03)
    k, p = (-0.2, 0.25, -0.003), (-0.001, -0.0014)
    intr = torch.tensor([[*f, *c, *k, *p]], dtype=torch.float64)
    # Human3.6M distortion by hand
    xx = (0.3 / 2.0, -0.2 / 2.0)
    r2 = xx[0] ** 2 + xx[1] ** 2
    assert abs(r2 - 0.0325) < 1e-15
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tan = p[0] * xx[0] + p[1] * xx[1]
    expected = [f[i] * (xx[i] * (radial + tan) + p[i] * r2) + c[i] for i in range(2)]
    np.testing.assert_allclose(expected, [0.2139336533200782, -0.14930507514187502], atol=1e-15)
    out = project_to_2d(x, intr)
    assert out.shape == (1, 1, 2)
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=1e-14)
    # float32 working dtype, (9,) intrinsics broadcast to every sample
    out32 = project_to_2d(x.float().expand(3, 5, 3), intr[0].float())
    assert out32.dtype == torch.float32 and out32.shape == (3, 5, 2)
    np.testing.assert_allclose(out32.numpy(), np.broadcast_to(expected, (3, 5, 2)), atol=1e-6)


def test_project_to_2d_zero_distortion_equals_linear_and_pinhole():
    g = torch.Generator().manual_seed(14)
    x = torch.randn(4, 17, 3, dtype=torch.float64, generator=g) * 0.5
    x[..., 2] = x[..., 2].abs() + 3
    intr = torch.zeros(4, 9, dtype=torch.float64)
    intr[:, :4] = torch.rand(4, 4, dtype=torch.float64, generator=g) + 0.5
    lin = project_to_2d_linear(x, intr)
    torch.testing.assert_close(project_to_2d(x, intr), lin, atol=1e-14, rtol=0)
    pinhole = intr[:, None, :2] * x[..., :2] / x[..., 2:] + intr[:, None, 2:4]
    torch.testing.assert_close(lin, pinhole, atol=1e-14, rtol=0)
    # with distortion the results differ, linear ignores the distortion terms
    intr_d = intr.clone()
    intr_d[:, 4:] = torch.tensor([-0.2, 0.25, -0.003, -0.001, -0.0014], dtype=torch.float64)
    torch.testing.assert_close(project_to_2d_linear(x, intr_d), lin, atol=0, rtol=0)
    assert float((project_to_2d(x, intr_d) - lin).abs().max()) > 1e-4


def test_project_to_2d_clamps_like_videopose3d():
    intr = torch.tensor([1.0, 1.0, 0, 0, 0, 0, 0, 0, 0], dtype=torch.float64)
    x = torch.tensor([[[3.0, -5.0, 1.0]]], dtype=torch.float64)
    torch.testing.assert_close(project_to_2d(x, intr), torch.tensor([[[1.0, -1.0]]], dtype=torch.float64))
    with pytest.raises(ValueError):
        project_to_2d(x, torch.zeros(8, dtype=torch.float64))


def test_undistort_inverts_h36m_distortion():
    cam = published_cameras("h36m")["S1"][0]
    radial = torch.from_numpy(cam.radial_distortion)
    tangential = torch.from_numpy(cam.tangential_distortion)
    u, v = torch.meshgrid(torch.linspace(-0.45, 0.45, 21, dtype=torch.float64),
                          torch.linspace(-0.45, 0.45, 21, dtype=torch.float64), indexing="ij")
    xy = torch.stack((u, v), dim=-1).reshape(-1, 2)
    # distort with project_to_2d at unit focal length, zero centre
    intr = torch.cat((torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64), radial, tangential))
    pts = torch.cat((xy, torch.ones(xy.shape[0], 1, dtype=torch.float64)), dim=-1)[None]
    distorted = project_to_2d(pts, intr)[0]
    assert float((distorted - xy).abs().max()) > 1e-3  # the distortion is not negligible
    und = undistort_normalized(distorted, radial, tangential)
    assert float((und - xy).abs().max()) < 1e-8


def test_person_5m_in_front_of_h36m_camera_projects_inside_image():
    cam = published_cameras("h36m")["S1"][0]
    # a crude standing person, camera space: 1.7 m tall, 5 m in front
    rng = np.random.default_rng(15)
    body_cam = np.stack((rng.uniform(-0.3, 0.3, 17), rng.uniform(-0.85, 0.85, 17), 5 + rng.uniform(-0.2, 0.2, 17)), -1)
    world = camera_to_world(body_cam, cam.orientation, cam.translation)
    # the world points are really in front of the camera along its optical axis
    forward_world = quat_to_rotmat(torch.from_numpy(cam.orientation)).numpy()[:, 2]
    depth = (world - cam.translation) @ forward_world
    np.testing.assert_allclose(depth, body_cam[:, 2], atol=1e-9)
    back = world_to_camera(world, cam.orientation, cam.translation)
    # the published quaternion is float32-rounded (|q| = 1 +- 1e-8), hence the looser tolerance
    np.testing.assert_allclose(back, body_cam, atol=1e-6)
    intr_px = torch.from_numpy(np.concatenate((cam.focal_length, cam.center, cam.radial_distortion,
                                               cam.tangential_distortion)))
    px = project_to_2d(torch.from_numpy(back)[None], intr_px)[0].numpy()
    assert (px[:, 0] > 0).all() and (px[:, 0] < cam.res_w).all()
    assert (px[:, 1] > 0).all() and (px[:, 1] < cam.res_h).all()
    # normalised intrinsics give the normalised pixel positions
    norm = project_to_2d(torch.from_numpy(back)[None], torch.from_numpy(cam.intrinsic_vector().astype(np.float64)))[0]
    np.testing.assert_allclose(norm.numpy(), normalize_screen_coordinates(px, cam.res_w, cam.res_h), atol=1e-5)
    assert (np.abs(norm.numpy()[:, 0]) < 1).all()


def test_axis_rotation_matches_quaternion_rotations():
    """The shared elementary rotations equal quat_to_rotmat of axis-angle quaternions."""
    import numpy as np

    from poselift.geometry.rotations import axis_rotation

    angles = np.array([-2.0, 0.3, 1.2])
    for i, letter in enumerate("xyz"):
        q = np.zeros((3, 4))
        q[:, 0] = np.cos(angles / 2)
        q[:, 1 + i] = np.sin(angles / 2)
        expected = quat_to_rotmat(torch.from_numpy(q)).numpy()
        np.testing.assert_allclose(axis_rotation(i, angles), expected, atol=1e-12)
        np.testing.assert_allclose(axis_rotation(letter.upper(), np.degrees(angles), degrees=True), expected, atol=1e-12)
