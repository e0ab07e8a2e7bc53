"""People over time: identities across frames, the main person, and one gap-free 2D track.

A 2D source gives unordered people per frame (:class:`~poselift.infer.types.Detections`);
the lifter needs one person's keypoints in every frame. Three steps get there:

1. :func:`track_people` links detections frame to frame. Each track predicts
   where its person is now (constant velocity from its last detections, also
   across missed frames), and the detections of a frame are assigned to the
   tracks by an optimal (Hungarian) assignment on a cost that combines box
   overlap (1 - IoU) and the confidence-weighted mean keypoint distance divided
   by the person's size. Pairs farther apart than ``max_distance`` person sizes
   are never linked. A track survives ``max_gap`` missed frames; unmatched
   detections start new tracks. Identities given by the source
   (``PersonDetection.track_id``) are kept as they are.
2. :func:`select_main_person` picks the person that is most present and largest
   (sum over frames of box area times mean confidence), or the one the user names.
3. :func:`to_track2d` fills the frames where that person was missed by linear
   interpolation (and low-confidence joints of detected frames likewise, joint by
   joint), and holds the first/last detection before/after the track.

Prediction matters when people cross: two people passing each other between
two frames are each nearer to the other's last position than to their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poselift.errors import ConfigError, KeypointFormatError, NoPersonError
from poselift.infer.types import Detections, PersonDetection, Track2D, VideoMeta

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "DEFAULT_MAX_GAP",
    "DEFAULT_MIN_JOINT_SCORE",
    "PersonTrack",
    "assign",
    "main_track",
    "select_main_person",
    "to_track2d",
    "track_people",
]

#: Frames a person may be missed and keep their identity, and still be interpolated over (0.5 s at 30 fps).
DEFAULT_MAX_GAP = 15
#: Largest keypoint distance, in person sizes (larger side of the box), between a track's predicted
#: pose and a detection for the two to be linked.
DEFAULT_MAX_DISTANCE = 0.5
#: Joints of detected frames with a lower confidence are interpolated from the frames around them.
DEFAULT_MIN_JOINT_SCORE = 0.3

_NUM_JOINTS = 17
_INFEASIBLE = 1e6  # cost of a pair outside the gate: any feasible assignment beats one using it


@dataclass
class PersonTrack:
    """One person's detections, in frame order.

    ``frames[i]`` is the frame index of ``detections[i]``; frames are strictly increasing.
    ``track_id`` is the source's identity when it gave one, else a new id that no
    source identity uses.
    """

    track_id: int
    frames: list[int] = field(default_factory=list)
    detections: list[PersonDetection] = field(default_factory=list)
    from_source: bool = False  # track_id came from PersonDetection.track_id

    @property
    def num_detections(self) -> int:
        return len(self.frames)

    @property
    def first_frame(self) -> int:
        return self.frames[0]

    @property
    def last_frame(self) -> int:
        return self.frames[-1]

    def presence(self) -> float:
        """Sum over detected frames of box area (pixels²) times mean keypoint confidence."""
        total = 0.0
        for det in self.detections:
            x0, y0, x1, y1 = det.bounding_box().astype(np.float64)
            total += max(x1 - x0, 0.0) * max(y1 - y0, 0.0) * float(np.mean(det.scores))
        return total


# --------------------------------------------------------------------------- assignment


def assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one assignment of rows to columns (Hungarian method).

    ``cost`` is (R, C); returns ``min(R, C)`` (row, col) pairs sorted by row whose
    total cost is minimal. Runs the shortest-augmenting-path form with dual
    potentials, O(min(R, C)² max(R, C)): cheap for the handful of people per frame.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost matrix must be 2D, got shape {cost.shape}")
    if cost.shape[0] == 0 or cost.shape[1] == 0:
        return []
    transposed = cost.shape[0] > cost.shape[1]
    c = cost.T if transposed else cost  # rows <= columns from here on
    rows, cols = c.shape
    # Potentials: row_pot[i] + col_pot[j] <= c[i, j] for all pairs, with equality on matched pairs.
    row_pot = np.zeros(rows)
    col_pot = np.zeros(cols + 1)  # column `cols` is a virtual start column
    owner = np.full(cols + 1, -1)  # row matched to each column
    for r in range(rows):
        # Grow a shortest-path tree from the virtual column (holding row r) until it reaches a free column.
        owner[cols] = r
        current = cols
        slack = np.full(cols + 1, np.inf)  # reduced distance from the tree to each column
        came_from = np.full(cols + 1, cols)
        in_tree = np.zeros(cols + 1, dtype=bool)
        while True:
            in_tree[current] = True
            i = owner[current]
            reduced = c[i] - row_pot[i] - col_pot[:cols]
            better = ~in_tree[:cols] & (reduced < slack[:cols])
            slack[:cols][better] = reduced[better]
            came_from[:cols][better] = current
            candidates = np.where(in_tree[:cols], np.inf, slack[:cols])
            nxt = int(np.argmin(candidates))
            delta = candidates[nxt]
            # Shift potentials so the tree's edges stay tight and the nearest column becomes tight.
            tree_cols = np.flatnonzero(in_tree)
            row_pot[owner[tree_cols]] += delta
            col_pot[tree_cols] -= delta
            slack[:cols][~in_tree[:cols]] -= delta
            current = nxt
            if owner[current] == -1:
                break
        # Flip the matching along the path back to the virtual column.
        while current != cols:
            prev = came_from[current]
            owner[current] = owner[prev]
            current = prev
    pairs = [(int(owner[j]), j) for j in range(cols) if owner[j] != -1]
    if transposed:
        pairs = [(j, i) for i, j in pairs]
    return sorted(pairs)


# --------------------------------------------------------------------------- tracking


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _size(box: np.ndarray) -> float:
    # The larger box side: the height of an upright person, robust to lying or arms-out poses.
    return float(max(box[2] - box[0], box[3] - box[1], 1.0))


def _mean_offset(a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray) -> tuple[np.ndarray, float]:
    """Confidence-weighted mean of ``b - a`` over joints (2,), and the weighted mean distance."""
    w = np.minimum(wa, wb).astype(np.float64)
    diff = b.astype(np.float64) - a.astype(np.float64)
    if w.sum() <= 0:  # no joint confident in both: compare whole-pose centres
        offset = diff.mean(axis=0)
        return offset, float(np.hypot(*offset))
    offset = (w[:, None] * diff).sum(axis=0) / w.sum()
    dist = float((w * np.hypot(diff[:, 0], diff[:, 1])).sum() / w.sum())
    return offset, dist


class _LiveTrack:
    """A track's motion state while tracking: last pose, box and per-frame velocity (pixels/frame)."""

    def __init__(self, track: PersonTrack, frame: int, det: PersonDetection) -> None:
        self.track = track
        self.velocity = np.zeros(2)
        self._has_velocity = False
        self.frame = frame
        self.keypoints = det.keypoints.astype(np.float64)
        self.scores = det.scores.astype(np.float64)
        self.box = det.bounding_box().astype(np.float64)
        track.frames.append(frame)
        track.detections.append(det)

    def predict(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        shift = self.velocity * (frame - self.frame)
        return self.keypoints + shift, self.box + np.tile(shift, 2)

    def cost(self, frame: int, det: PersonDetection, max_distance: float) -> float:
        kp, box = self.predict(frame)
        det_box = det.bounding_box().astype(np.float64)
        _, dist = _mean_offset(kp, det.keypoints, self.scores, det.scores)
        norm = dist / (0.5 * (_size(box) + _size(det_box)))
        if norm > max_distance:
            return _INFEASIBLE
        return norm + (1.0 - _iou(box, det_box))

    def update(self, frame: int, det: PersonDetection) -> None:
        offset, _ = _mean_offset(self.keypoints, det.keypoints, self.scores, det.scores)
        velocity = offset / (frame - self.frame)
        # Average with the previous estimate: one noisy detection should not throw the prediction off.
        self.velocity = 0.5 * (self.velocity + velocity) if self._has_velocity else velocity
        self._has_velocity = True
        self.frame = frame
        self.keypoints = det.keypoints.astype(np.float64)
        self.scores = det.scores.astype(np.float64)
        self.box = det.bounding_box().astype(np.float64)
        self.track.frames.append(frame)
        self.track.detections.append(det)


def _check_detection(det: PersonDetection, frame: int, source: str) -> None:
    kp, sc = np.shape(det.keypoints), np.shape(det.scores)
    if kp != (_NUM_JOINTS, 2) or sc != (_NUM_JOINTS,):
        raise KeypointFormatError(
            f"{source}: frame {frame} has a person with keypoints of shape {kp} and scores of shape {sc}; "
            f"expected ({_NUM_JOINTS}, 2) and ({_NUM_JOINTS},) (COCO-17)"
        )


def track_people(
    detections: Detections,
    *,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    max_gap: int = DEFAULT_MAX_GAP,
) -> list[PersonTrack]:
    """Link the detections of every frame into one track per person.

    Detections carrying a ``track_id`` go to the track with that id (a second
    detection with the same id in one frame is tracked as if it had none);
    the others are matched to the tracker's own tracks. Returns the tracks
    sorted by first frame, then id.
    """
    if max_distance <= 0:
        raise ConfigError(f"max_distance must be > 0 person sizes, got {max_distance}")
    if max_gap < 0:
        raise ConfigError(f"max_gap must be >= 0 frames, got {max_gap}")
    source_ids = {
        int(det.track_id) for people in detections.frames for det in people if det.track_id is not None
    }
    next_id = 0

    def new_id() -> int:
        nonlocal next_id
        while next_id in source_ids:
            next_id += 1
        next_id += 1
        return next_id - 1

    by_source_id: dict[int, _LiveTrack] = {}
    live: list[_LiveTrack] = []  # tracker-made tracks still within max_gap of their last detection
    finished: list[PersonTrack] = []
    for t, people in enumerate(detections.frames):
        free: list[PersonDetection] = []
        seen_ids: set[int] = set()
        for det in people:
            _check_detection(det, t, detections.source)
            sid = None if det.track_id is None else int(det.track_id)
            if sid is None or sid in seen_ids:
                free.append(det)
                continue
            seen_ids.add(sid)
            if sid in by_source_id:
                by_source_id[sid].update(t, det)
            else:
                by_source_id[sid] = _LiveTrack(PersonTrack(sid, from_source=True), t, det)

        # Tracks missed for more than max_gap frames end here.
        finished.extend(lt.track for lt in live if t - lt.frame - 1 > max_gap)
        live = [lt for lt in live if t - lt.frame - 1 <= max_gap]

        cost = np.zeros((len(live), len(free)))
        for i, lt in enumerate(live):
            for j, det in enumerate(free):
                cost[i, j] = lt.cost(t, det, max_distance)
        matched_dets = set()
        for i, j in assign(cost):
            if cost[i, j] < _INFEASIBLE:
                live[i].update(t, free[j])
                matched_dets.add(j)
        for j, det in enumerate(free):
            if j not in matched_dets:
                live.append(_LiveTrack(PersonTrack(new_id()), t, det))

    tracks = finished + [lt.track for lt in live] + [lt.track for lt in by_source_id.values()]
    return sorted(tracks, key=lambda tr: (tr.first_frame, tr.track_id))


# --------------------------------------------------------------------------- main person


def select_main_person(tracks: list[PersonTrack], meta: VideoMeta, *, person: int | None = None) -> PersonTrack:
    """The main person: ``person`` (a track id) if given, else the largest :meth:`PersonTrack.presence`.

    Presence is the sum over frames of box area times mean confidence, so a
    person seen all along beats one seen large but briefly, and a confident
    detection beats a doubtful one.
    """
    where = f" in {meta.name}" if meta.name else ""
    if not tracks:
        raise NoPersonError(f"no person found{where}: no detections to choose from")
    if person is not None:
        for tr in tracks:
            if tr.track_id == person:
                return tr
        raise ConfigError(
            f"person {person} is not among the people found{where}; "
            f"track ids are {sorted(tr.track_id for tr in tracks)}"
        )
    # Ties (equal presence) go to the earliest track, which is first in the list.
    return max(tracks, key=lambda tr: tr.presence())


# --------------------------------------------------------------------------- gap filling


def _fill_low_confidence(kp: np.ndarray, sc: np.ndarray, frames: np.ndarray, min_score: float,
                         max_gap: int) -> np.ndarray:
    """Replace joints below ``min_score`` by interpolation over the frames where that joint is confident.

    kp (N, 17, 2), sc (N, 17) at the detected ``frames`` (N,). Inside the track, a joint is
    interpolated between the nearest confident frames before and after when these are at most
    ``max_gap + 1`` frames apart; before the first / after the last confident frame it holds that
    value when within ``max_gap`` frames. Otherwise the detector's own guess is kept.
    """
    out = kp.copy()
    for j in range(kp.shape[1]):
        ok = sc[:, j] >= min_score
        if ok.all() or not ok.any():
            continue
        good_t = frames[ok]
        bad = np.flatnonzero(~ok)
        bad_t = frames[bad]
        after = np.searchsorted(good_t, bad_t)  # index of the first confident frame after each bad frame
        prev_t = np.where(after > 0, good_t[np.maximum(after - 1, 0)], -np.inf)
        next_t = np.where(after < len(good_t), good_t[np.minimum(after, len(good_t) - 1)], np.inf)
        inside = np.isfinite(prev_t) & np.isfinite(next_t)
        near = np.where(inside, next_t - prev_t <= max_gap + 1,
                        np.minimum(bad_t - prev_t, next_t - bad_t) <= max_gap)
        fill = bad[near]
        for c in range(2):
            out[fill, j, c] = np.interp(frames[fill], good_t, kp[ok, j, c])
    return out


def to_track2d(
    track: PersonTrack,
    detections: Detections,
    *,
    max_gap: int = DEFAULT_MAX_GAP,
    min_score: float = DEFAULT_MIN_JOINT_SCORE,
    num_people: int = 1,
) -> Track2D:
    """One person's keypoints in every frame of the video.

    Returns a :class:`Track2D` with keypoints (T, 17, 2) and scores (T, 17) for
    ``T = detections.num_frames``:

    * detected frames: the detection, with joints scoring below ``min_score``
      interpolated from that joint's confident frames (scores kept as detected);
      ``detected`` and ``valid`` True;
    * missed frames between two detections: each joint linearly interpolated,
      scores 0, ``detected`` False, ``valid`` True when the gap is at most
      ``max_gap`` frames, else False;
    * frames before the first / after the last detection: that detection held,
      scores 0, ``detected`` and ``valid`` False.
    """
    if max_gap < 0:
        raise ConfigError(f"max_gap must be >= 0 frames, got {max_gap}")
    if track.num_detections == 0:
        raise NoPersonError(f"no person found in {detections.source}: track {track.track_id} has no detections")
    num_frames = detections.num_frames
    frames = np.asarray(track.frames, dtype=np.int64)
    if np.any(np.diff(frames) <= 0) or frames[0] < 0 or frames[-1] >= num_frames:
        raise ValueError(f"track {track.track_id}: frames must be increasing within [0, {num_frames}), "
                         f"got {frames.tolist()}")
    kp = np.stack([d.keypoints for d in track.detections]).astype(np.float64)
    sc = np.stack([d.scores for d in track.detections]).astype(np.float32)
    kp = _fill_low_confidence(kp, sc, frames, min_score, max_gap)

    t_all = np.arange(num_frames)
    out_kp = np.empty((num_frames, _NUM_JOINTS, 2))
    for j in range(_NUM_JOINTS):
        for c in range(2):
            # np.interp holds the end values outside [first, last]: exactly the hold we want there.
            out_kp[:, j, c] = np.interp(t_all, frames, kp[:, j, c])
    out_kp[frames] = kp  # detected frames exactly as filled, no round trip through interp
    out_sc = np.zeros((num_frames, _NUM_JOINTS), dtype=np.float32)
    out_sc[frames] = sc
    detected = np.zeros(num_frames, dtype=bool)
    detected[frames] = True

    valid = detected.copy()
    for a, b in zip(frames[:-1], frames[1:]):
        if 1 < b - a <= max_gap + 1:  # gap of b - a - 1 missed frames
            valid[a + 1 : b] = True
    return Track2D(
        keypoints=out_kp.astype(np.float32),
        scores=out_sc,
        detected=detected,
        valid=valid,
        meta=detections.meta,
        track_id=track.track_id,
        num_people=num_people,
        source=detections.source,
    )


def main_track(
    detections: Detections,
    *,
    person: int | None = None,
    max_gap: int = DEFAULT_MAX_GAP,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    min_score: float = DEFAULT_MIN_JOINT_SCORE,
) -> Track2D:
    """Track everyone, pick the main person (or track id ``person``) and fill their gaps.

    Raises :class:`NoPersonError` when no frame has anybody.
    """
    tracks = track_people(detections, max_distance=max_distance, max_gap=max_gap)
    if not tracks:
        name = f" ({detections.meta.name})" if detections.meta.name else ""
        raise NoPersonError(
            f"no person found in {detections.source}{name}: none of the {detections.num_frames} frames "
            "has a detection"
        )
    chosen = select_main_person(tracks, detections.meta, person=person)
    return to_track2d(chosen, detections, max_gap=max_gap, min_score=min_score, num_people=len(tracks))
