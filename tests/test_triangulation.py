"""Multi-view triangulation (poselift.geometry.triangulation) and its orchestration (poselift.infer.multiview)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from poselift.errors import ConfigError, PoseliftError
from poselift.geometry.triangulation import reprojection_errors, triangulate_dlt, triangulate_robust
from poselift.infer.multiview import TRC_MARKER_NAMES, triangulate_sequence, world_to_trc_axes, write_multiview_outputs
from poselift.infer.types import Detections, PersonDetection, VideoMeta
from poselift.io.calibration import CameraCalibration, MultiCameraCalibration, project, write_calibration_toml

F, W, H = 1000.0, 1280, 720
RADIUS, CAM_HEIGHT = 4.0, 1.5


def _look_at(center, target=(0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """World->camera R, t of a camera at ``center`` looking at ``target``, world Z up, camera y down."""
    c = np.asarray(center, dtype=float)
    z = np.asarray(target, dtype=float) - c
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ c


def _rig(num: int = 4, dist=(0.0, 0.0, 0.0, 0.0)) -> MultiCameraCalibration:
    """``num`` cameras on a 4 m circle at 1.5 m height, all looking at (0, 0, 1)."""
    K = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1]])
    cams = []
    for i in range(num):
        a = 2 * np.pi * i / num + 0.3
        R, t = _look_at((RADIUS * np.cos(a), RADIUS * np.sin(a), CAM_HEIGHT))
        cams.append(CameraCalibration(f"cam{i + 1}", (W, H), K, dist, R, t))
    return MultiCameraCalibration(cams, source="synthetic")


def _project_all(rig: MultiCameraCalibration, X: np.ndarray) -> np.ndarray:
    """(C, N, 2) undistorted pixels: K [R | t] X."""
    P = rig.projection_matrices()
    Xh = np.c_[X, np.ones(len(X))]
    p = np.einsum("cij,nj->cni", P, Xh)
    return p[..., :2] / p[..., 2:]


def _points(n: int, seed: int = 0) -> np.ndarray:
    """Points in a 1.6 x 1.6 x 2 m volume around the rig's target (a person-sized space)."""
    return np.random.default_rng(seed).uniform([-0.8, -0.8, 0.0], [0.8, 0.8, 2.0], (n, 3))


# ---------------------------------------------------------------------------------------------- DLT


def test_dlt_two_views_hand_computed():
    # Camera 1 at the origin, camera 2 one metre to the right (x), both K = I looking along z.
    P = np.array([np.c_[np.eye(3), [0, 0, 0]], np.c_[np.eye(3), [-1, 0, 0]]], dtype=float)
    # The point (0.5, 0.2, 2): seen at (0.25, 0.1) and (-0.25, 0.1).
    pts = np.array([[[0.25, 0.1]], [[-0.25, 0.1]]])
    X = triangulate_dlt(pts, P)
    np.testing.assert_allclose(X, [[0.5, 0.2, 2.0]], atol=1e-12)
    err = reprojection_errors(X, pts + np.array([[[0.003, 0.004]], [[0, 0]]]), P)
    np.testing.assert_allclose(err, [[0.005], [0.0]], atol=1e-12)  # the 3-4-5 offset in view 1


def test_dlt_exact_data_recovers_points():
    rig = _rig()
    X = _points(500)
    pts = _project_all(rig, X)
    weights = np.random.default_rng(1).uniform(0.3, 1.0, pts.shape[:2])
    for w in (None, weights):  # weights do not move an exact solution
        est = triangulate_dlt(pts, rig.projection_matrices(), w)
        assert np.abs(est - X).max() < 1e-6
    err = reprojection_errors(est, pts, rig.projection_matrices())
    assert err.max() < 1e-6


def test_dlt_noise_error_within_derived_bound():
    # 1 px at depth d is d / f metres across the ray: with 0.5 px noise, a camera ~4 m away
    # pins each of its two cross-ray directions to sigma = 0.5 * 4 / 1000 = 2 mm. Four views
    # spread around the volume constrain every direction by about 8 * 1/3 of these
    # equations, so the expected RMS 3D error is ~ sqrt(3) * 2 mm / sqrt(8/3) ~ 2.1 mm.
    rig = _rig()
    X = _points(2000)
    rng = np.random.default_rng(2)
    pts = _project_all(rig, X) + rng.normal(0, 0.5, (4, len(X), 2))
    est = triangulate_dlt(pts, rig.projection_matrices())
    rms = np.sqrt(np.mean(np.sum((est - X) ** 2, axis=1)))
    assert 1.0e-3 < rms < 3.0e-3, rms
    assert np.abs(est - X).max() < 1.5e-2


def test_zero_weight_view_is_ignored_exactly():
    rig = _rig()
    X = _points(200, seed=3)
    pts = _project_all(rig, X) + np.random.default_rng(3).normal(0, 1.0, (4, 200, 2))
    weights = np.random.default_rng(4).uniform(0.2, 1.0, (4, 200))
    P = rig.projection_matrices()
    without = triangulate_dlt(pts[[0, 1, 3]], P[[0, 1, 3]], weights[[0, 1, 3]])
    garbage = pts.copy()
    garbage[2] = 1e4  # far off: any influence would show
    w0 = weights.copy()
    w0[2] = 0.0
    np.testing.assert_allclose(triangulate_dlt(garbage, P, w0), without, rtol=0, atol=1e-12)
    garbage[2] = np.nan  # NaN coordinates with weight 0 are the same thing
    np.testing.assert_allclose(triangulate_dlt(garbage, P, w0), without, rtol=0, atol=1e-12)
    # and a NaN observation counts as weight 0 even when its weight is positive
    np.testing.assert_allclose(triangulate_dlt(garbage, P, weights), without, rtol=0, atol=1e-12)


def test_fewer_than_two_views_is_nan():
    rig = _rig()
    X = _points(3, seed=5)
    pts = _project_all(rig, X)
    w = np.zeros((4, 3))
    w[:, 0] = 1.0  # point 0: four views
    w[1, 1] = 1.0  # point 1: one view
    # point 2: none
    est = triangulate_dlt(pts, rig.projection_matrices(), w)
    assert np.abs(est[0] - X[0]).max() < 1e-6
    assert np.isnan(est[1:]).all()
    res = triangulate_robust(pts, rig.projection_matrices(), w)
    assert np.isnan(res.points[1:]).all() and not res.views_used[:, 1:].any()
    assert np.isnan(res.mean_error[1:]).all()


def test_reprojection_error_behind_camera_is_inf():
    P = np.c_[np.eye(3), np.zeros(3)][None]
    err = reprojection_errors(np.array([[0.0, 0.0, -1.0], [np.nan, 0, 1]]), np.zeros((1, 2, 2)), P)
    assert err[0, 0] == np.inf and np.isnan(err[0, 1])


# ---------------------------------------------------------------------------------------------- robust


def test_robust_rejects_a_100px_outlier_view():
    rig = _rig()
    X = _points(300, seed=6)
    pts = _project_all(rig, X)
    pts[1, :, 0] += 100.0  # camera 2 put every point 100 px to the right
    P = rig.projection_matrices()
    plain = triangulate_dlt(pts, P)
    assert np.linalg.norm(plain - X, axis=1).min() > 0.01  # the outlier drags the plain DLT by centimetres
    res = triangulate_robust(pts, P, max_error=15.0)
    assert np.abs(res.points - X).max() < 1e-6
    assert not res.views_used[1].any() and res.views_used[[0, 2, 3]].all()
    np.testing.assert_allclose(res.errors[1], 100.0, atol=1e-6)  # the rejected view's error is reported
    assert res.errors[[0, 2, 3]].max() < 1e-6
    np.testing.assert_array_equal(res.num_views, 3)


def test_robust_two_inconsistent_views_is_nan_and_noise_is_kept():
    rig = _rig(4)
    P = rig.projection_matrices()[[0, 1]]  # two cameras 90 degrees apart
    X = _points(50, seed=7)
    pts = _project_all(rig, X)[[0, 1]]
    noisy = pts + np.random.default_rng(7).normal(0, 0.5, pts.shape)
    res = triangulate_robust(noisy, P, max_error=15.0)
    assert np.isfinite(res.points).all() and res.views_used.all()  # small noise: nothing rejected
    # A 200 px vertical error: epipolar lines run nearly horizontally here, so it cannot be
    # absorbed (65-127 px left in both views); with two views neither can be dropped.
    bad = pts.copy()
    bad[0, :, 1] += 200.0
    res = triangulate_robust(bad, P, max_error=15.0)
    assert np.isnan(res.points).all() and not res.views_used.any() and np.isnan(res.errors).all()


def test_robust_two_outlier_views_of_five():
    rig = _rig(5)
    X = _points(100, seed=8)
    pts = _project_all(rig, X)
    pts[0, :, 1] -= 80.0
    pts[3, :, 0] += 150.0
    res = triangulate_robust(pts, rig.projection_matrices(), max_error=10.0)
    assert np.abs(res.points - X).max() < 1e-6
    np.testing.assert_array_equal(res.views_used.sum(axis=1), [0, 100, 100, 0, 100])


# ---------------------------------------------------------------------------------------------- sequence


def _detections(rig: MultiCameraCalibration, X: np.ndarray, fps: float = 50.0, size=None) -> list[Detections]:
    """Per camera, one person per frame at the distorted projections of X (T, 17, 3)."""
    T = X.shape[0]
    out = []
    for cam in rig:
        px = project(cam, X.reshape(-1, 3)).reshape(T, 17, 2)
        w, h = size or cam.size
        s = np.array([w / cam.size[0], h / cam.size[1]])
        frames = [[PersonDetection((px[t] * s).astype(np.float32), np.full(17, 0.9, np.float32))] for t in range(T)]
        out.append(Detections(frames, VideoMeta(w, h, fps, T, f"{cam.name}.mp4"), "synthetic"))
    return out


def _skeleton_motion(T: int, seed: int = 0) -> np.ndarray:
    """(T, 17, 3) joints drifting smoothly inside the rig's volume."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([-0.3, -0.3, 0.1], [0.3, 0.3, 1.8], (17, 3))
    drift = np.linspace(0, 1, T)[:, None, None] * np.array([0.4, -0.2, 0.0])
    return base[None] + drift


def test_triangulate_sequence_recovers_world_joints_with_distortion(tmp_path):
    rig = _rig(dist=(-0.12, 0.05, 0.001, -0.0005, 0.01))
    X = _skeleton_motion(12)
    dets = _detections(rig, X)
    dets[2].frames[4][0].keypoints[9] += np.float32([60.0, 0.0])  # one wrong wrist in camera 3
    dets[1].frames[7] = []  # camera 2 misses the person in frame 7
    res = triangulate_sequence(rig, dets, min_score=0.3, max_reproj_px=5.0)
    assert res.keypoints_3d.shape == (12, 17, 3)
    # float32 pixels (~1e-4 px at 1000) and the undistortion solver: sub-millimetre
    assert np.abs(res.keypoints_3d - X).max() < 1e-4
    assert not res.used[4, 9, 2] and res.views_used[4, 9] == 3
    assert res.views_used[7].tolist() == [3] * 17 and not res.used[7, :, 1].any()
    assert res.views_used.sum() == 12 * 17 * 4 - 1 - 17
    report = res.report()
    assert report["triangulated_share"] == 1.0 and report["frames"] == 12
    assert report["per_camera"][2]["rejected_points"] == 1
    assert report["per_camera"][2]["used_points"] == 12 * 17 - 1
    assert report["per_camera"][1]["observed_points"] == 11 * 17
    assert report["per_camera"][0]["mean_reprojection_error_px"] < 0.01

    paths = write_multiview_outputs(res, tmp_path / "out")
    z = np.load(paths["npz"])
    assert z["keypoints_3d"].shape == (12, 17, 3) and z["views_used"].shape == (12, 17)
    assert z["reprojection_error_px"].shape == (12, 17)
    np.testing.assert_allclose(z["keypoints_3d"], X, atol=1e-4)
    assert json.loads(paths["report"].read_text())["per_camera"][1]["name"] == "cam2"
    from poselift.io.trc import read_trc

    names, trc, rate = read_trc(paths["trc"])
    assert names == list(TRC_MARKER_NAMES) and rate == 50.0 and trc.shape == (12, 17, 3)
    # Z-up world to OpenSim's Y-up: (X, Y, Z)_trc = (y, z, x), as Pose2Sim writes it
    np.testing.assert_allclose(trc, X[..., [1, 2, 0]], atol=2e-6)
    np.testing.assert_array_equal(world_to_trc_axes(np.array([1.0, 2.0, 3.0])), [2.0, 3.0, 1.0])


def test_triangulate_sequence_scales_and_rejects_video_sizes():
    rig = _rig(3)
    X = _skeleton_motion(3, seed=1)
    half = _detections(rig, X, size=(W // 2, H // 2))  # keypoints of half-resolution videos
    res = triangulate_sequence(rig, half)
    assert np.abs(res.keypoints_3d - X).max() < 1e-4
    assert any("scaled by 2" in n for n in res.notes)
    with pytest.raises(ConfigError, match="rotated"):
        triangulate_sequence(rig, _detections(rig, X, size=(H, W)))
    with pytest.raises(ConfigError, match="aspect ratio"):
        triangulate_sequence(rig, _detections(rig, X, size=(W, W)))
    with pytest.raises(ConfigError, match="2 keypoint sources for 3 cameras"):
        triangulate_sequence(rig, half[:2])


def _cli(argv: list[str]) -> int:
    from poselift.cli import triangulate_cmd

    parser = argparse.ArgumentParser(prog="poselift")
    triangulate_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_keypoint_files(tmp_path, capsys):
    from poselift.infer.sources.csv_keypoints import write_keypoints_csv

    rig = _rig(3)
    calib_path = write_calibration_toml(rig, tmp_path / "calib.toml")
    X = _skeleton_motion(5, seed=2)
    files = []
    for i, det in enumerate(_detections(rig, X, fps=25.0)):
        files.append(str(write_keypoints_csv(det, tmp_path / f"cam{i}.csv")))
    assert _cli(["triangulate", "--calibration", str(calib_path), "--keypoints", *files,
                 "--out", str(tmp_path / "out"), "--fps", "25"]) == 0
    out = capsys.readouterr().out
    assert "5 frames, 3 cameras, 100.0% of joints triangulated" in out
    z = np.load(tmp_path / "out" / "triangulation.npz")
    np.testing.assert_allclose(z["keypoints_3d"], X, atol=1e-4)
    with pytest.raises(ConfigError, match="2 keypoint files for 3 cameras"):
        _cli(["triangulate", "--calibration", str(calib_path), "--keypoints", *files[:2], "--out", str(tmp_path)])
    with pytest.raises(PoseliftError, match=r"camera \[cam1\]: field 'matrix' is missing"):
        bad = tmp_path / "bad.toml"
        bad.write_text(calib_path.read_text().replace("matrix =", "matrixx =", 1))
        _cli(["triangulate", "--calibration", str(bad), "--keypoints", *files, "--out", str(tmp_path)])
