import numpy as np
import pytest

from poselift.data.dataset import deterministic_random, load_dataset
from poselift.data.vp3d_format import save_positions_2d, save_positions_3d
from poselift.errors import DataFormatError, PoseliftError
from poselift.geometry.camera import CameraParameters
from poselift.geometry.published_cameras import published_cameras
from poselift.skeleton import COCO_17, H36M_17, H36M_17_FROM_32


def _camera(yaw_deg: float) -> CameraParameters:
    # Camera 5 m from the origin on the -y axis rotated by yaw, looking at the origin, z-up world.
    a = np.deg2rad(yaw_deg)
    centre = np.array([5 * np.sin(a), -5 * np.cos(a), 1.0])
    fwd = -centre / np.linalg.norm(centre)
    right = np.cross(fwd, [0, 0, 1.0]); right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    r = np.stack([right, down, fwd], axis=1)  # columns: camera axes in world
    w = np.sqrt(1 + np.trace(r)) / 2
    q = np.array([w, (r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w), (r[1, 0] - r[0, 1]) / (4 * w)])
    return CameraParameters(id=f"c{yaw_deg}", res_w=1000, res_h=800, focal_length=[1100, 1100], center=[500, 400],
                            orientation=q, translation=centre)


def _write(tmp_path, joints=17, extra_2d_frames=0):
    rng = np.random.default_rng(0)
    cams = [_camera(0), _camera(90)]
    world = {"S1": {"Walk 1": rng.normal(0, 0.3, (12, joints, 3)).astype(np.float32) + [0, 0, 1]},
             "S2": {"Walk 1": rng.normal(0, 0.3, (9, joints, 3)).astype(np.float32) + [0, 0, 1],
                    "Sit": rng.normal(0, 0.3, (8, joints, 3)).astype(np.float32) + [0, 0, 1]}}
    kps = {s: {a: [rng.uniform(0, 800, (len(x) + extra_2d_frames, 17, 2)) for _ in cams] for a, x in acts.items()}
           for s, acts in world.items()}
    save_positions_3d(tmp_path / "data_3d_toy.npz", world, cameras={"S1": cams, "S2": cams})
    save_positions_2d(tmp_path / "data_2d_toy_gt.npz", kps, COCO_17)
    return world, kps, cams


def test_camera_space_root_relative_and_normalised(tmp_path):
    world, kps, cams = _write(tmp_path, extra_2d_frames=3)
    ds = load_dataset(tmp_path / "data_2d_toy_gt.npz", tmp_path / "data_3d_toy.npz")
    assert ds.subjects() == ["S1", "S2"] and ds.num_keypoints == 17 and ds.skeleton is H36M_17
    assert ds.kps_left == list(COCO_17.joints_left)
    seq = ds.select(["S1"])[1]  # second camera
    x = world["S1"]["Walk 1"]
    cam = cams[1]
    # independent camera transform: X_cam = R^T (X - t) with R from the quaternion
    qw, qx, qy, qz = cam.orientation
    r = np.array([[1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy)],
                  [2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx)],
                  [2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy)]])
    x_cam = (x - cam.translation) @ r
    assert np.allclose(seq.positions_3d[:, 0], x_cam[:, 0], atol=1e-5)
    assert np.allclose(seq.positions_3d[:, 1:], x_cam[:, 1:] - x_cam[:, :1], atol=1e-5)
    # 2D trimmed to the 12 mocap frames and normalised: [0, w] -> [-1, 1], y scaled by the same factor
    k = kps["S1"]["Walk 1"][1][:12]
    assert seq.keypoints_2d.shape == (12, 17, 2)
    assert np.allclose(seq.keypoints_2d[..., 0], k[..., 0] / 1000 * 2 - 1, atol=1e-6)
    assert np.allclose(seq.keypoints_2d[..., 1], k[..., 1] / 1000 * 2 - 0.8, atol=1e-6)
    assert seq.intrinsics[0] == pytest.approx(2.2) and seq.intrinsics[3] == pytest.approx(0.0)


def test_selection_actions_subset_downsample(tmp_path):
    _write(tmp_path)
    ds = load_dataset(tmp_path / "data_2d_toy_gt.npz", tmp_path / "data_3d_toy.npz")
    assert len(ds.select(["S2"])) == 4
    assert {s.action for s in ds.select(["S2"], actions=["Sit"])} == {"Sit"}
    assert [len(s.keypoints_2d) for s in ds.select(["S1"], downsample=2)] == [6, 6]
    sub = ds.select(["S1"], subset=0.5)
    n = 12
    start = deterministic_random(0, n - 6 + 1, str(n))
    assert len(sub[0].keypoints_2d) == 6
    full = ds.select(["S1"])[0]
    assert np.array_equal(sub[0].keypoints_2d, full.keypoints_2d[start:start + 6])
    assert ds.select(["S1"])[0].action_group == "Walk"
    with pytest.raises(PoseliftError, match="S7"):
        ds.select(["S7"])
    with pytest.raises(PoseliftError, match="no sequences"):
        ds.select(["S1"], actions=["Jump"])


def test_human36m_32_joints_with_published_cameras(tmp_path):
    rng = np.random.default_rng(1)
    world = {"S9": {"Directions 1": rng.normal(0, 0.3, (6, 32, 3)).astype(np.float32) + [0, 0, 1]}}
    kps = {"S9": {"Directions 1": [rng.uniform(0, 1000, (6, 17, 2)) for _ in range(4)]}}
    save_positions_3d(tmp_path / "data_3d_h36m.npz", world)  # no cameras: taken from the published set
    save_positions_2d(tmp_path / "data_2d_h36m_cpn.npz", kps, H36M_17)
    ds = load_dataset(tmp_path / "data_2d_h36m_cpn.npz", tmp_path / "data_3d_h36m.npz")
    seq = ds.select(["S9"])[2]
    cam = published_cameras("h36m")["S9"][2]
    assert seq.camera.id == cam.id == "58860488"
    assert seq.positions_3d.shape == (6, 17, 3)
    from poselift.geometry import world_to_camera
    x17 = world["S9"]["Directions 1"][:, list(H36M_17_FROM_32)]
    expected = world_to_camera(x17, cam.orientation, cam.translation)
    assert np.allclose(seq.positions_3d[:, 0], expected[:, 0], atol=1e-5)


def test_consistency_errors(tmp_path):
    _write(tmp_path)
    # fewer 2D frames than 3D frames
    world, kps, cams = _write(tmp_path)
    kps["S1"]["Walk 1"] = [k[:5] for k in kps["S1"]["Walk 1"]]
    save_positions_2d(tmp_path / "data_2d_toy_short.npz", kps, COCO_17)
    with pytest.raises(DataFormatError, match="fewer than"):
        load_dataset(tmp_path / "data_2d_toy_short.npz", tmp_path / "data_3d_toy.npz")
    # a missing action
    del kps["S2"]["Sit"]
    kps["S1"]["Walk 1"] = [np.zeros((12, 17, 2))] * 2
    save_positions_2d(tmp_path / "data_2d_toy_missing.npz", kps, COCO_17)
    with pytest.raises(DataFormatError, match="Sit"):
        load_dataset(tmp_path / "data_2d_toy_missing.npz", tmp_path / "data_3d_toy.npz")
    # no cameras and an unrecognisable name
    save_positions_3d(tmp_path / "data_3d_mine.npz", world)
    with pytest.raises(DataFormatError, match="cameras"):
        load_dataset(tmp_path / "data_2d_toy_gt.npz", tmp_path / "data_3d_mine.npz")


def test_custom_2d_only_dataset(tmp_path):
    kps = {"clip.mp4": {"custom": [np.full((4, 17, 2), 320.0)]}}
    save_positions_2d(tmp_path / "data_2d_custom_det.npz", kps, COCO_17, video_metadata={"clip.mp4": {"w": 640, "h": 480}})
    ds = load_dataset(tmp_path / "data_2d_custom_det.npz")
    seq = ds.select(["clip.mp4"], require_3d=False)[0]
    assert np.allclose(seq.keypoints_2d[..., 0], 0.0) and seq.positions_3d is None
    save_positions_2d(tmp_path / "data_2d_custom_nometa.npz", kps, COCO_17)
    with pytest.raises(DataFormatError, match="video_metadata"):
        load_dataset(tmp_path / "data_2d_custom_nometa.npz")


def test_humaneva_layout_with_published_cameras(tmp_path):
    from poselift.skeleton import HUMANEVA_15

    rng = np.random.default_rng(2)
    world = {"Train/S1": {"Walk 1 chunk0": rng.normal(0, 0.3, (10, 15, 3)).astype(np.float32) + [0, 0, 1]}}
    kps = {"Train/S1": {"Walk 1 chunk0": [rng.uniform(0, 480, (10, 15, 2)) for _ in range(3)]}}
    save_positions_3d(tmp_path / "data_3d_humaneva15.npz", world)
    save_positions_2d(tmp_path / "data_2d_humaneva15_gt.npz", kps, HUMANEVA_15)
    ds = load_dataset(tmp_path / "data_2d_humaneva15_gt.npz", tmp_path / "data_3d_humaneva15.npz")
    assert ds.skeleton is HUMANEVA_15 and ds.fps == 60.0
    seqs = ds.select(["Train/S1"])
    assert [s.camera.id for s in seqs] == ["C1", "C2", "C3"] and seqs[0].action_group == "Walk"
    # 640x480 cameras: x in [0, 640] maps to [-1, 1], y scaled by the same factor
    assert np.allclose(seqs[0].keypoints_2d[..., 0], kps["Train/S1"]["Walk 1 chunk0"][0][..., 0] / 320 - 1, atol=1e-6)
