"""Virtual cameras: every joint in front and inside the image, aimed where they should be, proper rotations."""

from __future__ import annotations

import numpy as np
import pytest

from poselift.data.virtual_cameras import (
    CameraPlacementError,
    CameraRig,
    fits_in_view,
    look_at,
    look_at_matrix,
    place_cameras,
    project_points,
)
from poselift.geometry.camera import world_to_camera
from reference_projection import project, quat_to_matrix

# A standing person, 1.75 m, Human3.6M-17 order, body frame x forward, y left, z up (metres).
STAND = np.array([
    [0, 0, 0.95], [0, -0.13, 0.95], [0.02, -0.13, 0.52], [0, -0.13, 0.08], [0, 0.13, 0.95], [0.02, 0.13, 0.52],
    [0, 0.13, 0.08], [0, 0, 1.18], [0, 0, 1.45], [0.08, 0, 1.6], [0.02, 0, 1.75], [0, 0.18, 1.43],
    [0, 0.2, 1.15], [0.05, 0.2, 0.9], [0, -0.18, 1.43], [0, -0.2, 1.15], [0.05, -0.2, 0.9],
])


def _clip(path_xy: np.ndarray, heading: np.ndarray, lift: np.ndarray | None = None, arms_up: bool = False):
    """(T, 17, 3): the standing pose turned to ``heading`` and moved along ``path_xy`` (T, 2)."""
    pose = STAND.copy()
    if arms_up:
        pose[[12, 15], 2] += 0.55
        pose[[13, 16], 2] += 1.0
    c, s = np.cos(heading), np.sin(heading)
    rot = np.stack((np.stack((c, -s, 0 * c), -1), np.stack((s, c, 0 * c), -1), np.tile([0.0, 0, 1], (len(c), 1))), 1)
    out = np.einsum("tij,kj->tki", rot, pose)
    out[..., :2] += path_xy[:, None]
    if lift is not None:
        out[..., 2] += lift[:, None]
    return out


def _clips():
    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, 120)
    start = rng.uniform(-3, 3, 2)
    straight = start + np.outer(t, [5.5, 1.5])  # a walk covering ~5.7 m
    circle = 1.4 * np.stack((np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)), -1) + [10.0, -4.0]
    return {
        "standing": _clip(np.tile(rng.uniform(-1, 1, 2), (60, 1)), np.full(60, 0.7)),
        "walk": _clip(straight, np.full(120, np.arctan2(1.5, 5.5))),
        "circle_far_from_origin": _clip(circle, 2 * np.pi * t + np.pi / 2),
        "jump_arms_up": _clip(np.zeros((120, 2)), 3 * t, lift=0.5 * np.sin(np.pi * t) ** 2, arms_up=True),
    }


def _bbox_centre(points):
    flat = points.reshape(-1, 3)
    return (flat[:, :2].min(0) + flat[:, :2].max(0)) / 2


@pytest.mark.parametrize("name", list(_clips()))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_joint_in_front_and_inside(name, seed):
    clip = _clips()[name]
    rig = CameraRig()
    cams = place_cameras(clip, rig, np.random.default_rng(seed), id_prefix="S9")
    assert len(cams) == rig.num_cameras
    centre = _bbox_centre(clip)
    for i, cam in enumerate(cams):
        assert cam.id == f"S9_cam{i}" and (cam.res_w, cam.res_h) == rig.resolution
        uv, depth = project(clip, cam)
        assert depth.min() > rig.min_depth
        assert uv.min() >= rig.margin_px and uv[..., 0].max() <= 1000 - rig.margin_px
        assert uv[..., 1].max() <= 1000 - rig.margin_px
        np.testing.assert_allclose(project_points(clip, cam)[0], uv, atol=1e-6)  # poselift's projection agrees
        assert fits_in_view(clip, cam, rig.min_depth, rig.margin_px)
        # Proper rotation, upright camera.
        rot = quat_to_matrix(cam.orientation)
        np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-9)
        assert np.linalg.det(rot) == pytest.approx(1.0)
        assert rot[2, 1] < -0.9, "camera y should point down"
        # Aimed at 1 m above the motion's centre: that point lies on the optical axis (the principal point).
        aim = np.array([*centre, rig.aim_height])
        uv_aim, d_aim = project(aim, cam)
        np.testing.assert_allclose(uv_aim, cam.center, atol=1e-6)
        assert d_aim > 0
        # Within the rig's ranges: height as drawn; distance drawn, possibly stepped back to max_distance.
        assert rig.height_range[0] <= cam.translation[2] <= rig.height_range[1]
        dist = np.linalg.norm(cam.translation[:2] - centre)
        assert rig.distance_range[0] - 1e-9 <= dist <= rig.max_distance + 1e-9
        assert cam.focal_length.min() >= rig.min_focal_scale * rig.focal_length_px * (1 - rig.focal_spread) - 1e-9
        if name == "standing":  # compact motion: never needs to step back or widen
            assert dist <= rig.distance_range[1] + 1e-9
            assert np.all(np.abs(cam.focal_length / rig.focal_length_px - 1) <= rig.focal_spread + 1e-12)
        azimuth = np.degrees(np.arctan2(*(cam.translation[:2] - centre)[::-1])) % 360
        assert min(abs(azimuth - cam.azimuth), 360 - abs(azimuth - cam.azimuth)) < 1e-6


def test_cameras_spread_around_and_intrinsics_like_human36m():
    clip = _clips()["standing"]
    rig = CameraRig()
    for seed in range(5):
        cams = place_cameras(clip, rig, seed)
        gaps = np.diff(np.sort([c.azimuth for c in cams] + [cams[0].azimuth + 360]))
        assert gaps.min() > 90 - 2 * rig.azimuth_jitter_deg - 1e-6
        for cam in cams:
            assert np.all(np.abs(cam.center - 500) <= rig.principal_point_jitter_px)
            assert -0.25 < cam.radial_distortion[0] < -0.15 and 0.19 < cam.radial_distortion[1] < 0.29
            assert np.all(np.abs(cam.tangential_distortion) < 5e-3)


def test_long_walk_steps_back_or_widens():
    t = np.linspace(0, 1, 100)
    clip = _clip(np.outer(t, [9.0, 0.0]) - [4.5, 0], np.zeros(100))  # 9 m straight line
    rig = CameraRig(num_cameras=6)
    cams = place_cameras(clip, rig, 3)
    adjusted = 0
    for cam in cams:
        assert fits_in_view(clip, cam, rig.min_depth, rig.margin_px)
        dist = np.linalg.norm(cam.translation[:2] - _bbox_centre(clip))
        widened = cam.focal_length.mean() < rig.focal_length_px * (1 - rig.focal_spread)
        adjusted += dist > rig.distance_range[1] or widened
        if widened:  # widening only once stepping back is exhausted
            assert dist == pytest.approx(rig.max_distance)
    assert adjusted > 0


def test_impossible_motion_raises_a_clear_error():
    t = np.linspace(0, 1, 50)
    clip = _clip(np.outer(t, [40.0, 0.0]), np.zeros(50))  # 40 m: passes through any camera of the rig
    with pytest.raises(CameraPlacementError, match=r"S7: camera \d cannot frame the motion \(extent 40\.\d x"):
        place_cameras(clip, CameraRig(), 0, id_prefix="S7")
    with pytest.raises(ValueError, match="non-empty finite"):
        place_cameras(np.full((3, 17, 3), np.nan), CameraRig(), 0)


def test_fixed_centre_and_determinism():
    clip = _clips()["circle_far_from_origin"]
    rig = CameraRig(distance_range=(6.0, 7.0))
    cams = place_cameras(clip, rig, 5, centre=(10.0, -4.0))
    again = place_cameras(clip, rig, np.random.default_rng(5), centre=(10.0, -4.0))
    other = place_cameras(clip, rig, 6, centre=(10.0, -4.0))
    assert cams == again and cams != other
    for cam in cams:
        assert 6.0 <= np.linalg.norm(cam.translation[:2] - [10.0, -4.0]) <= rig.max_distance
        np.testing.assert_allclose(project(np.array([10.0, -4.0, 1.0]), cam)[0], cam.center, atol=1e-6)


@pytest.mark.parametrize("roll", [0.0, 7.0, -30.0])
def test_look_at_matches_world_to_camera(roll):
    position, target = np.array([3.0, -4.0, 1.8]), np.array([0.5, 0.2, 1.0])
    q = look_at(position, target, roll)
    rot = look_at_matrix(position, target, roll)
    np.testing.assert_allclose(quat_to_matrix(q), rot, atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    # The target lies on the camera's +z axis, at its distance.
    x_cam = world_to_camera(target[None], q, position)[0]
    np.testing.assert_allclose(x_cam, [0, 0, np.linalg.norm(target - position)], atol=1e-9)
    # A point straight above the target is "up" in the image (negative camera y), rolled by `roll`.
    up = world_to_camera((target + [0, 0, 0.5])[None], q, position)[0]
    assert up[1] < 0
    assert np.degrees(np.arctan2(up[0], -up[1])) == pytest.approx(-roll, abs=1.0)
    with pytest.raises(ValueError, match="parallel"):
        look_at([0, 0, 5.0], [0, 0, 0.0])


def test_rig_validation():
    with pytest.raises(ValueError, match="distance_range"):
        CameraRig(distance_range=(5.0, 2.0))
    with pytest.raises(ValueError, match="max_distance"):
        CameraRig(max_distance=3.0)
    with pytest.raises(ValueError, match="num_cameras"):
        CameraRig(num_cameras=0)
