"""CMU dataset builder: readable files, consistent shapes, 2D = projection of 3D through the stored cameras."""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from poselift.cli.main import main
from poselift.data.cmu_dataset import DEFAULT_NOISE, build_cmu_dataset
from poselift.data.dataset import load_dataset
from poselift.data.keypoint_noise import NoiseModel
from poselift.data.virtual_cameras import CameraRig
from poselift.data.vp3d_format import load_positions_2d, load_positions_3d
from poselift.errors import ConfigError, DataFormatError
from poselift.skeleton import COCO_17, H36M_17
from reference_projection import project

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
H = {name: i for i, name in enumerate(H36M_17.joint_names)}

# A standing person, 1.75 m, Human3.6M-17 order, body frame x forward, y left, z up (metres).
STAND = np.array([
    [0, 0, 0.95], [0, -0.13, 0.95], [0.02, -0.13, 0.52], [0, -0.13, 0.08], [0, 0.13, 0.95], [0.02, 0.13, 0.52],
    [0, 0.13, 0.08], [0, 0, 1.18], [0, 0, 1.45], [0.08, 0, 1.6], [0.02, 0, 1.75], [0, 0.18, 1.43],
    [0, 0.2, 1.15], [0.05, 0.2, 0.9], [0, -0.18, 1.43], [0, -0.2, 1.15], [0.05, -0.2, 0.9],
])


@dataclass
class FakeClip:
    name: str
    subject: str
    source: str
    fps: float
    positions: np.ndarray


# name -> (subject, frames, start xy, velocity m/s, turning rad/s): clips far apart in the world.
FAKE_CLIPS = {"01_01": ("01", 40, (12.0, -3.0), (1.2, 0.3), 0.0),
              "01_02": ("01", 55, (-20.0, 7.0), (0.0, 0.0), 1.5),
              "02_01": ("02", 30, (0.5, 0.5), (-0.8, 1.0), 0.5)}


def fake_load(path, fps: float = 50.0) -> FakeClip:
    name = Path(path).stem
    subject, frames, start, velocity, turning = FAKE_CLIPS[name]
    t = np.arange(frames) / fps
    heading = np.arctan2(velocity[1], velocity[0]) + turning * t
    c, s = np.cos(heading), np.sin(heading)
    rot = np.stack((np.stack((c, -s, 0 * c), -1), np.stack((s, c, 0 * c), -1), np.tile([0.0, 0, 1], (frames, 1))), 1)
    pose = np.einsum("tij,kj->tki", rot, STAND)
    pose[..., :2] += np.asarray(start) + np.outer(t, velocity)[:, None]
    pose[:, H["left_wrist"], 2] += 0.3 * np.sin(2 * np.pi * t)  # some limb motion
    return FakeClip(name, subject, str(path), fps, pose.astype(np.float32))


def fake_find(src_dir):
    return sorted(Path(src_dir).glob("*.bvh"))


def fake_coco(h36m):
    """COCO-17 from Human3.6M-17: face points around the nose/head, limbs copied."""
    p = np.asarray(h36m, dtype=np.float64)
    lateral = p[:, H["left_shoulder"]] - p[:, H["right_shoulder"]]
    nose, head = p[:, H["neck_nose"]], p[:, H["head"]]
    eye_mid = (nose + head) / 2
    limbs = [p[:, H[n]] for n in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                                  "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                                  "right_ankle")]
    face = [nose, eye_mid + 0.1 * lateral, eye_mid - 0.1 * lateral, head + 0.25 * lateral - [0, 0, 0.1],
            head - 0.25 * lateral - [0, 0, 0.1]]
    return np.stack(face + limbs, axis=1).astype(np.float32)


FAKES = dict(find_clips=fake_find, load_clip=fake_load, to_coco=fake_coco)


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "bvh"
    folder.mkdir()
    for name in FAKE_CLIPS:
        (folder / f"{name}.bvh").write_text("HIERARCHY\n")
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bvh")
    for name in FAKE_CLIPS:
        (folder / f"{name}.bvh").write_text("HIERARCHY\n")
    out = tmp_path_factory.mktemp("out")
    summary = build_cmu_dataset(folder, out, fps=50, cameras_per_clip=3, seed=4, progress=False, **FAKES)
    return folder, out, summary


def test_files_summary_and_shapes(built):
    _, out, summary = built
    assert summary.paths == {"3d": out / "data_3d_cmu.npz", "2d_gt": out / "data_2d_cmu_gt.npz",
                             "2d_coco_gt": out / "data_2d_cmu_coco_gt.npz",
                             "2d_coco_noisy": out / "data_2d_cmu_coco_noisy.npz"}
    assert summary.subjects == ["01", "02"] and summary.num_clips == 3
    assert summary.frames == {"01": {"01_01": 40, "01_02": 55}, "02": {"02_01": 30}}
    assert summary.num_frames == 125 and "2 subjects, 3 clips, 125 frames" in summary.describe()
    positions, cameras = load_positions_3d(summary.paths["3d"])
    assert list(positions) == ["01", "02"] and {s: len(c) for s, c in cameras.items()} == {"01": 3, "02": 3}
    for key, skeleton, channels in (("2d_gt", H36M_17, 2), ("2d_coco_gt", COCO_17, 2), ("2d_coco_noisy", COCO_17, 3)):
        kps, meta = load_positions_2d(summary.paths[key])
        assert meta["layout_name"] == skeleton.name and int(meta["num_joints"]) == 17
        for s, acts in positions.items():
            assert list(kps[s]) == list(acts)
            for a, pos in acts.items():
                assert pos.shape == (summary.frames[s][a], 17, 3)
                assert len(kps[s][a]) == 3
                for view in kps[s][a]:
                    assert view.shape == (pos.shape[0], 17, channels) and np.isfinite(view).all()


def test_clips_are_recentred(built):
    _, _, summary = built
    positions, _ = load_positions_3d(summary.paths["3d"])
    for s, acts in positions.items():
        for a, pos in acts.items():
            flat = pos.reshape(-1, 3)
            np.testing.assert_allclose((flat[:, :2].min(0) + flat[:, :2].max(0)) / 2, 0, atol=1e-5)
            original = fake_load(summary.sources[s][a]).positions
            np.testing.assert_allclose(pos[..., 2], original[..., 2])  # heights untouched
            np.testing.assert_allclose(np.diff(pos, axis=0), np.diff(original, axis=0), atol=1e-5)


def test_2d_is_the_projection_of_3d_through_the_stored_cameras(built):
    _, _, summary = built
    positions, cameras = load_positions_3d(summary.paths["3d"])
    h36m, _ = load_positions_2d(summary.paths["2d_gt"])
    coco, _ = load_positions_2d(summary.paths["2d_coco_gt"])
    noisy, _ = load_positions_2d(summary.paths["2d_coco_noisy"])
    rig = CameraRig()
    for s, acts in positions.items():
        for a, pos in acts.items():
            for c, cam in enumerate(cameras[s]):
                uv, depth = project(pos, cam)
                np.testing.assert_allclose(h36m[s][a][c], uv, atol=1e-3)
                uv_coco, depth_coco = project(fake_coco(pos), cam)
                np.testing.assert_allclose(coco[s][a][c], uv_coco, atol=1e-3)
                both = np.concatenate((uv, uv_coco), axis=1)
                assert min(depth.min(), depth_coco.min()) > rig.min_depth
                assert both.min() >= rig.margin_px and both.max() <= 1000 - rig.margin_px
                # Noisy: close to the exact COCO keypoints, never identical, confidence a 0/1 flag.
                err = np.linalg.norm(noisy[s][a][c][..., :2] - uv_coco, axis=-1)
                assert 0 < np.median(err) < 30
                assert set(np.unique(noisy[s][a][c][..., 2])) <= {0.0, 1.0}


def test_load_dataset_reads_the_files(built):
    _, out, summary = built
    for key in ("2d_gt", "2d_coco_gt", "2d_coco_noisy"):
        ds = load_dataset(summary.paths[key], summary.paths["3d"], cameras="auto")
        assert ds.subjects() == ["01", "02"] and ds.actions("01") == ["01_01", "01_02"]
        assert ds.num_keypoints == 17 and ds.skeleton.name == "h36m"
        seqs = ds.select(["01", "02"])
        assert len(seqs) == 3 * 3
        for seq in seqs:
            assert seq.keypoints_2d.shape == (summary.frames[seq.subject][seq.action], 17, 2)
            assert seq.positions_3d.shape == (seq.keypoints_2d.shape[0], 17, 3)
            assert np.abs(seq.keypoints_2d).max() <= 1.0  # normalised screen coordinates, inside the image
            assert seq.positions_3d[:, 0, 2].min() > 0.5  # the root is in front of the camera


def test_seeded_no_noise_and_cameras_per_subject(src, tmp_path, built):
    _, _, first = built
    again = build_cmu_dataset(src, tmp_path / "a", cameras_per_clip=3, seed=4, progress=False, **FAKES)
    for key in first.paths:
        a, _ = load_positions_2d(first.paths[key]) if key != "3d" else load_positions_3d(first.paths[key])
        b, _ = load_positions_2d(again.paths[key]) if key != "3d" else load_positions_3d(again.paths[key])
        for s in a:
            for act in a[s]:
                np.testing.assert_array_equal(np.asarray(a[s][act]), np.asarray(b[s][act]))
    assert again.cameras == first.cameras
    other = build_cmu_dataset(src, tmp_path / "b", cameras_per_clip=2, noise=None, seed=5, progress=False, **FAKES)
    assert "2d_coco_noisy" not in other.paths and not (tmp_path / "b" / "data_2d_cmu_coco_noisy.npz").exists()
    assert [len(c) for c in other.cameras.values()] == [2, 2]
    assert other.cameras["01"][0].translation.tolist() != first.cameras["01"][0].translation.tolist()
    quiet = build_cmu_dataset(src, tmp_path / "c", cameras_per_clip=1, noise=NoiseModel(jitter=0.0, drift=0.0,
                              bias=0.0, outlier_prob=0.0, miss_prob=0.0), progress=False, **FAKES)
    exact, _ = load_positions_2d(quiet.paths["2d_coco_gt"])
    noiseless, _ = load_positions_2d(quiet.paths["2d_coco_noisy"])
    np.testing.assert_allclose(noiseless["02"]["02_01"][0][..., :2], exact["02"]["02_01"][0], atol=1e-4)
    assert DEFAULT_NOISE.joint_weights is not None


def test_errors_name_the_path(tmp_path, src):
    with pytest.raises(ConfigError, match="no such folder"):
        build_cmu_dataset(tmp_path / "missing", tmp_path / "o", progress=False, **FAKES)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match=re.escape(f"{empty}: no .bvh files found")):
        build_cmu_dataset(empty, tmp_path / "o", progress=False, **FAKES)
    with pytest.raises(DataFormatError, match=re.escape(f"{empty}: no .bvh files found")):  # the default finder too
        build_cmu_dataset(empty, tmp_path / "o", progress=False, to_coco=fake_coco)

    def bad_load(path, fps=50.0):
        clip = fake_load(path, fps)
        clip.positions = clip.positions[:, :15]
        return clip

    with pytest.raises(DataFormatError, match=r"01_01\.bvh: positions should be \(T, 17, 3\)"):
        build_cmu_dataset(src, tmp_path / "o", progress=False, **{**FAKES, "load_clip": bad_load})
    with pytest.raises(ConfigError):
        build_cmu_dataset(src, tmp_path / "o", cameras_per_clip=0, progress=False, **FAKES)


def test_cli_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = main(["data", "cmu", "--src", str(empty), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{empty}: no .bvh files found" in err and "Traceback" not in err
    rc = main(["data", "cmu", "--src", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2 and "nope: no such folder" in capsys.readouterr().err
    rc = main(["data", "cmu", "--src", str(empty), "--out", str(tmp_path / "o"), "--cameras", "0"])
    assert rc == 2 and "--cameras" in capsys.readouterr().err


def _real_modules_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("poselift.data.cmu", "poselift.data.coco_synthesis"))


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent")
@pytest.mark.skipif(not _real_modules_available(), reason="poselift.data.cmu / coco_synthesis not available yet")
def test_real_cmu_clips_end_to_end(tmp_path, capsys):
    clips = [SHARED_DATA / "cmu-mb" / "09_02.bvh", SHARED_DATA / "cmu-mb" / "74_08.bvh"]
    if not all(c.is_file() for c in clips):
        pytest.skip("the cmu-mb test clips are absent")
    src = tmp_path / "src"
    src.mkdir()
    for c in clips:
        os.symlink(c, src / c.name)
    out = tmp_path / "out"
    rc = main(["data", "cmu", "--src", str(src), "--out", str(out), "--cameras", "2", "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 0 and "2 clips" in printed
    positions, cameras = load_positions_3d(out / "data_3d_cmu.npz")
    assert sum(len(a) for a in positions.values()) == 2
    h36m, _ = load_positions_2d(out / "data_2d_cmu_gt.npz")
    for s, acts in positions.items():
        for a, pos in acts.items():
            assert pos.shape[0] > 10 and pos.shape[1:] == (17, 3)
            head = pos[:, H["head"], 2]
            assert 1.2 < np.median(head) < 2.2, "metres, Z-up, ground at 0"
            for c, cam in enumerate(cameras[s]):
                np.testing.assert_allclose(h36m[s][a][c], project(pos, cam)[0], atol=1e-3)
    ds = load_dataset(out / "data_2d_cmu_coco_noisy.npz", out / "data_3d_cmu.npz", cameras="auto")
    assert len(ds.select(ds.subjects())) == 2 * 2
