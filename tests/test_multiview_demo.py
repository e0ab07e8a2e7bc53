"""Multi-view triangulation on real footage: Pose2Sim's Demo_SinglePerson (4 calibrated 60 fps cameras).

Needs the demo cached by ``python -m poselift.infer.demo_video --pose2sim`` (CI does it); skips otherwise.
"""

import dataclasses

import numpy as np
import pytest

from poselift.errors import PoseliftError
from poselift.infer.demo_video import pose2sim_demo_dir
from poselift.skeleton import COCO_17

FRAMES = 30


def _demo():
    try:
        return pose2sim_demo_dir(download=False)
    except PoseliftError:
        return None


@pytest.mark.skipif(_demo() is None, reason="Pose2Sim demo not cached (python -m poselift.infer.demo_video --pose2sim)")
def test_pose2sim_demo_triangulates_with_small_reprojection_error():
    from poselift.infer.multiview import triangulate_sequence
    from poselift.infer.sources.mediapipe_pose import MediaPipePose
    from poselift.io.calibration import read_calibration
    from poselift.io.video import probe_video, read_frames

    demo = _demo()
    calib = read_calibration(demo / "calibration" / "Calib.qca.txt")
    assert calib.names == ["cam01", "cam02", "cam03", "cam04"]
    detections = []
    with MediaPipePose() as detector:
        for name in calib.names:
            video = demo / "videos" / f"{name}.mp4"
            meta = dataclasses.replace(probe_video(video), num_frames=FRAMES)
            detections.append(detector.detect_frames(read_frames(video, 0, FRAMES), meta, progress=False))
    result = triangulate_sequence(calib, detections)
    report = result.report()
    assert result.num_frames == FRAMES
    assert result.triangulated.mean() > 0.95
    for cam in report["per_camera"]:  # kept views reproject within a few pixels on 1088x1920 frames
        assert cam["median_reprojection_error_px"] < 12, cam
    # plausible anatomy in metres (world frame is z-up): thigh, shank, upper arm lengths; nose above hips
    k = result.keypoints_3d
    idx = {n: i for i, n in enumerate(COCO_17.joint_names)}

    def length(a, b):
        return np.nanmedian(np.linalg.norm(k[:, idx[a]] - k[:, idx[b]], axis=-1))

    assert 0.33 < length("left_hip", "left_knee") < 0.50
    assert 0.30 < length("right_knee", "right_ankle") < 0.48
    assert 0.22 < length("left_shoulder", "left_elbow") < 0.36
    assert np.nanmedian(k[:, idx["nose"], 2] - k[:, idx["left_hip"], 2]) > 0.5
