"""People over time (poselift.infer.tracking): identities, main person, gap filling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from poselift.errors import ConfigError, KeypointFormatError, NoPersonError
from poselift.infer.tracking import (
    PersonTrack,
    assign,
    main_track,
    select_main_person,
    to_track2d,
    track_people,
)
from poselift.infer.types import Detections, PersonDetection, VideoMeta

# A standing person in COCO-17 order, in units of their height, centred on the hips' midpoint.
_TEMPLATE = np.array([
    [0.00, -0.45], [0.02, -0.47], [-0.02, -0.47], [0.05, -0.46], [-0.05, -0.46],  # face
    [0.12, -0.32], [-0.12, -0.32], [0.15, -0.15], [-0.15, -0.15], [0.16, 0.00], [-0.16, 0.00],  # arms
    [0.08, 0.00], [-0.08, 0.00], [0.08, 0.25], [-0.08, 0.25], [0.08, 0.50], [-0.08, 0.50],  # legs
])


def _person(x: float, y: float, height: float, score: float = 0.9, track_id: int | None = None) -> PersonDetection:
    kp = (np.array([x, y]) + height * _TEMPLATE).astype(np.float32)
    return PersonDetection(keypoints=kp, scores=np.full(17, score, np.float32), track_id=track_id)


def _detections(frames: list[list[PersonDetection]], name: str = "clip.mp4") -> Detections:
    meta = VideoMeta(width=1000, height=800, fps=30.0, num_frames=len(frames), name=name)
    return Detections(frames=frames, meta=meta, source="test")


def _centre_x(track: PersonTrack) -> np.ndarray:
    return np.array([d.keypoints[11:13, 0].mean() for d in track.detections])


# --------------------------------------------------------------------------- assignment


def test_assign_is_optimal_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        rows, cols = (int(v) for v in rng.integers(1, 6, size=2))
        cost = rng.random((rows, cols)) if rng.random() < 0.5 else rng.integers(0, 4, (rows, cols)).astype(float)
        pairs = assign(cost)
        assert len(pairs) == min(rows, cols)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        if rows <= cols:
            best = min(sum(cost[i, p[i]] for i in range(rows)) for p in itertools.permutations(range(cols), rows))
        else:
            best = min(sum(cost[p[j], j] for j in range(cols)) for p in itertools.permutations(range(rows), cols))
        assert sum(cost[i, j] for i, j in pairs) == pytest.approx(best, abs=1e-12)


def test_assign_beats_greedy_by_hand():
    # Greedy best-first takes (0, 0) = 1 and is left with (1, 1) = 100; the optimum is 2 + 2.
    assert assign(np.array([[1.0, 2.0], [2.0, 100.0]])) == [(0, 1), (1, 0)]
    assert assign(np.zeros((0, 3))) == []
    assert assign(np.array([[5.0], [1.0], [3.0]])) == [(1, 0)]


# --------------------------------------------------------------------------- identities


def test_people_crossing_keep_their_identity():
    # A walks right (x = 100 + 10 t), B walks left (x = 505 - 10 t); they pass each other between
    # frames 20 and 21, where each is nearer to the other's last position than to its own:
    # only a tracker that predicts motion keeps them apart.
    xa = lambda t: 100.0 + 10 * t  # noqa: E731
    xb = lambda t: 505.0 - 10 * t  # noqa: E731
    assert abs(xa(21) - xb(20)) < abs(xa(21) - xa(20))
    rng = np.random.default_rng(3)
    frames = []
    for t in range(41):
        people = [_person(xa(t), 500, 300), _person(xb(t), 505, 290)]
        rng.shuffle(people)
        frames.append(people)
    tracks = track_people(_detections(frames))
    assert len(tracks) == 2
    assert [tr.num_detections for tr in tracks] == [41, 41]
    assert [tr.track_id for tr in tracks] == [0, 1]
    xs = [_centre_x(tr) for tr in tracks]
    increasing = [bool(np.all(np.diff(x) > 0)) for x in xs]
    decreasing = [bool(np.all(np.diff(x) < 0)) for x in xs]
    assert sorted(increasing) == [False, True] and sorted(decreasing) == [False, True]
    a = xs[increasing.index(True)]
    np.testing.assert_allclose(a, [xa(t) for t in range(41)], atol=1e-3)
    np.testing.assert_allclose(xs[decreasing.index(True)], [xb(t) for t in range(41)], atol=1e-3)


def test_person_missing_for_a_few_frames_keeps_identity():
    frames = [[_person(50.0 + 4 * t, 400, 300)] if not 10 <= t <= 12 else [] for t in range(25)]
    tracks = track_people(_detections(frames), max_gap=3)
    assert len(tracks) == 1
    assert tracks[0].frames == [t for t in range(25) if not 10 <= t <= 12]


def test_gap_longer_than_max_gap_starts_a_new_track():
    frames = [[_person(50.0 + 4 * t, 400, 300)] if not 10 <= t <= 13 else [] for t in range(25)]
    tracks = track_people(_detections(frames), max_gap=3)  # 4 missed frames
    assert [(tr.track_id, tr.first_frame, tr.last_frame) for tr in tracks] == [(0, 0, 9), (1, 14, 24)]


def test_far_detection_is_not_linked():
    # A jump of 0.6 person heights in one frame exceeds max_distance 0.5: a different person.
    frames = [[_person(100, 400, 300)], [_person(100 + 0.6 * 300, 400, 300)]]
    assert len(track_people(_detections(frames))) == 2
    assert len(track_people(_detections(frames), max_distance=0.7)) == 1


def test_source_track_ids_are_respected():
    # The source says ids 0 and 1 swap places at frame 3 (its call, not ours), and an id-less
    # third person gets an id no source id uses.
    frames = []
    for t in range(6):
        left, right = (0, 1) if t < 3 else (1, 0)
        frames.append([_person(100 + t, 400, 300, track_id=left), _person(600 + t, 400, 300, track_id=right),
                       _person(300, 100, 150)])
    tracks = {tr.track_id: tr for tr in track_people(_detections(frames))}
    assert sorted(tracks) == [0, 1, 2]
    assert tracks[0].from_source and tracks[1].from_source and not tracks[2].from_source
    np.testing.assert_allclose(_centre_x(tracks[0]), [100, 101, 102, 603, 604, 605])
    np.testing.assert_allclose(_centre_x(tracks[1]), [600, 601, 602, 103, 104, 105])
    assert tracks[2].frames == list(range(6))


def test_bad_keypoint_shape_is_reported():
    det = PersonDetection(keypoints=np.zeros((33, 2), np.float32), scores=np.zeros(33, np.float32))
    with pytest.raises(KeypointFormatError, match=r"frame 1 .*\(17, 2\)"):
        track_people(_detections([[], [det]]))


# --------------------------------------------------------------------------- main person


def test_main_person_is_the_largest_most_present_one():
    frames = []
    for t in range(30):
        people = [_person(200 + t, 400, 300), _person(700, 400, 100)]
        if 10 <= t < 13:  # a third, bigger person passes by briefly
            people.append(_person(500, 400, 600))
        frames.append(people)
    dets = _detections(frames)
    tracks = track_people(dets)
    assert len(tracks) == 3
    main = select_main_person(tracks, dets.meta)
    assert main.num_detections == 30 and _centre_x(main)[0] == pytest.approx(200)
    # presence = frames x box area x mean score: 30 x (0.32*300 x 0.97*300) x 0.9 for the main person
    assert main.presence() == pytest.approx(30 * (0.32 * 300) * (0.97 * 300) * 0.9, rel=1e-5)
    other = next(tr for tr in tracks if tr.num_detections == 30 and tr is not main)
    assert select_main_person(tracks, dets.meta, person=other.track_id) is other
    with pytest.raises(ConfigError, match="person 9 .*clip.mp4.*track ids are"):
        select_main_person(tracks, dets.meta, person=9)

    track = main_track(dets)
    assert track.num_people == 3
    assert track.track_id == main.track_id
    np.testing.assert_allclose(track.keypoints[:, 11:13, 0].mean(axis=1), 200 + np.arange(30), atol=1e-3)


def test_no_person_raises():
    with pytest.raises(NoPersonError, match=r"no person found in test \(clip.mp4\): none of the 4 frames"):
        main_track(_detections([[], [], [], []]))
    with pytest.raises(NoPersonError):
        select_main_person([], VideoMeta(10, 10, 30.0, 0))


# --------------------------------------------------------------------------- gap filling


def test_gap_filling_values_and_flags():
    # Detected at frames 1..9 and 13..22; missed 0, 10-12, 23-24. Between frames 9 and 13
    # the person also moves vertically, so the interpolation is not a plain copy.
    pos = {t: (50.0 + 4 * t, 400.0) for t in range(1, 10)}
    pos.update({t: (50.0 + 4 * t, 440.0) for t in range(13, 23)})
    frames = [[_person(*pos[t], 300)] if t in pos else [] for t in range(25)]
    dets = _detections(frames)
    track = main_track(dets, max_gap=3)
    assert track.keypoints.shape == (25, 17, 2) and track.keypoints.dtype == np.float32
    assert track.scores.shape == (25, 17)
    expected_detected = np.array([t in pos for t in range(25)])
    np.testing.assert_array_equal(track.detected, expected_detected)
    np.testing.assert_array_equal(track.valid, [0 < t < 23 for t in range(25)])
    # interpolated frames: (t - 9) / 4 of the way from frame 9 to frame 13
    for t in (10, 11, 12):
        w = (t - 9) / 4
        expected = (1 - w) * (np.array(pos[9]) + 300 * _TEMPLATE) + w * (np.array(pos[13]) + 300 * _TEMPLATE)
        np.testing.assert_allclose(track.keypoints[t], expected, atol=1e-4)
        np.testing.assert_allclose(track.keypoints[t, 11:13, 1].mean(), 400 + 40 * w, atol=1e-4)
    # held ends
    np.testing.assert_array_equal(track.keypoints[0], frames[1][0].keypoints)
    np.testing.assert_array_equal(track.keypoints[23], frames[22][0].keypoints)
    np.testing.assert_array_equal(track.keypoints[24], frames[22][0].keypoints)
    # confidences carried where detected, 0 elsewhere
    np.testing.assert_allclose(track.scores[expected_detected], 0.9)
    np.testing.assert_array_equal(track.scores[~expected_detected], 0.0)
    np.testing.assert_array_equal(track.keypoints[5], frames[5][0].keypoints)
    assert track.meta is dets.meta and track.source == "test" and track.num_people == 1


def test_long_gap_is_interpolated_but_invalid():
    dets = _detections([[_person(100, 400, 300)]] + [[] for _ in range(5)] + [[_person(160, 400, 300)]])
    tr = PersonTrack(0, frames=[0, 6], detections=[dets.frames[0][0], dets.frames[6][0]])
    out = to_track2d(tr, dets, max_gap=4)  # 5 missed frames
    np.testing.assert_array_equal(out.detected, [1, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(out.valid, [1, 0, 0, 0, 0, 0, 1])
    np.testing.assert_allclose(out.keypoints[:, 11:13, 0].mean(axis=1), 100 + 10 * np.arange(7), atol=1e-4)
    assert to_track2d(tr, dets, max_gap=5).valid.all()


def test_low_confidence_joints_are_interpolated_within_detected_frames():
    # Left wrist (9) moves right by 10 px a frame; at frames 3 and 4 it is detected with score 0.1
    # at a wrong place, at frame 0 with score 0; the right knee (14) is doubtful for 5 frames in a
    # row (longer than max_gap=3) and keeps the detector's values there.
    frames = []
    for t in range(8):
        det = _person(300, 400, 300)
        det.keypoints[9] = (200 + 10 * t, 380)
        if t in (0, 3, 4):
            det.keypoints[9] = (0, 0)
            det.scores[9] = 0.0 if t == 0 else 0.1
        if 1 <= t <= 5:
            det.keypoints[14] += (50, 0)
            det.scores[14] = 0.2
        frames.append([det])
    track = main_track(_detections(frames), max_gap=3, min_score=0.3)
    np.testing.assert_array_equal(track.detected, True)
    np.testing.assert_array_equal(track.valid, True)
    np.testing.assert_allclose(track.keypoints[3, 9], [230, 380], atol=1e-4)
    np.testing.assert_allclose(track.keypoints[4, 9], [240, 380], atol=1e-4)
    np.testing.assert_allclose(track.keypoints[0, 9], [210, 380], atol=1e-4)  # held from frame 1
    np.testing.assert_allclose(track.keypoints[:, 9, 0][[1, 2, 5, 6, 7]], [210, 220, 250, 260, 270])
    np.testing.assert_allclose(track.scores[:, 9], [0, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9], atol=1e-6)
    np.testing.assert_array_equal(track.keypoints[:, 14], np.stack([f[0].keypoints[14] for f in frames]))
    # other joints untouched
    np.testing.assert_array_equal(track.keypoints[:, 5], np.stack([f[0].keypoints[5] for f in frames]))
