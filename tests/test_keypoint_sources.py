"""Precomputed 2D keypoint readers (poselift.infer.sources: coco_json, openpose, npz_keypoints, csv_keypoints, files).

Every file here is hand-made with values exactly representable in float32, so
the readers must return exactly these numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from poselift.errors import ConfigError, KeypointFormatError
from poselift.infer.sources.coco_json import read_coco_json
from poselift.infer.sources.csv_keypoints import CSV_COLUMNS, read_keypoints_csv, write_keypoints_csv
from poselift.infer.sources.files import detect_format, load_keypoints
from poselift.infer.sources.npz_keypoints import read_keypoints_npz
from poselift.infer.sources.openpose import BODY_25_NAMES, COCO_18_NAMES, openpose_to_coco17, read_openpose_folder
from poselift.infer.types import Detections, PersonDetection, VideoMeta
from poselift.skeleton import COCO_17

LEFT_WRIST = COCO_17.index("left_wrist")  # 9


def _kp(seed: int, n: int = 17) -> np.ndarray:
    """(n, 3) x, y, score; binary fractions, exact in float32."""
    j = np.arange(n)
    return np.stack([100.5 + 10 * j + seed, 50.25 + 3 * j + 2 * seed, (j % 16 + 1) / 16], axis=1)


def _assert_person(p: PersonDetection, kp: np.ndarray, scores=None) -> None:
    assert p.keypoints.shape == (17, 2) and p.keypoints.dtype == np.float32
    assert p.scores.shape == (17,) and p.scores.dtype == np.float32
    np.testing.assert_array_equal(p.keypoints, kp[:, :2])
    np.testing.assert_array_equal(p.scores, kp[:, 2] if scores is None else scores)


def _write_json(path, data):
    path.write_text(json.dumps(data))
    return path


# --------------------------------------------------------------------------- COCO results


def _results(tmp_path, name="results.json", ids=(5, 5, 7)):
    entries = [
        {"image_id": ids[0], "category_id": 1, "keypoints": _kp(0).ravel().tolist(), "score": 0.875,
         "bbox": [90.0, 40.0, 180.0, 60.0], "track_id": 4},
        {"image_id": ids[1], "category_id": 1, "keypoints": _kp(1).ravel().tolist(), "score": 0.5},
        {"image_id": ids[2], "category_id": 1, "keypoints": _kp(2).ravel().tolist(), "score": 0.25, "track_id": 4},
    ]
    return _write_json(tmp_path / name, entries)


def test_coco_results_frames_people_and_fields(tmp_path):
    det = read_coco_json(_results(tmp_path), width=640, height=480, fps=25)
    assert [len(f) for f in det.frames] == [2, 0, 1]  # image 6 had nobody
    a, b = det.frames[0]
    _assert_person(a, _kp(0))
    _assert_person(b, _kp(1))
    _assert_person(det.frames[2][0], _kp(2))
    np.testing.assert_array_equal(a.box, [90, 40, 270, 100])  # [x, y, w, h] -> x0, y0, x1, y1
    assert b.box is None
    assert (a.score, b.score) == (0.875, 0.5)
    assert (a.track_id, b.track_id, det.frames[2][0].track_id) == (4, None, 4)
    assert det.meta == VideoMeta(640, 480, 25.0, 3, "results.json")
    assert det.source.startswith("coco-json")


def test_coco_results_frame_offset_and_string_ids(tmp_path):
    det = read_coco_json(_results(tmp_path), width=640, height=480, fps=25, frame_offset=0)
    assert [len(f) for f in det.frames] == [0, 0, 0, 0, 0, 2, 0, 1]
    det = read_coco_json(_results(tmp_path, "s.json", ids=("frame_000011.jpg", "frame_000011.jpg", "000013")),
                         width=640, height=480, fps=25)
    assert [len(f) for f in det.frames] == [2, 0, 1]
    with pytest.raises(KeypointFormatError, match="below frame_offset 6"):
        read_coco_json(_results(tmp_path), width=640, height=480, fps=25, frame_offset=6)


def test_coco_results_video_meta_pads_and_rejects_longer_files(tmp_path):
    video = VideoMeta(1920, 1080, 30.0, 6, "clip.mp4")
    det = read_coco_json(_results(tmp_path), video_meta=video)
    assert det.meta is video and [len(f) for f in det.frames] == [2, 0, 1, 0, 0, 0]
    with pytest.raises(KeypointFormatError, match=r"frame 2 .*clip\.mp4 has only 2 frames"):
        read_coco_json(_results(tmp_path), video_meta=VideoMeta(1920, 1080, 30.0, 2, "clip.mp4"))


def test_coco_results_need_size_and_fps(tmp_path):
    with pytest.raises(ConfigError, match=r"results\.json: COCO results JSON keypoints do not record the video's width, height and fps; "
                                         r".*options width=\.\.\., height=\.\.\., fps=\.\.\.$"):
        read_coco_json(_results(tmp_path))
    with pytest.raises(ConfigError, match=r"fps; .*option fps=\.\.\.$"):
        read_coco_json(_results(tmp_path), width=640, height=480)


def test_coco_results_wrong_keypoint_count(tmp_path):
    entries = [{"image_id": 0, "keypoints": _kp(0).ravel().tolist()},
               {"image_id": 1, "keypoints": _kp(0).ravel().tolist()[:-3]}]
    path = _write_json(tmp_path / "short.json", entries)
    with pytest.raises(KeypointFormatError, match=r"short\.json: entry 1 has 48 keypoint values, expected 51 "
                                                  r"\(17 COCO keypoints x 3"):
        read_coco_json(path, width=1, height=1, fps=1)


def test_coco_json_other_layouts_are_rejected(tmp_path):
    with pytest.raises(KeypointFormatError, match="single OpenPose frame"):
        read_coco_json(_write_json(tmp_path / "x_keypoints.json", {"people": []}))
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(KeypointFormatError, match=r"bad\.json: not valid JSON"):
        read_coco_json(bad, width=1, height=1, fps=1)


# --------------------------------------------------------------------------- COCO annotations


def test_coco_annotations_images_order_visibility_and_size(tmp_path):
    vis = np.array([0, 1, 2] * 5 + [2, 1], dtype=float)
    kp_vis = _kp(3).copy()
    kp_vis[:, 2] = vis
    data = {
        "images": [{"id": 1, "file_name": "frame_10.jpg", "width": 640, "height": 360},
                   {"id": 2, "file_name": "frame_9.jpg", "width": 640, "height": 360},
                   {"id": 3, "file_name": "frame_11.jpg", "width": 640, "height": 360}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "keypoints": kp_vis.ravel().tolist(), "num_keypoints": 12,
             "bbox": [10, 20, 30, 40], "iscrowd": 0},
            {"image_id": 1, "category_id": 1, "keypoints": _kp(4).ravel().tolist(), "iscrowd": 1},  # crowd: skipped
            {"image_id": 3, "category_id": 2, "bbox": [0, 0, 5, 5]},  # another category: skipped
            {"image_id": 3, "category_id": 1, "keypoints": _kp(5).ravel().tolist(), "bbox": [1, 2, 3, 4]},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    det = read_coco_json(_write_json(tmp_path / "gt.json", data), fps=10)
    # natural file-name order: frame_9 (id 2), frame_10 (id 1), frame_11 (id 3)
    assert [len(f) for f in det.frames] == [0, 1, 1]
    p = det.frames[1][0]
    _assert_person(p, kp_vis, scores=(vis > 0).astype(np.float32))
    assert p.scores[0] == 0 and p.scores[1] == 1 and p.scores[2] == 1  # v = 0, 1, 2
    np.testing.assert_array_equal(p.box, [10, 20, 40, 60])
    _assert_person(det.frames[2][0], _kp(5), scores=np.ones(17, np.float32))
    assert (det.meta.width, det.meta.height, det.meta.fps, det.meta.num_frames) == (640, 360, 10.0, 3)
    assert det.source.startswith("coco-json annotations")

    data["annotations"].append({"image_id": 99, "keypoints": _kp(0).ravel().tolist()})
    with pytest.raises(KeypointFormatError, match=r"gt\.json: annotation 4 has image_id 99, which is not in 'images'"):
        read_coco_json(_write_json(tmp_path / "gt.json", data), fps=10)


# --------------------------------------------------------------------------- OpenPose


def test_openpose_name_mapping_indices():
    # COCO-17 order: nose, l/r eye, l/r ear, l/r shoulder, l/r elbow, l/r wrist, l/r hip, l/r knee, l/r ankle
    np.testing.assert_array_equal(openpose_to_coco17(BODY_25_NAMES),
                                  [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11])
    np.testing.assert_array_equal(openpose_to_coco17(COCO_18_NAMES),
                                  [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10])


def _openpose_folder(tmp_path, n_points: int, name="op"):
    folder = tmp_path / name
    folder.mkdir()
    a, b, c = _kp(0, n_points), _kp(1, n_points), _kp(2, n_points)
    a[3, 2] = 0.0  # RElbow not found
    frames = [[(a, [-1]), (b, 7)], [], [(c, [2])]]
    for t, people in enumerate(frames):
        _write_json(folder / f"clip_{t:012d}_keypoints.json",
                    {"version": 1.3, "people": [{"person_id": pid, "pose_keypoints_2d": kp.ravel().tolist(),
                                                 "face_keypoints_2d": []} for kp, pid in people]})
    return folder, (a, b, c)


@pytest.mark.parametrize("n_points, lwrist, relbow", [(25, 7, 3), (18, 7, 3)])
def test_openpose_body25_and_coco18(tmp_path, n_points, lwrist, relbow):
    folder, (a, b, c) = _openpose_folder(tmp_path, n_points)
    det = read_openpose_folder(folder, width=1280, height=720, fps=30)
    assert [len(f) for f in det.frames] == [2, 0, 1]
    names = BODY_25_NAMES if n_points == 25 else COCO_18_NAMES
    index = openpose_to_coco17(names)
    for p, src in zip(det.frames[0] + det.frames[2], (a, b, c)):
        _assert_person(p, src[index])
    p = det.frames[0][0]
    # left_wrist holds OpenPose's LWrist (index 7 in both models), right_elbow its (missing) RElbow
    assert names[lwrist] == "LWrist" and tuple(p.keypoints[LEFT_WRIST]) == (a[lwrist, 0], a[lwrist, 1])
    assert p.scores[COCO_17.index("right_elbow")] == 0.0 and names[relbow] == "RElbow"
    assert [q.track_id for q in det.frames[0] + det.frames[2]] == [None, 7, 2]
    assert det.meta == VideoMeta(1280, 720, 30.0, 3, "op")
    assert det.source == f"openpose op ({'BODY_25' if n_points == 25 else 'COCO-18'})"


def test_openpose_frame_numbers_and_gaps(tmp_path):
    folder, _ = _openpose_folder(tmp_path, 25)
    (folder / "clip_000000000001_keypoints.json").unlink()
    (folder / "clip_000000000000_keypoints.json").rename(folder / "clip_000000000010_keypoints.json")
    # frames 2 and 10 remain: frame index = number - 2
    det = read_openpose_folder(folder, width=1, height=1, fps=1)
    assert [len(f) for f in det.frames] == [1] + [0] * 7 + [2]


def test_openpose_wrong_point_count(tmp_path):
    folder, _ = _openpose_folder(tmp_path, 25)
    _write_json(folder / "clip_000000000001_keypoints.json",
                {"people": [{"pose_keypoints_2d": _kp(0, 19).ravel().tolist()}]})
    with pytest.raises(KeypointFormatError, match=r"clip_000000000001_keypoints\.json: person 0 has 57 "
                                                  r"pose_keypoints_2d values, expected 75 .* or 54"):
        read_openpose_folder(folder, width=1, height=1, fps=1)


def test_openpose_needs_size(tmp_path):
    folder, _ = _openpose_folder(tmp_path, 25)
    with pytest.raises(ConfigError, match="OpenPose keypoints do not record the video's width, height and fps"):
        read_openpose_folder(folder)


# --------------------------------------------------------------------------- npz


def _vp3d_npz(path, videos: dict, num_joints=17, layout="coco"):
    """Written the way VideoPose3D's prepare_data_2d_custom.py writes it."""
    positions = {name: {"custom": [arr.astype(np.float32)]} for name, arr in videos.items()}
    metadata = {"layout_name": layout, "num_joints": num_joints,
                "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]],
                "video_metadata": {name: {"w": 1000 + i, "h": 500 + i} for i, name in enumerate(videos)}}
    np.savez_compressed(path, positions_2d=positions, metadata=metadata)
    return path


def test_vp3d_custom_npz(tmp_path):
    arr = np.stack([_kp(t) for t in range(3)])  # (3, 17, 3): with confidences
    path = _vp3d_npz(tmp_path / "data_2d_custom_x.npz", {"a.mp4": arr})
    det = read_keypoints_npz(path, fps=50)
    assert [len(f) for f in det.frames] == [1, 1, 1]
    for t in range(3):
        _assert_person(det.frames[t][0], arr[t])
    assert det.meta == VideoMeta(1000, 500, 50.0, 3, "data_2d_custom_x.npz")
    assert det.source == "vp3d-npz data_2d_custom_x.npz [a.mp4]"

    two = _vp3d_npz(tmp_path / "two.npz", {"a.mp4": arr[..., :2], "b.mp4": arr[:2, :, :2]})
    with pytest.raises(ConfigError, match=r"holds 2 videos; choose one with video_name: \['a.mp4', 'b.mp4'\]"):
        read_keypoints_npz(two, fps=50)
    det = read_keypoints_npz(two, fps=50, video_name="b.mp4")
    assert det.num_frames == 2 and (det.meta.width, det.meta.height) == (1001, 501)
    _assert_person(det.frames[1][0], arr[1], scores=np.ones(17, np.float32))  # 2 channels: score 1


def test_vp3d_custom_npz_wrong_joint_count(tmp_path):
    path = _vp3d_npz(tmp_path / "j18.npz", {"a.mp4": np.zeros((2, 18, 2))}, num_joints=18)
    with pytest.raises(KeypointFormatError, match=r"j18\.npz: metadata says layout 'coco' with 18 joints, expected "
                                                  r"'coco' with 17"):
        read_keypoints_npz(path, fps=1)
    path = _vp3d_npz(tmp_path / "mismatch.npz", {"a.mp4": np.zeros((2, 18, 2))})
    with pytest.raises(KeypointFormatError, match=r"mismatch\.npz: .* has 18 joints but metadata says 17"):
        read_keypoints_npz(path, fps=1)


def test_poselift_npz_relift(tmp_path):
    kp = np.stack([_kp(t) for t in range(3)])
    xy = kp[..., :2].copy()
    xy[2, 4] = np.nan  # a joint without a position
    path = tmp_path / "poses3d.npz"
    np.savez(path, keypoints_2d=xy.astype(np.float32), scores_2d=kp[..., 2].astype(np.float32),
             detected=np.array([True, False, True]), width=np.int64(800), height=np.int64(600), fps=np.float64(24))
    det = read_keypoints_npz(path)
    assert [len(f) for f in det.frames] == [1, 0, 1]  # frame 1 was interpolated: read as nobody
    _assert_person(det.frames[0][0], kp[0])
    expect = kp[2].copy()
    expect[4] = 0.0
    _assert_person(det.frames[2][0], expect)
    assert det.meta == VideoMeta(800, 600, 24.0, 3, "poses3d.npz")

    np.savez(path, keypoints_2d=np.zeros((3, 16, 2), np.float32))
    with pytest.raises(KeypointFormatError, match=r"poses3d\.npz: keypoints_2d has shape \(3, 16, 2\), expected "
                                                  r"\(T, 17, 2\)"):
        read_keypoints_npz(path)
    np.savez(path, something=np.zeros(3))
    with pytest.raises(KeypointFormatError, match=r"found entries \['something'\]"):
        read_keypoints_npz(path)


def test_poselift_npz_written_by_write_poses_npz(tmp_path):
    from poselift.infer.types import Poses3D
    from poselift.io.poses_files import write_poses_npz

    kp = np.stack([_kp(t) for t in range(4)]).astype(np.float32)
    poses = Poses3D(keypoints_3d=np.zeros((4, 17, 3), np.float32), keypoints_2d=kp[..., :2], scores_2d=kp[..., 2],
                    valid=np.ones(4, bool), detected=np.array([True, True, False, True]), fps=30.0,
                    meta=VideoMeta(640, 360, 30.0, 4, "walk.mp4"))
    det = load_keypoints(write_poses_npz(poses, tmp_path / "walk_poses3d.npz"))
    assert [len(f) for f in det.frames] == [1, 1, 0, 1]
    _assert_person(det.frames[3][0], kp[3])
    assert det.meta == VideoMeta(640, 360, 30.0, 4, "walk_poses3d.npz")
    assert det.source == "poselift-npz walk_poses3d.npz"


# --------------------------------------------------------------------------- CSV


def _csv_text(rows: list[tuple], scores=True, person=True) -> str:
    cols = ["frame"] + (["person"] if person else []) + [
        f"{n}_{c}" for n in COCO_17.joint_names for c in (("x", "y", "score") if scores else ("x", "y"))]
    lines = [",".join(cols)]
    for frame, pid, kp in rows:
        cells = [str(frame)] + ([str(pid)] if person else [])
        if kp is None:
            cells += [""] * (len(cols) - len(cells))
        else:
            cells += [repr(float(v)) for v in (kp if scores else kp[:, :2]).ravel()]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def test_csv_read_exact(tmp_path):
    path = tmp_path / "kp.csv"
    path.write_text(_csv_text([(0, 3, _kp(0)), (0, "", _kp(1)), (2, 3, _kp(2)), (4, "", None)]))
    det = read_keypoints_csv(path, width=320, height=240, fps=12.5)
    assert [len(f) for f in det.frames] == [2, 0, 1, 0, 0]  # the marker row keeps trailing frame 4
    _assert_person(det.frames[0][0], _kp(0))
    _assert_person(det.frames[0][1], _kp(1))
    _assert_person(det.frames[2][0], _kp(2))
    assert [p.track_id for p in det.frames[0] + det.frames[2]] == [3, None, 3]
    assert det.meta == VideoMeta(320, 240, 12.5, 5, "kp.csv")


def test_csv_without_scores_or_person_and_with_empty_cells(tmp_path):
    path = tmp_path / "xy.csv"
    text = _csv_text([(1, None, _kp(0))], scores=False, person=False)
    header, row = text.splitlines()
    cells = row.split(",")
    cells[1 + 2 * LEFT_WRIST] = ""  # left_wrist_x empty: the joint is missing
    path.write_text(header + "\n" + ",".join(cells) + "\n")
    det = read_keypoints_csv(path, width=1, height=1, fps=1)
    assert [len(f) for f in det.frames] == [0, 1]
    expect_scores = np.ones(17, np.float32)
    expect_scores[LEFT_WRIST] = 0
    expect = _kp(0).copy()
    expect[LEFT_WRIST, :2] = 0
    _assert_person(det.frames[1][0], expect, scores=expect_scores)
    assert det.frames[1][0].track_id is None


def test_csv_missing_columns(tmp_path):
    path = tmp_path / "cols.csv"
    cols = [c for c in CSV_COLUMNS if not c.startswith("left_wrist")]
    path.write_text(",".join(cols) + "\n")
    with pytest.raises(KeypointFormatError, match=r"cols\.csv: missing columns left_wrist_x, left_wrist_y \("):
        read_keypoints_csv(path, width=1, height=1, fps=1)
    cols = [c for c in CSV_COLUMNS if c != "nose_score"]
    path.write_text(",".join(cols) + "\n")
    with pytest.raises(KeypointFormatError, match=r"missing columns nose_score \(give all 17"):
        read_keypoints_csv(path, width=1, height=1, fps=1)
    path.write_text(_csv_text([(0.5, 1, _kp(0))]))
    with pytest.raises(KeypointFormatError, match=r"cols\.csv: line 2, column frame: '0.5' is not an integer"):
        read_keypoints_csv(path, width=1, height=1, fps=1)


def test_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)

    def person(box, score, tid):
        return PersonDetection(rng.uniform(0, 1000, (17, 2)).astype(np.float32),
                               rng.uniform(0, 1, 17).astype(np.float32), box=box, score=score, track_id=tid)

    frames = [[person(np.array([1.5, 2.25, 300.125, 400.0], np.float32), 0.9123, 0), person(None, None, None)],
              [], [person(None, 0.5, 12)], [], []]
    det = Detections(frames, VideoMeta(1920, 1080, 29.97, 5, "v.mp4"), "test")
    path = write_keypoints_csv(det, tmp_path / "out" / "kp.csv")
    assert not list(path.parent.glob("*.tmp"))
    assert path.read_text().splitlines()[0].startswith("frame,person,nose_x,nose_y,nose_score,left_eye_x,")
    back = read_keypoints_csv(path, video_meta=det.meta)
    assert back.meta == det.meta and [len(f) for f in back.frames] == [2, 0, 1, 0, 0]
    back = read_keypoints_csv(path, width=1920, height=1080, fps=29.97)
    assert back.num_frames == 5  # trailing empty frames kept by marker rows
    for f0, f1 in zip(det.frames, back.frames):
        for p0, p1 in zip(f0, f1):
            np.testing.assert_array_equal(p1.keypoints, p0.keypoints)
            np.testing.assert_array_equal(p1.scores, p0.scores)
            assert (p1.box is None) == (p0.box is None) and (p0.box is None or np.array_equal(p1.box, p0.box))
            assert (p1.score, p1.track_id) == (p0.score, p0.track_id)


# --------------------------------------------------------------------------- dispatcher


def test_dispatcher_picks_reader(tmp_path):
    size = {"width": 64, "height": 48, "fps": 10}
    folder, _ = _openpose_folder(tmp_path, 18)
    csv_path = tmp_path / "k.csv"
    csv_path.write_text(_csv_text([(0, 1, _kp(0))]))
    npz = _vp3d_npz(tmp_path / "d.npz", {"v": np.zeros((2, 17, 2))})
    cases = {_results(tmp_path): ("coco-json", "coco-json results"), folder: ("openpose", "openpose op (COCO-18)"),
             npz: ("npz", "vp3d-npz"), csv_path: ("csv", "csv k.csv")}
    for path, (fmt, source) in cases.items():
        assert detect_format(path) == fmt
        det = load_keypoints(path, **size)
        assert det.source.startswith(source) and det.meta.width == 64
    assert load_keypoints(_results(tmp_path), frame_offset=0, **size).num_frames == 8
    assert load_keypoints(npz, video_name="v", fps=10).meta.width == 1000  # size from the file


def test_dispatcher_errors(tmp_path):
    other = tmp_path / "keypoints.txt"
    other.write_text("x")
    with pytest.raises(KeypointFormatError, match=r"keypoints\.txt: unknown keypoint file type '\.txt'"):
        load_keypoints(other)
    with pytest.raises(KeypointFormatError, match="does not exist"):
        load_keypoints(tmp_path / "missing.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KeypointFormatError, match="folder without OpenPose"):
        load_keypoints(tmp_path / "empty")
    csv_path = tmp_path / "k.csv"
    csv_path.write_text(_csv_text([(0, 1, _kp(0))]))
    with pytest.raises(ConfigError, match="video_name option only applies to .npz"):
        load_keypoints(csv_path, video_name="a", width=1, height=1, fps=1)
    with pytest.raises(ConfigError, match="option fps should be positive"):
        load_keypoints(csv_path, width=1, height=1, fps=0)
