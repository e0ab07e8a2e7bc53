"""Synthetic motion dataset: format, anatomy, cameras and projection checked independently."""

from __future__ import annotations

import numpy as np
import pytest

from poselift.data.synthetic import (
    ACTIONS,
    SyntheticConfig,
    generate_motion,
    generate_synthetic_dataset,
    project_dataset,
)
from poselift.data.vp3d_format import load_positions_2d, load_positions_3d
from poselift.geometry.camera import CameraParameters
from poselift.skeleton import H36M_17
from reference_projection import camera_space, project, quat_to_matrix

CONFIG = SyntheticConfig(subjects=("S1", "S2"), seconds_per_action=2.0, fps=50, cameras_per_subject=3, seed=7)
J = {name: i for i, name in enumerate(H36M_17.joint_names)}
UP = np.array([0.0, 0.0, 1.0])


@pytest.fixture(scope="module")
def data():
    positions, cameras = generate_motion(CONFIG)
    return positions, cameras, project_dataset(positions, cameras)


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _dot(a, b):
    return np.einsum("...i,...i->...", a, b)


def _assert_cameras_equal(a: CameraParameters, b: CameraParameters):
    assert (a.id, a.res_w, a.res_h, a.azimuth) == (b.id, b.res_w, b.res_h, b.azimuth)
    for name in ("focal_length", "center", "radial_distortion", "tangential_distortion", "orientation", "translation"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_shapes_dtypes_and_keys(data):
    positions, cameras, positions_2d = data
    frames = 100
    assert list(positions) == list(CONFIG.subjects) == list(cameras) == list(positions_2d)
    assert len(ACTIONS) >= 6
    for s in CONFIG.subjects:
        assert list(positions[s]) == list(ACTIONS)
        assert len(cameras[s]) == CONFIG.cameras_per_subject
        for cam in cameras[s]:
            assert isinstance(cam, CameraParameters) and (cam.res_w, cam.res_h) == (1000, 1000)
        for action, pos in positions[s].items():
            assert pos.shape == (frames, 17, 3) and pos.dtype == np.float32 and np.isfinite(pos).all()
            assert len(positions_2d[s][action]) == CONFIG.cameras_per_subject
            for p2 in positions_2d[s][action]:
                assert p2.shape == (frames, 17, 2) and p2.dtype == np.float32 and np.isfinite(p2).all()


def test_file_round_trip(tmp_path, data):
    positions, cameras, positions_2d = data
    path_3d, path_2d = generate_synthetic_dataset(tmp_path / "out", CONFIG, progress=False)
    assert path_3d == tmp_path / "out" / "data_3d_synthetic.npz"
    assert path_2d == tmp_path / "out" / "data_2d_synthetic_gt.npz"
    loaded_3d, loaded_cams = load_positions_3d(path_3d)
    loaded_2d, meta = load_positions_2d(path_2d)
    assert meta["layout_name"] == H36M_17.name and int(meta["num_joints"]) == 17
    assert meta["keypoints_symmetry"] == [list(H36M_17.joints_left), list(H36M_17.joints_right)]
    for s in CONFIG.subjects:
        assert len(loaded_cams[s]) == len(cameras[s])
        for a, b in zip(loaded_cams[s], cameras[s]):
            _assert_cameras_equal(a, b)
        for action in ACTIONS:
            np.testing.assert_array_equal(loaded_3d[s][action], positions[s][action])
            for c in range(CONFIG.cameras_per_subject):
                np.testing.assert_array_equal(loaded_2d[s][action][c], positions_2d[s][action][c])


def test_bone_lengths_constant_and_plausible(data):
    positions, _, _ = data
    statures = []
    for s in CONFIG.subjects:
        all_frames = np.concatenate(list(positions[s].values())).astype(np.float64)
        lengths = {(c, p): np.linalg.norm(all_frames[:, c] - all_frames[:, p], axis=-1) for c, p in H36M_17.bones}
        for bone, length in lengths.items():
            assert length.std() < 1e-5, f"{s}: bone {bone} changes length over time"
        mean = {bone: length.mean() for bone, length in lengths.items()}
        for hip, knee, ankle in (("right_hip", "right_knee", "right_ankle"), ("left_hip", "left_knee", "left_ankle")):
            assert 0.35 < mean[(J[knee], J[hip])] < 0.5  # thigh
            assert 0.35 < mean[(J[ankle], J[knee])] < 0.5  # shank
        assert 0.2 < mean[(J["left_elbow"], J["left_shoulder"])] < 0.4  # upper arm
        assert mean[(J["left_knee"], J["left_hip"])] == pytest.approx(mean[(J["right_knee"], J["right_hip"])], rel=1e-5)
        # Stature proxy: shank + thigh + spine chain + head.
        statures.append(sum(mean[(J[c], J[p])] for c, p in (("right_ankle", "right_knee"), ("right_knee", "right_hip"),
                                                          ("spine", "pelvis"), ("thorax", "spine"),
                                                          ("neck_nose", "thorax"), ("head", "neck_nose"))))
        # Upright, feet on the ground: the head top sits at a human height.
        walking = positions[s]["Walking"]
        assert 1.4 < np.median(walking[:, J["head"], 2]) < 2.0
    assert abs(statures[0] - statures[1]) > 0.02, "subjects should have different body sizes"


def test_feet_on_the_ground(data):
    positions, _, _ = data
    for s in CONFIG.subjects:
        for action, pos in positions[s].items():
            feet = pos[:, [J["left_ankle"], J["right_ankle"]], 2]
            assert feet.min() > 0.03, f"{s}/{action}: a foot goes through the floor"
            lowest = feet.min(axis=1)
            if action != "JumpingJacks" and action != "Jogging":
                assert lowest.max() < 0.15, f"{s}/{action}: floating above the ground"
        jumps = positions[s]["JumpingJacks"][:, [J["left_ankle"], J["right_ankle"]], 2].min(axis=1)
        assert jumps.max() - jumps.min() > 0.03, "jumping jacks should leave the ground"


def test_root_motion(data):
    positions, _, _ = data
    for s in CONFIG.subjects:
        for action, pos in positions[s].items():
            assert np.linalg.norm(pos[:, J["pelvis"], :2], axis=-1).max() < 1.5, f"{s}/{action} leaves the capture area"
            step = np.linalg.norm(np.diff(pos, axis=0), axis=-1)
            assert step.max() < 0.2, f"{s}/{action}: a joint jumps {step.max():.2f} m between frames"
        travelled = np.linalg.norm(np.diff(positions[s]["Walking"][:, J["pelvis"], :2], axis=0), axis=-1).sum()
        assert 1.5 < travelled < 4.0  # ~1-1.5 m/s for 2 s


def test_left_is_left(data):
    positions, _, _ = data
    for s in CONFIG.subjects:
        for action in ("Walking", "Jogging"):
            pos = positions[s][action].astype(np.float64)
            velocity = np.gradient(pos[:, J["pelvis"]], axis=0)
            velocity[:, 2] = 0
            forward = _unit(velocity)
            left = np.cross(UP, forward)  # x forward, y left, z up
            assert (_dot(pos[:, J["left_hip"]] - pos[:, J["right_hip"]], left) > 0).all()
            assert (_dot(pos[:, J["left_shoulder"]] - pos[:, J["right_shoulder"]], left) > 0).all()
            assert (_dot(pos[:, J["neck_nose"]] - pos[:, J["thorax"]], forward) > 0).all(), "faces backwards"
        for action, pos in positions[s].items():
            pos = pos.astype(np.float64)
            # Forward from the hips (left x up) must agree with where the face points.
            forward = np.cross(pos[:, J["left_hip"]] - pos[:, J["right_hip"]], UP)
            assert (_dot(pos[:, J["neck_nose"]] - pos[:, J["thorax"]], forward) > 0).all(), f"{s}/{action}"


def _flexion_deg(a, b, c):
    """Angle (deg) between segment a->b and b->c: 0 for a straight limb."""
    return np.degrees(np.arccos(np.clip(_dot(_unit(b - a), _unit(c - b)), -1, 1)))


def test_knees_and_elbows_bend_one_way(data):
    positions, _, _ = data
    deepest = 0.0
    for s in CONFIG.subjects:
        for action, pos in positions[s].items():
            pos = pos.astype(np.float64)
            left_pelvis = _unit(pos[:, J["left_hip"]] - pos[:, J["right_hip"]])
            for side in ("left", "right"):
                hip, knee, ankle = (pos[:, J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
                # Knee flexion swings the shank backwards about the pelvis' left axis, so
                # thigh x shank points left; a hyper-extended (backwards) knee points right.
                axis = np.cross(_unit(knee - hip), _unit(ankle - knee))
                assert (_dot(axis, left_pelvis) > 1e-3).all(), f"{s}/{action}: {side} knee bends backwards"
                flex = _flexion_deg(hip, knee, ankle)
                assert flex.max() < 141, f"{s}/{action}: {side} knee flexed {flex.max():.0f} deg"
                deepest = max(deepest, flex.max())
                shoulder, elbow, wrist = (pos[:, J[f"{side}_{n}"]] for n in ("shoulder", "elbow", "wrist"))
                assert _flexion_deg(shoulder, elbow, wrist).max() < 146, f"{s}/{action}: {side} elbow"
                if action not in ("Waving", "JumpingJacks"):
                    # Arms below shoulder height: the elbow axis is the shoulder line and the
                    # forearm swings forwards (upper x forearm points right).
                    left_chest = _unit(pos[:, J["left_shoulder"]] - pos[:, J["right_shoulder"]])
                    axis = np.cross(_unit(elbow - shoulder), _unit(wrist - elbow))
                    assert (_dot(axis, left_chest) < 0).all(), f"{s}/{action}: {side} elbow bends backwards"
    assert deepest > 90, "squats should bend the knees deeply"


def test_everyone_in_front_and_inside_every_camera(data):
    positions, cameras, positions_2d = data
    for s in CONFIG.subjects:
        for c, cam in enumerate(cameras[s]):
            for action, pos in positions[s].items():
                assert camera_space(pos, cam)[..., 2].min() > 1.0, f"{s}/{action} behind or too near camera {c}"
                uv = positions_2d[s][action][c]
                assert uv.min() > 20 and uv.max() < 980, f"{s}/{action} leaves the image of camera {c}"


def test_cameras_resemble_human36m(data):
    _, cameras, _ = data
    for s in CONFIG.subjects:
        azimuths = []
        for cam in cameras[s]:
            rot = quat_to_matrix(cam.orientation)
            np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-9)
            assert np.linalg.det(rot) == pytest.approx(1.0)
            assert 1.4 <= cam.translation[2] <= 1.9
            assert 4.5 <= np.linalg.norm(cam.translation[:2]) <= 6.5
            # The optical axis (camera z in world) passes near the capture centre at ~1 m height.
            to_target = np.array([0.0, 0.0, 1.0]) - cam.translation
            miss = np.linalg.norm(to_target - (to_target @ rot[:, 2]) * rot[:, 2])
            assert miss < 0.05
            assert rot[2, 1] < -0.9, "camera y should point down (upright camera)"
            assert np.all(np.abs(cam.focal_length - 1145) < 40) and np.all(np.abs(cam.center - 500) < 20)
            assert -0.25 < cam.radial_distortion[0] < -0.15 and 0.19 < cam.radial_distortion[1] < 0.29
            assert np.all(np.abs(cam.tangential_distortion) < 5e-3)
            azimuths.append(np.arctan2(cam.translation[1], cam.translation[0]))
        gaps = np.diff(np.sort(np.mod(azimuths, 2 * np.pi)))
        assert gaps.min() > np.radians(40), "cameras should be spread around the subject"


def test_projection_matches_independent_numpy(data):
    positions, cameras, positions_2d = data
    for s in CONFIG.subjects:
        for c, cam in enumerate(cameras[s]):
            for action, pos in positions[s].items():
                expected = project(pos, cam)[0]
                np.testing.assert_allclose(positions_2d[s][action][c], expected, atol=1e-3, rtol=0)


def test_deterministic_for_a_seed(data):
    positions, cameras, _ = data
    again, again_cams = generate_motion(CONFIG)
    for s in CONFIG.subjects:
        for action in ACTIONS:
            np.testing.assert_array_equal(again[s][action], positions[s][action])
        for a, b in zip(again_cams[s], cameras[s]):
            _assert_cameras_equal(a, b)
    other, other_cams = generate_motion(SyntheticConfig(**{**CONFIG.__dict__, "seed": CONFIG.seed + 1}))
    for s in CONFIG.subjects:
        assert not np.allclose(other_cams[s][0].translation, cameras[s][0].translation)
        for action in ACTIONS:
            assert np.abs(other[s][action] - positions[s][action]).max() > 0.05


def test_default_config_fits_cameras():
    # The full default dataset is cheap to generate; check it too (in front, inside with margin).
    positions, cameras = generate_motion(SyntheticConfig())
    positions_2d = project_dataset(positions, cameras)
    assert len(positions) == 5 and all(p.shape == (400, 17, 3) for a in positions.values() for p in a.values())
    for s in positions:
        for c, cam in enumerate(cameras[s]):
            for action, pos in positions[s].items():
                assert camera_space(pos, cam)[..., 2].min() > 1.0
                uv = positions_2d[s][action][c]
                assert uv.min() > 20 and uv.max() < 980
