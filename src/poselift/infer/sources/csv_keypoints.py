"""2D keypoints as CSV: one row per person per frame, the format anyone can write from a spreadsheet or pandas.

Layout (header row required, columns matched by name, any order, extra
columns ignored)::

    frame,person,nose_x,nose_y,nose_score,left_eye_x,left_eye_y,left_eye_score,...,right_ankle_score

* ``frame``: 0-based frame index of the video (used as is: frame 0 is the first frame).
* ``person`` (optional): an integer identity, read as ``track_id``; empty or
  absent: no identity.
* ``<joint>_x``, ``<joint>_y`` for the 17 COCO joints
  (:data:`poselift.skeleton.COCO_17` names: nose, left_eye, right_eye,
  left_ear, right_ear, left_shoulder, right_shoulder, left_elbow, right_elbow,
  left_wrist, right_wrist, left_hip, right_hip, left_knee, right_knee,
  left_ankle, right_ankle), pixels. Empty or ``nan`` cells: joint missing (score 0).
* ``<joint>_score`` (optional, all 17 or none): confidence in [0, 1]; absent: 1.0.
* ``person_score``, ``box_x0``, ``box_y0``, ``box_x1``, ``box_y1`` (optional,
  empty cells allowed): whole-person score and box (pixels).
* A row with a frame number and every keypoint cell empty marks a frame with
  nobody; it lets a file keep trailing empty frames.

:func:`write_keypoints_csv` writes this layout (with the optional columns at
the end), so a written file reads back to the same detections.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from poselift.atomic import atomic_write_text
from poselift.errors import KeypointFormatError
from poselift.infer.sources.files import make_detections, make_person
from poselift.infer.types import Detections, PersonDetection, VideoMeta
from poselift.skeleton import COCO_17

__all__ = ["CSV_COLUMNS", "read_keypoints_csv", "write_keypoints_csv"]

_XY = [f"{n}_{c}" for n in COCO_17.joint_names for c in ("x", "y")]
_SCORES = [f"{n}_score" for n in COCO_17.joint_names]
_BOX = ["box_x0", "box_y0", "box_x1", "box_y1"]
#: The columns :func:`write_keypoints_csv` writes, in order.
CSV_COLUMNS = ("frame", "person", *[f"{n}_{c}" for n in COCO_17.joint_names for c in ("x", "y", "score")],
               "person_score", *_BOX)


def read_keypoints_csv(path: str | Path, *, video_meta: VideoMeta | None = None, fps: float | None = None,
                       width: int | None = None, height: int | None = None) -> Detections:
    """Read a keypoint CSV (layout in the module docstring); frames run from 0 to the largest ``frame``.

    A CSV records neither video size nor frame rate: give ``video_meta`` or
    ``width``, ``height`` and ``fps``.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a byte-order mark
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise KeypointFormatError(f"{path}: cannot read as CSV ({exc})") from None
    if not rows:
        raise KeypointFormatError(f"{path} is empty; expected a header row {','.join(CSV_COLUMNS[:5])},...")
    header = [h.strip() for h in rows[0]]
    col = {h: i for i, h in enumerate(header)}
    missing = [c for c in ("frame", *_XY) if c not in col]
    if missing:
        raise KeypointFormatError(f"{path}: missing columns {', '.join(missing)} "
                                  f"(expected frame,person,nose_x,nose_y,nose_score,... for the 17 COCO joints)")
    have_scores = [c for c in _SCORES if c in col]
    if have_scores and len(have_scores) != len(_SCORES):
        raise KeypointFormatError(f"{path}: missing columns {', '.join(c for c in _SCORES if c not in col)} "
                                  "(give all 17 <joint>_score columns or none)")
    have_box = [c for c in _BOX if c in col]
    if have_box and len(have_box) != 4:
        raise KeypointFormatError(f"{path}: missing columns {', '.join(c for c in _BOX if c not in col)} "
                                  "(give all four box columns or none)")
    xy_idx = [col[c] for c in _XY]
    score_idx = [col[c] for c in have_scores]
    people: list[tuple[int, PersonDetection | None]] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        row = row + [""] * (len(header) - len(row))  # some writers drop trailing empty cells

        def cell(name: str, row: list[str] = row) -> str:
            return row[col[name]] if name in col else ""

        frame = _int(path, line, "frame", cell("frame"))
        if frame is None or frame < 0:
            raise KeypointFormatError(f"{path}: line {line}: frame {cell('frame')!r} should be an integer >= 0")
        xy = np.array([_float(path, line, header[i], row[i]) for i in xy_idx]).reshape(17, 2)
        if np.isnan(xy).all():  # a frame marker: nobody in this frame
            people.append((frame, None))
            continue
        scores = (np.array([_float(path, line, header[i], row[i]) for i in score_idx]) if score_idx
                  else np.ones(17))
        missing_joint = np.isnan(xy).any(axis=1) | np.isnan(scores)
        scores = np.where(missing_joint, 0.0, scores)
        xy = np.where(missing_joint[:, None], 0.0, xy)
        box = [_float(path, line, c, cell(c)) for c in _BOX] if have_box else None
        box = None if box is None or any(math.isnan(v) for v in box) else box
        person_score = _float(path, line, "person_score", cell("person_score"))
        people.append((frame, make_person(xy, scores, box=box,
                                          score=None if math.isnan(person_score) else person_score,
                                          track_id=_int(path, line, "person", cell("person")))))
    frames: list[list[PersonDetection]] = [[] for _ in range(max((t + 1 for t, _ in people), default=0))]
    for t, person in people:
        if person is not None:
            frames[t].append(person)
    return make_detections(path, frames, source=f"csv {path.name}", video_meta=video_meta, fps=fps, width=width,
                           height=height, fmt_name="CSV")


def _float(path: Path, line: int, column: str, text: str) -> float:
    text = text.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise KeypointFormatError(f"{path}: line {line}, column {column}: {text!r} is not a number") from None
    if math.isinf(value):
        raise KeypointFormatError(f"{path}: line {line}, column {column}: infinite value")
    return value


def _int(path: Path, line: int, column: str, text: str) -> int | None:
    value = _float(path, line, column, text)
    if math.isnan(value):
        return None
    if value != int(value):
        raise KeypointFormatError(f"{path}: line {line}, column {column}: {text.strip()!r} is not an integer")
    return int(value)


def _numbers(values: np.ndarray) -> np.ndarray:
    """Text of float32 ``values`` (any shape) that reads back to the same float32: 7 digits, 9 where needed."""
    v = np.asarray(values, dtype=np.float32)
    text = np.char.mod("%.7g", v.astype(np.float64)).astype("<U24")
    inexact = text.astype(np.float32) != v  # 9 significant digits always round-trip a float32
    text[inexact] = np.char.mod("%.9g", v[inexact].astype(np.float64))
    return text


def write_keypoints_csv(detections: Detections, path: str | Path) -> Path:
    """Write ``detections`` in the CSV layout above (atomically); frames with nobody get a marker row."""
    people = [(t, p) for t, frame in enumerate(detections.frames) for p in frame]
    joints = _numbers(np.stack([np.concatenate([p.keypoints, p.scores[:, None]], axis=1).reshape(51)
                                for _, p in people]) if people else np.zeros((0, 51)))
    boxes = _numbers(np.stack([np.zeros(4) if p.box is None else np.asarray(p.box).reshape(4) for _, p in people])
                     if people else np.zeros((0, 4)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    empty = [""] * (len(CSV_COLUMNS) - 1)
    rows = iter(range(len(people)))
    for t, frame in enumerate(detections.frames):
        if not frame:
            writer.writerow([t, *empty])
        for p in frame:
            i = next(rows)
            writer.writerow([t, "" if p.track_id is None else p.track_id, *joints[i],
                             "" if p.score is None else repr(float(p.score)),
                             *([""] * 4 if p.box is None else boxes[i])])
    return atomic_write_text(path, out.getvalue())
