"""The video pipeline end to end through the CLI: keypoint files, the demo video, and every bad input."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from poselift.cli.main import main
from poselift.data.coco_synthesis import coco_from_h36m
from poselift.data.synthetic import SyntheticConfig, generate_motion
from poselift.geometry.camera import world_to_camera
from poselift.infer.demo_video import SPORTS2D_VERSION, cache_dir
from poselift.infer.sources.csv_keypoints import write_keypoints_csv
from poselift.infer.trajectory import default_focal_length, pose_height
from poselift.infer.types import Detections, PersonDetection, VideoMeta
from poselift.metrics import mpjpe

W, H, FPS = 1280, 720, 50.0
OUTPUTS = ("poses3d.npz", "poses3d.json", "poses3d.csv", "poses3d.trc", "poses3d.bvh", "render.mp4", "viewer.html",
           "summary.json")


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """A synthetic walk seen by a pinhole camera, written as a keypoint CSV with two people in it."""
    positions, cameras = generate_motion(SyntheticConfig(subjects=("S2",), seconds_per_action=1.6,
                                                         cameras_per_subject=1, seed=11))
    cam = cameras["S2"][0]
    truth = world_to_camera(positions["S2"]["Walking"], cam.orientation, cam.translation).astype(np.float64)
    truth = truth - truth[:1, :1] + np.array([0.0, 0.2, 4.5])
    f = default_focal_length(W, H)
    coco = coco_from_h36m(truth)
    uv = (f * coco[..., :2] / coco[..., 2:] + np.array([W / 2, H / 2])).astype(np.float32)
    frames = []
    for t in range(len(uv)):
        people = [PersonDetection(uv[t], np.full(17, 0.9, np.float32))]
        if t % 3 == 0:  # a small bystander now and then: must not become the main person
            people.append(PersonDetection(uv[t] * 0.25 + 20, np.full(17, 0.6, np.float32)))
        if t in (30, 31, 32):  # the main person is missed for three frames: interpolated
            people = people[1:]
        frames.append(people)
    path = tmp_path_factory.mktemp("kps") / "walk.csv"
    write_keypoints_csv(Detections(frames, VideoMeta(W, H, FPS, len(uv), "walk"), "synthetic"), path)
    return path, truth, uv


def test_infer_from_a_keypoint_file_writes_every_output(walk, tmp_path, capsys):
    path, truth, uv = walk
    out = tmp_path / "out"
    height = float(np.median(pose_height(truth - truth[:, :1])))
    code = main(["infer", "--keypoints", str(path), "--fps", "50", "--size", f"{W}x{H}", "--height", f"{height:.4f}",
                 "--out", str(out), "--no-progress", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert summary["frames"] == len(uv) and summary["people_seen"] == 2
    assert summary["detection_rate"] == pytest.approx(1 - 2 / len(uv), abs=1e-4)  # frames 31, 32: nobody at all
    assert summary["main_person_detected_rate"] == pytest.approx(1 - 3 / len(uv), abs=1e-4)
    assert set(summary["stage_fps"]) >= {"read 2D", "track", "lift", "export", "render", "viewer"}

    data = np.load(out / "poses3d.npz")  # no pickles needed
    k3d = data["keypoints_3d"]
    assert k3d.shape == (len(uv), 17, 3) and k3d.dtype == np.float32 and float(data["fps"]) == FPS
    assert data["valid"].all() and not data["detected"][30:33].any() and data["detected"][[29, 33]].all()
    np.testing.assert_allclose(data["keypoints_2d"][[0, 29, 33]], uv[[0, 29, 33]], atol=1e-3)  # the main person
    np.testing.assert_allclose(data["keypoints_2d"][31], (uv[29] + uv[33]) / 2, atol=0.01)  # linear fill
    # metric camera-space 3D near the truth: pose (shipped model, ~70 mm) and depth (a few %)
    rel = k3d - k3d[:, :1]
    err = mpjpe(torch.from_numpy(rel).double(), torch.from_numpy(truth - truth[:, :1])).item()
    assert err < 0.11, err
    assert np.median(np.abs(k3d[:, 0, 2] - truth[:, 0, 2])) < 0.1 * 4.5
    assert np.median(pose_height(rel)) == pytest.approx(height, rel=1e-3)


def _demo_video() -> Path | None:
    path = cache_dir() / f"sports2d-{SPORTS2D_VERSION}" / "demo.mp4"
    return path if path.is_file() else None


@pytest.mark.skipif(_demo_video() is None, reason="demo video not cached (python -m poselift.infer.demo_video)")
def test_demo_video_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-progress", "--json", "--gif"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for name in OUTPUTS + ("render.gif",):
        assert (out / name).is_file(), name
    assert summary["frames"] == 230 and summary["detection_rate"] > 0.9
    data = np.load(out / "poses3d.npz")
    k3d, k2d, valid = data["keypoints_3d"], data["keypoints_2d"], data["valid"]
    # the main person is the man on the roof (frames 3-168); MediaPipe loses him upside down in his back flip
    # and jumps to a woman walking past, so the rest is another track and marked invalid (measured 72% valid)
    assert valid.mean() > 0.65 and valid[10:160].all()
    v = k3d[valid]
    # camera space, y down: ankles below knees below hips below the thorax below the head (upright person)
    for lower, upper in ((3, 2), (2, 1), (6, 5), (5, 4), (0, 8), (8, 10)):
        assert np.median(v[:, lower, 1] - v[:, upper, 1]) > 0.05, (lower, upper)
    assert 1.5 < np.median(v[:, 0, 2]) < 30  # in front of the camera, metres
    # the 3D projects back onto the 2D it came from (left wrist to COCO left wrist): left stays left
    f = summary["lifting"]["focal_length_px"]
    proj = f * v[..., :2] / v[..., 2:] + np.array([data["width"], data["height"]]) / 2
    left_err = np.linalg.norm(proj[:, 13] - k2d[valid][:, 9], axis=-1)
    swapped_err = np.linalg.norm(proj[:, 13] - k2d[valid][:, 10], axis=-1)
    assert np.median(left_err) < 0.5 * np.median(swapped_err) + 1, (np.median(left_err), np.median(swapped_err))


def _write_video(path, frames, fps=25.0):
    from poselift.io.video import VideoWriter
    h, w = frames[0].shape[:2]
    with VideoWriter(path, fps, (w, h)) as writer:
        for f in frames:
            writer.write(f)
    return path


def test_bad_inputs_give_one_error_and_write_nothing(walk, tmp_path, capsys):
    out = tmp_path / "out"
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    assert main(["infer", str(corrupt), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "corrupt.mp4" in err and err.count("\n") == 1

    assert main(["infer", str(tmp_path / "missing.mp4"), "--out", str(out), "--no-progress"]) == 2
    assert "missing.mp4" in capsys.readouterr().err

    import subprocess

    import imageio_ffmpeg
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    zero, audio = tmp_path / "zero_frames.mp4", tmp_path / "audio_only.mp4"
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=black:s=64x48:r=25",
                    "-frames:v", "0", "-c:v", "libx264", str(zero)], check=True)
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5",
                    str(audio)], check=True)
    for video in (zero, audio):
        assert main(["infer", str(video), "--out", str(out), "--no-progress"]) == 2
        assert video.name in capsys.readouterr().err

    blank = _write_video(tmp_path / "blank.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 8)
    assert main(["infer", str(blank), "--out", str(out), "--no-progress"]) == 2
    assert "no person" in capsys.readouterr().err.lower()

    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("frame,nose_x,nose_y\n0,1,2\n")
    assert main(["infer", "--keypoints", str(bad_csv), "--fps", "30", "--size", "640x480", "--out", str(out),
                 "--no-progress"]) == 2
    assert "bad.csv" in capsys.readouterr().err

    path, _, _ = walk
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["infer", "--keypoints", str(path), "--fps", "50", "--size", f"{W}x{H}",
                 "--out", str(blocker / "sub"), "--no-progress"]) == 2
    assert "a_file" in capsys.readouterr().err
    assert not out.exists()  # no failed run left anything behind, not even the output folder
