"""Multi-camera calibrations (poselift.io.calibration): Pose2Sim TOML, Qualisys .qca.txt, projection."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from poselift.errors import DataFormatError
from poselift.io.calibration import (
    CameraCalibration,
    MultiCameraCalibration,
    project,
    read_calibration,
    read_calibration_toml,
    read_qualisys_qca,
    undistort_points,
    write_calibration_toml,
)

_DEMO_QCA = "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt"
_QCA_CANDIDATES = [Path("/tmp/dl") / _DEMO_QCA, Path.home() / ".cache/poselift/pose2sim-0.10.49" / _DEMO_QCA]
_SPORTS2D_TOML = Path("/tmp/dl/Sports2D/Demo/Calib_demo.toml")


def _rotation(seed: int) -> np.ndarray:
    rvec = np.random.default_rng(seed).normal(0, 1.0, 3)
    return cv2.Rodrigues(rvec)[0]


def _camera(name: str, seed: int, dist=(-0.1, 0.03, 0.001, -0.002, 0.004)) -> CameraCalibration:
    rng = np.random.default_rng(seed)
    K = np.array([[rng.uniform(800, 1500), 0, rng.uniform(600, 700)], [0, rng.uniform(800, 1500), rng.uniform(300, 400)],
                  [0, 0, 1]])
    return CameraCalibration(name, (1280, 720), K, dist, _rotation(seed), rng.normal(0, 2, 3))


# ---------------------------------------------------------------------------------------------- projection


def test_project_hand_computed_with_radial_distortion():
    K = np.array([[100.0, 0, 50], [0, 100, 40], [0, 0, 1]])
    cam = CameraCalibration("c", (100, 80), K, [0.1, 0, 0, 0], np.eye(3), [0, 0, 0])
    # (1, 2, 10) -> normalised (0.1, 0.2), r^2 = 0.05, radial factor 1 + 0.1 * 0.05 = 1.005
    np.testing.assert_allclose(project(cam, np.array([[1.0, 2.0, 10.0]])), [[60.05, 60.1]], atol=1e-12)
    # tangential p1 = 0.01: dx = 2 p1 x y = 0.0004, dy = p1 (r^2 + 2 y^2) = 0.0013
    cam.dist = np.array([0, 0, 0.01, 0])
    np.testing.assert_allclose(project(cam, np.array([[1.0, 2.0, 10.0]])), [[60.04, 60.13]], atol=1e-12)
    assert np.isnan(project(cam, np.array([[0.0, 0.0, -1.0]]))).all()  # behind the camera


def test_project_matches_opencv_and_undistort_inverts_it():
    cam = _camera("a", 0)
    X = cam.center + np.random.default_rng(1).uniform(-1, 1, (200, 3)) + 4 * cam.R[2]  # ~4 m in front
    px = project(cam, X)
    ref = cv2.projectPoints(X, cam.rvec, cam.t, cam.K, cam.dist)[0].reshape(-1, 2)
    np.testing.assert_allclose(px, ref, atol=1e-8)
    linear = (X @ cam.R.T + cam.t) @ cam.K.T
    np.testing.assert_allclose(undistort_points(cam, px), linear[:, :2] / linear[:, 2:], atol=1e-6)
    norm = undistort_points(cam, px, normalized=True)
    Xc = X @ cam.R.T + cam.t
    np.testing.assert_allclose(norm, Xc[:, :2] / Xc[:, 2:], atol=1e-9)
    px[3] = np.nan
    assert np.isnan(undistort_points(cam, px)[3]).all() and np.isfinite(undistort_points(cam, px)[4]).all()


def test_fisheye_project_undistort_round_trip():
    cam = _camera("f", 2, dist=(0.05, -0.01, 0.002, 0.0))
    cam.fisheye = True
    X = cam.center + np.random.default_rng(3).uniform(-1, 1, (50, 3)) + 3 * cam.R[2]
    px = project(cam, X)
    ref = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), cam.rvec, cam.t, cam.K, cam.dist[:4])[0].reshape(-1, 2)
    np.testing.assert_allclose(px, ref, atol=1e-8)
    linear = (X @ cam.R.T + cam.t) @ cam.K.T
    np.testing.assert_allclose(undistort_points(cam, px), linear[:, :2] / linear[:, 2:], atol=1e-4)


# ---------------------------------------------------------------------------------------------- TOML


def test_toml_round_trip(tmp_path):
    calib = MultiCameraCalibration([_camera("cam_01", 0), _camera("side cam", 1, dist=(0.01, 0.02, 0, 0)),
                                    _camera("metadata", 2)])
    calib.cameras[1].fisheye = True
    path = write_calibration_toml(calib, tmp_path / "Calib.toml")
    back = read_calibration(path)
    assert back.names == ["cam_01", "side cam", "metadata"]  # names kept even where the table key is not
    for a, b in zip(calib, back):
        assert b.size == (1280, 720) and b.fisheye == a.fisheye
        np.testing.assert_array_equal(b.K, a.K)
        np.testing.assert_array_equal(b.dist, a.dist)
        np.testing.assert_array_equal(b.t, a.t)
        np.testing.assert_allclose(b.R, a.R, atol=1e-14)
    text = path.read_text()
    assert "[cam_01]" in text and "[side_cam]" in text and "[cam_metadata]" in text and "[metadata]" in text
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no leftovers


def test_toml_pose2sim_layout_hand_values(tmp_path):
    path = tmp_path / "calib.toml"
    path.write_text(
        '[cam_02]\nname = "cam02"\nsize = [ 1920.0, 1080.0]\n'
        "matrix = [ [ 1500.0, 0.0, 960.0], [ 0.0, 1501.0, 540.0], [ 0.0, 0.0, 1.0]]\n"
        "distortions = [ -0.1, 0.02, 0.001, 0.002]\n"
        f"rotation = [ 0.0, 0.0, {np.pi / 2!r}]\ntranslation = [ 1.0, 2.0, 3.0]\nfisheye = false\n\n"
        "[metadata]\nadjusted = false\nerror = 0.0\n")
    (cam,) = read_calibration_toml(path).cameras
    assert cam.name == "cam02" and cam.size == (1920, 1080) and not cam.fisheye
    np.testing.assert_allclose(cam.R, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15)  # 90 degrees about z
    np.testing.assert_allclose(cam.center, [-2.0, 1.0, -3.0], atol=1e-15)  # -R^T t
    # K R and K t by hand: K t = (1500 * 1 + 960 * 3, 1501 * 2 + 540 * 3, 3)
    np.testing.assert_allclose(cam.projection_matrix(), [[0, -1500, 960, 4380], [1501, 0, 540, 4622], [0, 0, 1, 3]],
                               atol=1e-9)


@pytest.mark.skipif(not _SPORTS2D_TOML.is_file(), reason="Sports2D demo calibration not downloaded")
def test_sports2d_demo_toml():
    (cam,) = read_calibration(_SPORTS2D_TOML).cameras
    assert cam.name == "demo" and cam.size == (1768, 994)
    np.testing.assert_allclose(cam.K, [[2520.0897058227038, 0, 884.0], [0, 2520.0897058227038, 497.0], [0, 0, 1]])
    np.testing.assert_allclose(cam.rvec, [1.2082126924727719, 1.2098328575850605, -1.2082126924727719], atol=1e-12)
    np.testing.assert_allclose(cam.t, [-3.510103521992233, 1.7079310029359385, 10.0])


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.replace("matrix =", "matrx ="), r"camera \[cam_02\]: field 'matrix' is missing"),
    (lambda s: s.replace("translation = [ 1.0, 2.0, 3.0]", "translation = [ 1.0, 2.0]"), "field 'translation' must have shape"),
    (lambda s: s.replace("distortions = [ -0.1, 0.02, 0.001, 0.002]", "distortions = [ -0.1]"), "field 'distortions'"),
    (lambda s: s.replace("size = [ 1920.0, 1080.0]", 'size = "big"'), "field 'size' must be numbers"),
    (lambda s: s.replace("[cam_02]", "[cam_02"), "not valid TOML"),
    (lambda s: "[metadata]\nerror = 0.0\n", "no camera tables"),
])
def test_toml_errors_name_file_and_field(tmp_path, edit, match):
    good = ('[cam_02]\nname = "cam02"\nsize = [ 1920.0, 1080.0]\n'
            "matrix = [ [ 1500.0, 0.0, 960.0], [ 0.0, 1501.0, 540.0], [ 0.0, 0.0, 1.0]]\n"
            "distortions = [ -0.1, 0.02, 0.001, 0.002]\nrotation = [ 0.0, 0.0, 0.1]\n"
            "translation = [ 1.0, 2.0, 3.0]\nfisheye = false\n")
    path = tmp_path / "broken.toml"
    path.write_text(edit(good))
    with pytest.raises(DataFormatError, match=match) as info:
        read_calibration(path)
    assert "broken.toml" in str(info.value)


def test_missing_file():
    with pytest.raises(DataFormatError, match="does not exist"):
        read_calibration("/nonexistent/calib.toml")


# ---------------------------------------------------------------------------------------------- Qualisys


def _qca_camera(serial: str, model: str, *, x: float, fov=(10, 20, 1289, 739)) -> str:
    left, top, right, bottom = fov
    return (
        f'<camera active="1" avg-residual="0.4" model="{model}" serial="{serial}" viewrotation="0">'
        f'<fov_video left="{left}" top="{top}" right="{right}" bottom="{bottom}"/>'
        # identity rotation, camera at (x, 2000, 3000) mm
        f'<transform x="{x}" y="2000" z="3000" r11="1" r12="0" r13="0" r21="0" r22="1" r23="0" r31="0" r32="0" r33="1"/>'
        '<intrinsic focalLengthU="64000" focalLengthV="64640" centerPointU="41600" centerPointV="25600" '
        'radialDistortion1="-0.064" radialDistortion2="0.128" radialDistortion3="0" '
        'tangentalDistortion1="0.0064" tangentalDistortion2="-0.0032" sensorMaxU="81856" sensorMaxV="47296"/>'
        "</camera>")


def test_qca_conversion_hand_values(tmp_path):
    path = tmp_path / "Calib.qca.txt"
    path.write_text("<?xml version='1.0' encoding='ASCII'?>\n<calibration><cameras>"
                    + _qca_camera("cam10", "Miqus Video", x=1000) + _qca_camera("cam2", "none", x=-500)
                    + _qca_camera("marker1", "Miqus M3", x=0) + "</cameras></calibration>")
    calib = read_calibration(path)
    assert calib.names == ["cam2", "cam10"]  # natural order; the marker-only camera is left out
    cam = calib[1]
    assert cam.size == (1280, 720)  # fov_video 10..1289 x 20..739
    # 64 sub-pixels per pixel; principal point relative to the fov_video window's corner
    np.testing.assert_allclose(cam.K, [[1000, 0, 650 - 10], [0, 1010, 400 - 20], [0, 0, 1]])
    np.testing.assert_allclose(cam.dist, [-0.001, 0.002, 0.0001, -0.00005])  # divided by 64, as Pose2Sim
    # Qualisys camera axes (y up, z backwards) turned by pi about x
    np.testing.assert_allclose(cam.R, np.diag([1.0, -1.0, -1.0]))
    np.testing.assert_allclose(cam.center, [1.0, 2.0, 3.0])  # mm -> m
    np.testing.assert_allclose(cam.t, [-1.0, 2.0, 3.0])
    assert cam.extra["viewrotation"] == 0
    binned = read_qualisys_qca(path, binning_factor=2)[1]
    assert binned.size == (640, 360)
    np.testing.assert_allclose(binned.K[:2, :2], np.diag([500, 505]))


def test_qca_errors_name_the_attribute(tmp_path):
    path = tmp_path / "bad.qca.txt"
    path.write_text("<calibration><cameras>" + _qca_camera("c1", "none", x=0).replace('focalLengthV="64640" ', "")
                    + "</cameras></calibration>")
    with pytest.raises(DataFormatError, match=r"bad.qca.txt, camera c1: <intrinsic> has no attribute 'focalLengthV'"):
        read_calibration(path)
    path.write_text("<calibration><cameras>")
    with pytest.raises(DataFormatError, match="not a readable Qualisys XML"):
        read_calibration(path)


_DEMO = next((p for p in _QCA_CANDIDATES if p.is_file()), None)


@pytest.mark.skipif(_DEMO is None, reason="Pose2Sim demo calibration not downloaded")
def test_pose2sim_demo_qca_matches_pose2sim_conversion():
    calib = read_calibration(_DEMO)
    assert calib.names == ["cam01", "cam02", "cam03", "cam04"]
    assert all(c.size == (1088, 1920) for c in calib)
    cam = calib[0]
    # Reference: Pose2Sim 0.10.49's own calib_qca_fun on this file (run in isolation), cam01.
    np.testing.assert_allclose(cam.K, [[1681.244873046875, 0.0, 532.97369384375],
                                       [0.0, 1681.075439453125, 948.137390140625], [0, 0, 1]], rtol=0, atol=1e-9)
    np.testing.assert_allclose(cam.dist, [-0.000721609375, 0.002187234375, 9.5e-06, 1.078125e-05], rtol=0, atol=1e-15)
    np.testing.assert_allclose(cam.rvec, [1.6882754799999993, 1.0483220499999997, -0.41955852000000016], atol=1e-9)
    np.testing.assert_allclose(cam.t, [0.3211048899999996, 0.9563320600000009, 2.8907130499999996], atol=1e-12)
    # and a second camera, to catch per-camera mix-ups
    np.testing.assert_allclose(calib[2].rvec, [0.8109654899999995, -2.1972129299999996, 1.3760277799999996], atol=1e-9)
    np.testing.assert_allclose(calib[2].t, [-0.7934803899999995, 0.32283594000000126, 4.353514870000001], atol=1e-12)
