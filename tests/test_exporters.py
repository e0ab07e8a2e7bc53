"""Pose file exporters (poselift.io.poses_files, poselift.io.trc): round trips, exact headers, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from poselift.errors import ConfigError, DataFormatError, OutputError
from poselift.infer.types import Poses3D, VideoMeta
from poselift.io import poses_files
from poselift.io.poses_files import (
    JSON_FORMAT,
    NPZ_KEYS,
    read_poses_npz,
    write_poses_csv,
    write_poses_json,
    write_poses_npz,
)
from poselift.io.trc import MARKER_NAMES, camera_to_y_up, read_trc, write_trc
from poselift.skeleton import COCO_17, H36M_17


def make_poses(t: int = 6, seed: int = 0, fps: float = 30.0) -> Poses3D:
    rng = np.random.default_rng(seed)
    k3 = (rng.normal(size=(t, 17, 3)) * 0.3 + [0.1, -0.2, 3.0]).astype(np.float32)
    return Poses3D(
        keypoints_3d=k3,
        keypoints_2d=rng.uniform(0, 640, (t, 17, 2)).astype(np.float32),
        scores_2d=rng.uniform(0, 1, (t, 17)).astype(np.float32),
        valid=np.arange(t) % 3 != 2,
        detected=np.arange(t) % 2 == 0,
        fps=fps,
        meta=VideoMeta(width=640, height=480, fps=fps, num_frames=t, name="clip.mp4"),
        info={"model": "vp3d-243", "focal_px": np.float32(1000.5), "smoothing": {"cutoff_hz": 3.0},
              "receptive_field": np.int64(243)},
    )


# ---------------------------------------------------------------------------- npz


def test_npz_round_trip_is_exact(tmp_path):
    poses = make_poses()
    out = write_poses_npz(poses, tmp_path / "p.npz")
    back = read_poses_npz(out)
    for name in ("keypoints_3d", "keypoints_2d", "scores_2d", "valid", "detected"):
        np.testing.assert_array_equal(getattr(back, name), getattr(poses, name))
        assert getattr(back, name).dtype == getattr(poses, name).dtype
    assert back.fps == 30.0
    assert (back.meta.width, back.meta.height, back.meta.fps, back.meta.num_frames) == (640, 480, 30.0, 6)
    assert back.info == {"model": "vp3d-243", "focal_px": 1000.5, "smoothing": {"cutoff_hz": 3.0},
                         "receptive_field": 243}


def test_npz_loads_without_pickle_with_exact_keys(tmp_path):
    write_poses_npz(make_poses(t=4), tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz") as z:  # allow_pickle defaults to False
        assert sorted(z.files) == sorted(NPZ_KEYS)
        d = {k: z[k] for k in z.files}
    assert all(not a.dtype.hasobject for a in d.values())
    assert d["keypoints_3d"].shape == (4, 17, 3) and d["keypoints_3d"].dtype == np.float32
    assert d["keypoints_2d"].shape == (4, 17, 2) and d["keypoints_2d"].dtype == np.float32
    assert d["valid"].dtype == bool and d["valid"].tolist() == [True, True, False, True]
    assert d["detected"].tolist() == [True, False, True, False]
    assert d["fps"].shape == () and float(d["fps"]) == 30.0
    assert (int(d["width"]), int(d["height"])) == (640, 480)
    assert d["joint_names_3d"].tolist() == list(H36M_17.joint_names)
    assert d["joint_names_2d"].tolist() == list(COCO_17.joint_names)
    assert json.loads(str(d["info_json"]))["model"] == "vp3d-243"


def test_npz_missing_key_is_named(tmp_path):
    good = dict(np.load(write_poses_npz(make_poses(), tmp_path / "p.npz")))
    del good["valid"], good["fps"]
    np.savez(tmp_path / "bad.npz", **good)
    with pytest.raises(DataFormatError, match=r"bad\.npz.*missing keys \['valid', 'fps'\]"):
        read_poses_npz(tmp_path / "bad.npz")


def test_npz_wrong_shapes_and_bad_files(tmp_path):
    good = dict(np.load(write_poses_npz(make_poses(t=6), tmp_path / "p.npz")))
    np.savez(tmp_path / "a.npz", **{**good, "keypoints_2d": np.zeros((6, 17, 3), np.float32)})
    with pytest.raises(DataFormatError, match=r"keypoints_2d has shape \(6, 17, 3\), expected \(6, 17, 2\)"):
        read_poses_npz(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", **{**good, "keypoints_3d": np.zeros((6, 32, 3), np.float32)})
    with pytest.raises(DataFormatError, match=r"keypoints_3d has shape \(6, 32, 3\), expected \(T, 17, 3\)"):
        read_poses_npz(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", **{**good, "info_json": np.array({"x": 1}, dtype=object)})
    with pytest.raises(DataFormatError, match=r"c\.npz"):  # pickled entry refused, not executed
        read_poses_npz(tmp_path / "c.npz")
    (tmp_path / "d.npz").write_text("not a zip")
    with pytest.raises(DataFormatError, match=r"d\.npz"):
        read_poses_npz(tmp_path / "d.npz")
    with pytest.raises(DataFormatError, match="does not exist"):
        read_poses_npz(tmp_path / "missing.npz")


def test_writers_check_shapes(tmp_path):
    poses = make_poses(t=5)
    poses.valid = poses.valid[:4]
    with pytest.raises(DataFormatError, match=r"Poses3D\.valid has shape \(4,\), expected \(5,\)"):
        write_poses_npz(poses, tmp_path / "p.npz")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- json


def test_json_layout_and_rounded_values(tmp_path):
    poses = make_poses(t=5)
    poses.keypoints_3d[1, 2] = [1.23456789, -0.00004, 2.99996]
    poses.keypoints_3d[4, 0, 0] = np.nan
    poses.info["bad"] = np.array([1.0, np.nan])
    write_poses_json(poses, tmp_path / "p.json")
    doc = json.loads((tmp_path / "p.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert doc["format"] == JSON_FORMAT == "poselift-poses3d/1"
    assert (doc["fps"], doc["width"], doc["height"]) == (30.0, 640, 480)
    assert doc["units"] == "metres"
    assert doc["coordinate_system"] == "camera: x right, y down, z forward"
    assert doc["joint_names_3d"] == list(H36M_17.joint_names)
    assert doc["joint_names_2d"] == list(COCO_17.joint_names)
    assert doc["info"] == {"model": "vp3d-243", "focal_px": 1000.5, "smoothing": {"cutoff_hz": 3.0},
                           "receptive_field": 243, "bad": [1.0, None]}
    frames = doc["frames"]
    assert [f["frame"] for f in frames] == [0, 1, 2, 3, 4]
    assert [f["valid"] for f in frames] == [True, True, False, True, True]
    assert [f["detected"] for f in frames] == [True, False, True, False, True]
    # 0.1 mm, 0.01 px, 1e-4 score rounding, checked on hand-picked values
    assert frames[1]["keypoints_3d"][2] == pytest.approx([1.2346, -0.0, 3.0], abs=1e-9)
    assert frames[4]["keypoints_3d"][0][0] is None
    k3 = np.array([[[np.nan if v is None else v for v in j] for j in f["keypoints_3d"]] for f in frames])
    k2 = np.array([f["keypoints_2d"] for f in frames])
    sc = np.array([f["scores_2d"] for f in frames])
    assert k3.shape == (5, 17, 3) and k2.shape == (5, 17, 2) and sc.shape == (5, 17)
    np.testing.assert_allclose(k3, poses.keypoints_3d, atol=0.5e-4 + 1e-7)
    np.testing.assert_allclose(k2, poses.keypoints_2d, atol=0.005 + 1e-4)
    np.testing.assert_allclose(sc, poses.scores_2d, atol=0.5e-4 + 1e-7)
    assert np.abs(k2 * 100 - np.round(k2 * 100)).max() < 1e-6  # really rounded to 0.01 px


# ---------------------------------------------------------------------------- csv


def test_csv_header_rows_and_values(tmp_path):
    poses = make_poses(t=7, fps=25.0)
    write_poses_csv(poses, tmp_path / "p.csv")
    lines = (tmp_path / "p.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert len(header) == 4 + 17 * 3 + 17 * 3 == 106
    assert header[:8] == ["frame", "time_s", "valid", "detected", "pelvis_x", "pelvis_y", "pelvis_z", "right_hip_x"]
    assert header[4 + 51 - 3:4 + 51 + 3] == ["right_wrist_x", "right_wrist_y", "right_wrist_z",
                                             "nose_u", "nose_v", "nose_score"]
    assert header[-3:] == ["right_ankle_u", "right_ankle_v", "right_ankle_score"]
    assert len(lines) == 1 + 7
    assert lines[3].startswith("2,0.080000,0,1,")  # frame 2 at 25 fps: invalid, detected
    table = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    assert table.shape == (7, 106)
    np.testing.assert_array_equal(table[:, 0], np.arange(7))
    np.testing.assert_allclose(table[:, 1], np.arange(7) / 25.0, atol=1e-9)
    np.testing.assert_array_equal(table[:, 2].astype(bool), poses.valid)
    np.testing.assert_array_equal(table[:, 3].astype(bool), poses.detected)
    np.testing.assert_allclose(table[:, 4:55].reshape(7, 17, 3), poses.keypoints_3d, atol=0.5e-6 + 1e-7)
    uvs = table[:, 55:].reshape(7, 17, 3)
    np.testing.assert_allclose(uvs[..., :2], poses.keypoints_2d, atol=0.5e-3 + 1e-4)
    np.testing.assert_allclose(uvs[..., 2], poses.scores_2d, atol=0.5e-4 + 1e-7)
    assert header.index("left_knee_y") == 4 + 3 * H36M_17.index("left_knee") + 1
    assert table[5, header.index("left_knee_y")] == pytest.approx(poses.keypoints_3d[5, 5, 1], abs=1e-6)


# ---------------------------------------------------------------------------- trc


def test_trc_header_lines_are_exact(tmp_path):
    poses = make_poses(t=2, fps=25.0)
    poses.keypoints_3d[0, 0] = [0.1, -0.2, 3.0]
    write_trc(poses, tmp_path / "out.trc")
    lines = (tmp_path / "out.trc").read_text().split("\n")
    assert lines[0] == "PathFileType\t4\t(X/Y/Z)\tout.trc"
    assert lines[1] == "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames"
    assert lines[2] == "25\t25\t2\t17\tm\t25\t1\t2"
    assert lines[3] == ("Frame#\tTime\tPelvis\t\t\tRHip\t\t\tRKnee\t\t\tRAnkle\t\t\tLHip\t\t\tLKnee\t\t\t"
                        "LAnkle\t\t\tSpine\t\t\tThorax\t\t\tNose\t\t\tHead\t\t\tLShoulder\t\t\tLElbow\t\t\t"
                        "LWrist\t\t\tRShoulder\t\t\tRElbow\t\t\tRWrist\t\t")
    assert lines[4] == "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, 18))
    assert lines[5] == ""
    # camera (0.1, -0.2, 3.0) -> Y-up (0.1, 0.2, -3.0)
    assert lines[6].startswith("1\t0.000000\t0.100000\t0.200000\t-3.000000\t")
    assert lines[7].startswith("2\t0.040000\t")
    assert len(lines[6].split("\t")) == 2 + 51
    assert lines[8:] == [""]  # final newline only


def test_trc_read_back_is_y_up_and_mm_scales(tmp_path):
    poses = make_poses(t=9, fps=29.97)
    poses.keypoints_3d[3, 5] = np.nan  # a missing marker: empty cells, read as NaN
    write_trc(poses, tmp_path / "m.trc")
    names, data, rate = read_trc(tmp_path / "m.trc")
    assert names == list(MARKER_NAMES) and len(names) == 17
    assert rate == pytest.approx(29.97)
    expected = np.asarray(poses.keypoints_3d, np.float64) * [1, -1, -1]
    np.testing.assert_array_equal(camera_to_y_up(poses.keypoints_3d), expected)
    assert data.shape == (9, 17, 3)
    np.testing.assert_allclose(data, expected, atol=0.5e-6 + 1e-7)
    assert np.isnan(data[3, 5]).all() and np.isfinite(np.delete(data.reshape(-1, 3), 3 * 17 + 5, 0)).all()

    write_trc(poses, tmp_path / "mm.trc", units="mm")
    assert (tmp_path / "mm.trc").read_text().splitlines()[2].split("\t")[4] == "mm"
    _, data_mm, _ = read_trc(tmp_path / "mm.trc")
    np.testing.assert_allclose(data_mm, 1000 * expected, atol=0.5e-3 + 1e-4)

    with pytest.raises(ConfigError, match="units"):
        write_trc(poses, tmp_path / "cm.trc", units="cm")


def test_read_trc_errors_name_the_line(tmp_path):
    write_trc(make_poses(t=3), tmp_path / "a.trc")
    lines = (tmp_path / "a.trc").read_text().splitlines()
    cells = lines[7].split("\t")
    cells[5] = "1.0e"
    lines[7] = "\t".join(cells)
    (tmp_path / "b.trc").write_text("\n".join(lines))
    with pytest.raises(DataFormatError, match=r"b\.trc: line 8: expected numbers"):
        read_trc(tmp_path / "b.trc")
    (tmp_path / "c.trc").write_text("hello\n")
    with pytest.raises(DataFormatError, match=r"c\.trc: line 1: not a TRC file"):
        read_trc(tmp_path / "c.trc")


# -------------------------------------------------------------------- write errors

WRITERS = {
    "npz": write_poses_npz,
    "json": write_poses_json,
    "csv": write_poses_csv,
    "trc": write_trc,
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_unwritable_path_raises_output_error_and_leaves_nothing(tmp_path, fmt):
    poses = make_poses(t=3)
    (tmp_path / "a_file").write_text("x")
    target = tmp_path / "a_file" / f"out.{fmt}"  # parent is a file
    with pytest.raises(OutputError, match=rf"a_file/out\.{fmt}: cannot write"):
        WRITERS[fmt](poses, target)
    (tmp_path / f"dir.{fmt}").mkdir()  # target is a directory: fails at the final rename
    with pytest.raises(OutputError, match=rf"dir\.{fmt}: cannot write"):
        WRITERS[fmt](poses, tmp_path / f"dir.{fmt}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", f"dir.{fmt}"]
    assert list((tmp_path / f"dir.{fmt}").iterdir()) == []


def test_failed_write_keeps_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = write_poses_npz(make_poses(t=3, seed=1), tmp_path / "p.npz")
    before = target.read_bytes()

    def disk_full(f, **arrays):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(poses_files.np, "savez_compressed", disk_full)
    with pytest.raises(OutputError, match=r"p\.npz: cannot write the poses npz \(No space left on device\)"):
        write_poses_npz(make_poses(t=3, seed=2), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.npz"]
