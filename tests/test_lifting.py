"""Video-pipeline lifting: metric scale, trajectory from 2D, causal/streaming lifting, smoothing."""

import numpy as np
import pytest
import torch

from poselift.data.coco_synthesis import coco_from_h36m
from poselift.data.synthetic import SyntheticConfig, generate_motion
from poselift.geometry.camera import normalize_screen_coordinates, world_to_camera
from poselift.infer.lifting import LiftConfig, StreamingLifter, lift_normalized, lift_track
from poselift.infer.smoothing import OneEuroFilter, gaussian_smooth, one_euro_smooth
from poselift.infer.trajectory import (STATURE_PER_CHAIN, default_focal_length, estimate_trajectory, pose_height,
                                       scale_to_height)
from poselift.infer.types import Track2D, VideoMeta
from poselift.metrics import mpjpe, p_mpjpe
from poselift.models.predict import predict_sequence
from poselift.models.temporal_conv import TemporalConvConfig, TemporalConvLifter

W, H = 1280, 720


@pytest.fixture(scope="module")
def scene():
    """A synthetic walk in camera space (metres), its COCO-17 projection through a known pinhole."""
    positions, cameras = generate_motion(SyntheticConfig(subjects=("S1",), seconds_per_action=2.0,
                                                         cameras_per_subject=1, seed=5))
    world = positions["S1"]["Walking"]
    cam = cameras["S1"][0]
    camera_space = world_to_camera(world, cam.orientation, cam.translation).astype(np.float64)
    camera_space = camera_space - camera_space[:1, :1] + np.array([0.3, 0.1, 5.0])  # start 5 m in front
    coco3d = coco_from_h36m(camera_space)
    f = default_focal_length(W, H)
    uv = f * coco3d[..., :2] / coco3d[..., 2:] + np.array([W / 2, H / 2])
    return camera_space, uv.astype(np.float32), f


def _track(uv, fps=50.0):
    t = uv.shape[0]
    return Track2D(keypoints=uv, scores=np.ones(uv.shape[:2], np.float32), detected=np.ones(t, bool),
                   valid=np.ones(t, bool), meta=VideoMeta(W, H, fps, t, "synthetic"))


def test_pose_height_of_a_straight_chain():
    pose = np.zeros((17, 3))
    # legs straight down 0.9 m (0.45 + 0.45), trunk straight up 0.7 m in five 0.175 m steps
    for hip, knee, ankle, x in ((1, 2, 3, -0.1), (4, 5, 6, 0.1)):
        pose[hip] = [x, 0, 0]
        pose[knee] = [x, 0.45, 0]
        pose[ankle] = [x, 0.9, 0]
    for k, j in enumerate((7, 8, 9, 10), start=1):
        pose[j] = [0, -0.175 * k, 0]
    assert pose_height(pose) == pytest.approx(STATURE_PER_CHAIN * (0.9 + 0.7))
    scaled, factor = scale_to_height(np.stack([pose, pose * 1.1]), 1.8)
    assert np.median(pose_height(scaled)) == pytest.approx(1.8)
    assert factor == pytest.approx(1.8 / np.median([pose_height(pose), pose_height(pose * 1.1)]))


def test_trajectory_recovers_the_root_from_exact_projections(scene):
    camera_space, uv, f = scene
    rel = camera_space - camera_space[:, :1]
    root = estimate_trajectory(rel, uv, None, focal_length=f, center=(W / 2, H / 2))
    # the limb joints COCO and Human3.6M share are exact, so the root is too (measured 6e-7 m)
    err = np.linalg.norm(root - camera_space[:, 0], axis=-1)
    assert err.max() < 1e-5, err.max()
    # a wrong focal length scales depth proportionally (the pose's size is fixed)
    root2 = estimate_trajectory(rel, uv, None, focal_length=2 * f, center=(W / 2, H / 2))
    np.testing.assert_allclose(root2[:, 2] / root[:, 2], 2.0, rtol=0.02)
    # zero-weight joints are ignored: corrupt the wrists and give them weight 0
    bad = uv.copy()
    bad[:, 9:11] += 300
    scores = np.ones(uv.shape[:2])
    scores[:, 9:11] = 0
    root3 = estimate_trajectory(rel, bad, scores, focal_length=f, center=(W / 2, H / 2))
    assert np.linalg.norm(root3 - camera_space[:, 0], axis=-1).max() < 1e-5


def test_lift_track_gives_metric_camera_space_3d(scene):
    camera_space, uv, f = scene
    height = float(np.median(pose_height(camera_space - camera_space[:, :1])))
    poses = lift_track(_track(uv), LiftConfig(subject_height_m=height, focal_length_px=f))
    assert poses.keypoints_3d.shape == (len(uv), 17, 3) and poses.keypoints_3d.dtype == np.float32
    assert np.median(pose_height(poses.root_relative)) == pytest.approx(height, rel=1e-4)
    # the shipped CMU model on a synthetic body (measured: MPJPE 73 mm, P-MPJPE 63 mm, depth off by 7%)
    rel_err = mpjpe(torch.from_numpy(poses.root_relative).double(),
                    torch.from_numpy(camera_space - camera_space[:, :1])).item()
    assert rel_err < 0.10, rel_err
    depth_err = np.abs(poses.keypoints_3d[:, 0, 2] - camera_space[:, 0, 2]) / camera_space[:, 0, 2]
    assert np.median(depth_err) < 0.09, np.median(depth_err)
    assert poses.info["model"] == "cmu_coco_rf81" and poses.info["focal_length_px"] == pytest.approx(f, abs=0.01)
    # the 3D reprojects onto the 2D it came from (the trajectory solved for exactly that)
    h36m_proj = f * poses.keypoints_3d[..., :2] / poses.keypoints_3d[..., 2:] + np.array([W / 2, H / 2])
    ankles_2d = uv[:, [16, 15]]  # COCO right/left ankle = H36M 3 / 6
    assert np.linalg.norm(h36m_proj[:, [3, 6]] - ankles_2d, axis=-1).mean() < 40
    assert p_mpjpe(torch.from_numpy(poses.root_relative).double(),
                   torch.from_numpy(camera_space - camera_space[:, :1])).item() < 0.08


def _tiny_model(causal=False):
    torch.manual_seed(0)
    model = TemporalConvLifter(TemporalConvConfig(num_joints_in=17, num_joints_out=17, filter_widths=[3, 3],
                                                  channels=32, causal=causal))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_causal_lifting_uses_only_the_past_and_matches_streaming():
    model = _tiny_model()
    rng = np.random.default_rng(0)
    uv = rng.uniform(100, 600, (20, 17, 2)).astype(np.float32)
    x = normalize_screen_coordinates(uv, W, H).astype(np.float32)
    causal = lift_normalized(model, x, causal=True)
    for t in (0, 3, 12, 19):  # frame t's causal output = the offline output of the video cut after t
        cut = predict_sequence(model, x[:t + 1], flip=([1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16],
                                                       [4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]))
        np.testing.assert_allclose(causal[t], cut[-1], atol=2e-5)
    changed = x.copy()
    changed[10:] += 0.3
    np.testing.assert_allclose(lift_normalized(model, changed, causal=True)[:10], causal[:10], atol=1e-6)
    offline = lift_normalized(model, x)
    assert not np.allclose(offline[:10], causal[:10], atol=1e-3)  # the offline model does look ahead
    stream = StreamingLifter(model, W, H)
    streamed = np.stack([stream.push(frame) for frame in uv])
    np.testing.assert_allclose(streamed, causal - causal[:, :1], atol=2e-5)


def test_causal_model_streams_exactly():
    model = _tiny_model(causal=True)
    rng = np.random.default_rng(1)
    uv = rng.uniform(100, 600, (15, 17, 2)).astype(np.float32)
    x = normalize_screen_coordinates(uv, W, H).astype(np.float32)
    offline = lift_normalized(model, x, causal=True)
    stream = StreamingLifter(model, W, H)
    np.testing.assert_allclose(np.stack([stream.push(f) for f in uv]), offline - offline[:, :1], atol=2e-5)


def test_gaussian_smoothing():
    const = np.full((30, 4, 3), 2.5)
    np.testing.assert_allclose(gaussian_smooth(const, 2.0), const)
    ramp = np.arange(30.0)[:, None] * np.ones((1, 2))
    np.testing.assert_allclose(gaussian_smooth(ramp, 2.0)[8:-8], ramp[8:-8], atol=1e-9)  # linear is kept inside
    noise = np.random.default_rng(0).standard_normal((5000, 1))
    # white noise through a normalised Gaussian of sigma s keeps variance 1 / (2 sqrt(pi) s)
    assert gaussian_smooth(noise, 3.0)[20:-20].var() == pytest.approx(1 / (2 * np.sqrt(np.pi) * 3.0), rel=0.1)
    np.testing.assert_array_equal(gaussian_smooth(noise, 0), noise)


def test_one_euro_is_causal_and_keeps_constants():
    const = np.full((20, 3), -1.0)
    np.testing.assert_allclose(one_euro_smooth(const, 30.0), const)
    x = np.random.default_rng(2).standard_normal((40, 2))
    y = one_euro_smooth(x, 30.0)
    x2 = x.copy()
    x2[25:] = 9.0
    np.testing.assert_array_equal(one_euro_smooth(x2, 30.0)[:25], y[:25])
    # first step by hand: alpha = 1 / (1 + tau / dt), tau = 1 / (2 pi fc), fc = min_cutoff + beta |dx_hat|
    f = OneEuroFilter(10.0, min_cutoff=1.0, beta=0.0)
    f(np.array([0.0]))
    alpha = 1 / (1 + (1 / (2 * np.pi)) / 0.1)
    assert f(np.array([1.0]))[0] == pytest.approx(alpha)


def test_resampling_to_the_model_rate_and_back():
    from poselift.infer.lifting import _resample
    t30 = np.arange(31) / 30.0  # one second at 30 fps
    x = np.stack([np.sin(t30), t30 ** 2], axis=1)[:, None, :]  # (31, 1, 2)
    up = _resample(x, 30.0, 50.0)
    assert up.shape == (51, 1, 2)
    np.testing.assert_allclose(up[::5, 0, 1], x[::3, 0, 1], atol=1e-12)  # common instants: 0, 0.1, 0.2 s, ...
    back = _resample(up, 50.0, 30.0, 31)
    # linear interpolation error of t^2 is at most h^2 / 8 * 2 = 1e-4 at h = 0.02 s, twice: 2e-4 (+ sin)
    np.testing.assert_allclose(back, x, atol=4e-4)


def test_lift_track_at_another_frame_rate_matches_lifting_at_the_model_rate(scene):
    camera_space, uv, f = scene
    # the 50 fps scene subsampled to 25 fps: lifting resamples it back to 50 fps first, so the result
    # matches the 50 fps result at the common frames far better than lifting the 25 fps track as it is
    full = lift_track(_track(uv), LiftConfig(focal_length_px=f))
    half = lift_track(_track(uv[::2], fps=25.0), LiftConfig(focal_length_px=f))
    as_is = lift_track(_track(uv[::2], fps=25.0), LiftConfig(focal_length_px=f, model_fps=None))
    assert half.info["lifted_at_fps"] == 50.0 and as_is.info["lifted_at_fps"] == 25.0
    d_resampled = np.abs(half.root_relative - full.root_relative[::2]).mean()
    d_as_is = np.abs(as_is.root_relative - full.root_relative[::2]).mean()
    assert d_resampled < d_as_is, (d_resampled, d_as_is)
