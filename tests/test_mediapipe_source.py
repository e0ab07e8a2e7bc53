"""The built-in 2D detector (poselift.infer.sources.mediapipe_pose) and the MediaPipe-33 skeleton."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from poselift.errors import ConfigError, KeypointFormatError, VideoError
from poselift.infer.sources.mediapipe_pose import MediaPipePose, landmarks_to_coco
from poselift.infer.types import VideoMeta
from poselift.io.video import probe_video, read_frames
from poselift.skeleton import COCO_17, MEDIAPIPE_33, SKELETONS, conversion_matrix, convert_keypoints, get_skeleton

# Sports2D's demo clip (1768x994, 30 fps, 230 frames), from `pip download --no-deps sports2d==0.8.34`.
_DEMO_CANDIDATES = [
    Path("/tmp/dl/Sports2D/Demo/demo.mp4"),
    Path.home() / ".cache" / "poselift" / "sports2d-0.8.34" / "demo.mp4",
]

# COCO-17 joints as MediaPipe landmark indices, from MediaPipe's documented landmark list.
_COCO_FROM_MP = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]


def _mirror(name: str) -> str:
    for a, b in (("left", "right"), ("right", "left")):
        if name.startswith(a + "_"):
            return b + name[len(a):]
        if name.endswith("_" + a):  # mouth_left / mouth_right
            return name[: -len(a)] + b
    return name


# --------------------------------------------------------------------------- skeleton


def test_mediapipe33_skeleton_structure():
    sk = MEDIAPIPE_33
    assert get_skeleton("mediapipe33") is sk and SKELETONS["mediapipe33"] is sk
    assert sk.num_joints == 33 and sk.root == 0
    assert sk.joint_names[11] == "left_shoulder" and sk.joint_names[24] == "right_hip"
    assert sk.joint_names[9] == "mouth_left" and sk.joint_names[32] == "right_foot_index"
    # The flip swaps every sided landmark with its mirror, and nothing else.
    perm = sk.flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(33))
    assert [sk.joint_names[perm[j]] for j in range(33)] == [_mirror(n) for n in sk.joint_names]
    assert len(sk.bones) == 32
    # A tree: every joint reaches the root without a cycle.
    for j in range(33):
        seen = set()
        while j != -1:
            assert j not in seen
            seen.add(j)
            j = sk.parents[j]
    # Hand-checked anatomy: elbow on shoulder, fingers on wrists, heel and toe on the ankle.
    assert sk.parents[13] == 11 and sk.parents[17] == 15 and sk.parents[21] == 15
    assert sk.parents[29] == 27 and sk.parents[31] == 27 and sk.parents[7] == 3
    # Keeping only the COCO joints gives COCO_17's tree and sides exactly.
    sub = sk.subset(_COCO_FROM_MP, "coco")
    assert sub.joint_names == COCO_17.joint_names
    assert sub.parents == COCO_17.parents
    assert sub.joints_left == COCO_17.joints_left and sub.joints_right == COCO_17.joints_right


def test_mediapipe33_to_coco_conversion_is_a_selection():
    w = conversion_matrix(MEDIAPIPE_33, COCO_17)
    expected = np.zeros((17, 33))
    expected[np.arange(17), _COCO_FROM_MP] = 1.0
    np.testing.assert_array_equal(w, expected)
    x = np.random.default_rng(0).random((4, 33, 3))
    np.testing.assert_array_equal(convert_keypoints(x, MEDIAPIPE_33, COCO_17), x[:, _COCO_FROM_MP])


# --------------------------------------------------------------------------- landmark mapping


def _landmarks(n: int = 33) -> list[SimpleNamespace]:
    # Distinct values per landmark, so a wrong index shows: x = (i + 1) / 40, y = 1 - i / 40.
    return [SimpleNamespace(x=(i + 1) / 40, y=1 - i / 40, z=0.0, visibility=i / 32) for i in range(n)]


def test_landmarks_to_coco_exact():
    lms = _landmarks()
    lms[25].visibility = 1.3  # left knee: out of range values are clipped
    lms[26].visibility = -0.2  # right knee
    det = landmarks_to_coco(lms, width=800, height=600)
    assert det.keypoints.shape == (17, 2) and det.keypoints.dtype == np.float32
    assert det.scores.shape == (17,) and det.scores.dtype == np.float32
    assert det.track_id is None and det.box is None
    for c, m in enumerate(_COCO_FROM_MP):
        np.testing.assert_allclose(det.keypoints[c], [(m + 1) / 40 * 800, (1 - m / 40) * 600], rtol=1e-6)
    # by hand: COCO left_shoulder (5) is landmark 11, right_ankle (16) landmark 28
    np.testing.assert_allclose(det.keypoints[5], [240.0, 435.0], rtol=1e-6)
    np.testing.assert_allclose(det.keypoints[16], [580.0, 180.0], rtol=1e-6)
    expected_scores = np.array(_COCO_FROM_MP) / 32
    expected_scores[13], expected_scores[14] = 1.0, 0.0
    np.testing.assert_allclose(det.scores, expected_scores, rtol=1e-6)

    with pytest.raises(KeypointFormatError, match="33"):
        landmarks_to_coco(_landmarks(25), 800, 600)


# --------------------------------------------------------------------------- options and errors


@pytest.mark.parametrize("complexity", [0, 2])
def test_downloading_model_complexities_are_refused(complexity):
    with pytest.raises(ConfigError, match=rf"model_complexity={complexity} .*download.*offline"):
        MediaPipePose(model_complexity=complexity)


def test_bad_options_and_inputs():
    with pytest.raises(ConfigError, match="min_detection_confidence"):
        MediaPipePose(min_detection_confidence=1.5)
    with pytest.raises(ConfigError, match="min_tracking_confidence"):
        MediaPipePose(min_tracking_confidence=-0.1)
    det = MediaPipePose()
    assert det.source == "mediapipe (model_complexity=1)"
    with pytest.raises(VideoError, match="clip.mp4"):
        det.detect_video("/nonexistent/clip.mp4", progress=False)
    meta = VideoMeta(width=64, height=48, fps=30.0, num_frames=1, name="x.mp4")
    with det:
        with pytest.raises(VideoError, match=r"x.mp4: frame 0 .*\(48, 64, 3\)"):
            det.detect_frames([np.zeros((48, 64), np.uint8)], meta, progress=False)
    assert det._graph is None  # closed by the context manager


def test_blank_frames_have_nobody():
    meta = VideoMeta(width=96, height=64, fps=30.0, num_frames=5)
    with MediaPipePose() as det:
        out = det.detect_frames((np.full((64, 96, 3), 128, np.uint8) for _ in range(3)), meta, progress=False)
    assert out.frames == [[], [], []]
    assert out.meta.num_frames == 3 and out.meta.width == 96  # the count actually read


# --------------------------------------------------------------------------- real video


@pytest.fixture(scope="module")
def demo_frames():
    path = next((p for p in _DEMO_CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.skip("Sports2D demo video not available (pip download --no-deps sports2d==0.8.34)")
    return probe_video(path), list(read_frames(path, 0, 40))


def test_demo_video_person_sides_and_proportions(demo_frames):
    meta, clip = demo_frames
    assert (meta.width, meta.height, meta.fps, meta.num_frames) == (1768, 994, 30.0, 230)
    with MediaPipePose() as det:
        out = det.detect_frames(clip, meta, progress=False)
    assert out.num_frames == 40 and out.meta.num_frames == 40
    # The person detector needs a few frames on this backlit start (then the landmark model tracks him).
    found = [f[0] for f in out.frames if f]
    assert len(found) >= 35 and all(out.frames[10:])
    assert all(len(f) <= 1 for f in out.frames)
    # The landmarks settle within a few frames of the first detection: check frames 10-39.
    kp = np.stack([f[0].keypoints for f in out.frames[10:]])  # (30, 17, 2)
    sc = np.stack([f[0].scores for f in out.frames[10:]])
    assert np.median(sc) > 0.8
    ok = sc > 0.5
    assert np.all((kp[..., 0][ok] >= 0) & (kp[..., 0][ok] < 1768) & (kp[..., 1][ok] >= 0) & (kp[..., 1][ok] < 994))
    # The man standing on the roof, left of centre, upper half of the frame.
    assert np.all((kp[:, 11:13, 0].mean(axis=1) > 450) & (kp[:, 11:13, 0].mean(axis=1) < 850))
    assert np.all(kp[:, 15:17, 1].mean(axis=1) < 500)  # even his feet are above the middle
    # In frames 0-39 he faces the camera (checked by eye on frames 10, 25 and 39: face and the print
    # on his T-shirt's chest towards us), so his left side is on the image's right: larger x.
    # (MediaPipe's landmarks, like COCO's, name the person's sides, not the image's.)
    assert np.mean(kp[:, 5, 0] > kp[:, 6, 0]) >= 0.9  # shoulders
    assert np.mean(kp[:, 11, 0] > kp[:, 12, 0]) >= 0.9  # hips
    # Upright proportions: nose above shoulders above hips above knees above ankles (y grows downwards).
    y = lambda a, b: kp[:, [a, b], 1].mean(axis=1)  # noqa: E731
    shoulders, hips, knees, ankles = y(5, 6), y(11, 12), y(13, 14), y(15, 16)
    assert np.all(kp[:, 0, 1] < shoulders) and np.all(shoulders < hips)
    assert np.all(hips < knees) and np.all(knees < ankles)
    torso, legs = np.median(hips - shoulders), np.median(ankles - hips)
    assert 0.4 < torso / legs < 1.2, (torso, legs)


def test_reused_detector_starts_each_video_afresh(demo_frames):
    meta, clip = demo_frames
    with MediaPipePose() as det:
        first = det.detect_frames(clip[10:18], meta, progress=False)
        second = det.detect_frames(clip[10:18], meta, progress=False)
    assert sum(map(bool, first.frames)) >= 5
    for a, b in zip(first.frames, second.frames):
        assert len(a) == len(b)
        for pa, pb in zip(a, b):
            np.testing.assert_array_equal(pa.keypoints, pb.keypoints)
            np.testing.assert_array_equal(pa.scores, pb.scores)
