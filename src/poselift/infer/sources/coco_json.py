"""COCO keypoint JSON: the results format every COCO-trained pose estimator writes.

mmpose, Detectron2, AlphaPose, HRNet and PoseTrack-style trackers all save
keypoint results as COCO "results" JSON, and annotation tools (CVAT, Label
Studio) export labelled frames as COCO ground truth. Both are accepted:

**Results** (a JSON list)::

    [{"image_id": 12, "category_id": 1, "keypoints": [x, y, c] * 17, "score": 0.93,
      "bbox": [x, y, w, h], "track_id": 3}, ...]

``bbox`` and ``track_id`` are optional. The third keypoint value ``c`` is a
confidence (clipped into [0, 1]). ``image_id`` is the frame number: an integer,
or a string whose last run of digits is the number (``"frame_000012.jpg"`` ->
12). Frame index = number - ``frame_offset``, and ``frame_offset`` defaults
to the smallest number in the file (results list only frames with people, so
pass ``frame_offset=0`` when ids are absolute frame numbers and the first
frames may be empty).

**Annotations** (a JSON object, COCO ground-truth style)::

    {"images": [{"id": 1, "file_name": "frame_000000.jpg", "width": 1920, "height": 1080}, ...],
     "annotations": [{"image_id": 1, "keypoints": [x, y, v] * 17, "num_keypoints": 15,
                      "bbox": [x, y, w, h], "iscrowd": 0}, ...],
     "categories": [...]}

Frames are the ``images`` in natural file-name order (``frame_9`` before
``frame_10``), including images without annotations; the video size comes from
their ``width``/``height``. Without ``images``, ``image_id`` maps to frames as
for results. The third value is the visibility flag ``v`` (0: not labelled ->
score 0; 1 or 2 -> score 1). Crowd annotations (``iscrowd: 1``) and annotations
without ``keypoints`` (other categories) are skipped.

In both, a person whose 17 scores are all 0 is dropped: it carries no keypoint.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from poselift.errors import ConfigError, KeypointFormatError
from poselift.infer.sources.files import make_detections, make_person, natural_key, read_json
from poselift.infer.types import Detections, PersonDetection, VideoMeta

__all__ = ["read_coco_json"]

_NUM_VALUES = 17 * 3


def read_coco_json(path: str | Path, *, video_meta: VideoMeta | None = None, fps: float | None = None,
                   width: int | None = None, height: int | None = None,
                   frame_offset: int | None = None) -> Detections:
    """Read a COCO keypoint results list or annotations object (see the module docstring).

    Returns per frame the people in file order, with (17, 2) pixels, (17,)
    scores, ``box`` (x0, y0, x1, y1) from ``bbox``, ``score`` and ``track_id``.
    """
    path = Path(path)
    data = read_json(path)
    if isinstance(data, list):
        people, frame_of = _people(path, data, visibility=False), None
        kind, file_size = "results", None
    elif isinstance(data, dict) and "annotations" in data:
        if not isinstance(data["annotations"], list):
            raise KeypointFormatError(f"{path}: 'annotations' should be a list of annotation objects")
        people = _people(path, data["annotations"], visibility=True)
        kind, frame_of, file_size = "annotations", None, None
        if "images" in data:
            if frame_offset is not None:
                raise ConfigError(f"{path}: frame_offset does not apply, frames come from the file's 'images' list")
            frame_of, file_size = _image_frames(path, data["images"])
    elif isinstance(data, dict) and "people" in data:
        raise KeypointFormatError(
            f"{path} is a single OpenPose frame; pass the folder that holds all the *_keypoints.json files")
    else:
        raise KeypointFormatError(
            f"{path}: expected a COCO keypoint results list or an object with 'annotations', "
            f"got {type(data).__name__}" + (f" with keys {sorted(data)[:8]}" if isinstance(data, dict) else ""))

    if frame_of is not None:
        num_frames = len(frame_of)
        indexed = []
        for i, image_id, person in people:
            if _hashable(image_id) not in frame_of:
                raise KeypointFormatError(f"{path}: annotation {i} has image_id {image_id!r}, which is not in 'images'")
            indexed.append((frame_of[_hashable(image_id)], person))
    else:
        numbers = [(i, _frame_number(path, i, image_id), person) for i, image_id, person in people]
        offset = frame_offset if frame_offset is not None else min((n for _, n, _ in numbers), default=0)
        indexed = []
        for i, n, person in numbers:
            if n < offset:
                raise KeypointFormatError(f"{path}: entry {i} has frame number {n}, below frame_offset {offset}")
            indexed.append((n - offset, person))
        num_frames = max((t + 1 for t, _ in indexed), default=0)

    frames: list[list[PersonDetection]] = [[] for _ in range(num_frames)]
    for t, person in indexed:
        frames[t].append(person)
    return make_detections(path, frames, source=f"coco-json {kind} {path.name}", video_meta=video_meta, fps=fps,
                           width=width, height=height, file_size=file_size, fmt_name=f"COCO {kind} JSON")


def _hashable(image_id):
    return image_id if isinstance(image_id, (int, str)) else repr(image_id)


def _people(path: Path, entries: list, *, visibility: bool) -> list[tuple[int, object, PersonDetection]]:
    """(entry index, image_id, person) for every usable entry."""
    what = "annotation" if visibility else "entry"
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise KeypointFormatError(f"{path}: {what} {i} should be an object, got {type(e).__name__}")
        if visibility and ("keypoints" not in e or e.get("iscrowd", 0)):
            continue
        for key in ("image_id", "keypoints"):
            if key not in e:
                raise KeypointFormatError(f"{path}: {what} {i} has no '{key}'")
        values = e["keypoints"]
        if not isinstance(values, list) or len(values) != _NUM_VALUES:
            found = len(values) if isinstance(values, list) else type(values).__name__
            raise KeypointFormatError(
                f"{path}: {what} {i} has {found} keypoint values, expected {_NUM_VALUES} "
                f"(17 COCO keypoints x 3: x, y, {'visibility' if visibility else 'score'})")
        try:
            kp = np.asarray(values, dtype=np.float64).reshape(17, 3)
        except (TypeError, ValueError):
            raise KeypointFormatError(f"{path}: {what} {i} has non-numeric keypoint values") from None
        if not np.isfinite(kp).all():
            raise KeypointFormatError(f"{path}: {what} {i} has NaN or infinite keypoint values")
        scores = (kp[:, 2] > 0).astype(np.float32) if visibility else kp[:, 2]
        if not np.any(scores > 0):
            continue
        out.append((i, e["image_id"], make_person(kp[:, :2], scores, box=_box(path, what, i, e.get("bbox")),
                                                  score=_opt_number(path, what, i, e, "score"),
                                                  track_id=_opt_int(path, what, i, e, "track_id"))))
    return out


def _box(path: Path, what: str, i: int, bbox) -> np.ndarray | None:
    if bbox is None:
        return None
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise KeypointFormatError(f"{path}: {what} {i} has bbox {bbox!r}, expected [x, y, width, height]") from None
    return np.array([x, y, x + w, y + h], dtype=np.float32)


def _opt_number(path: Path, what: str, i: int, e: dict, key: str) -> float | None:
    value = e.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise KeypointFormatError(f"{path}: {what} {i} has {key} {value!r}, expected a number")
    return float(value)


def _opt_int(path: Path, what: str, i: int, e: dict, key: str) -> int | None:
    value = e.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise KeypointFormatError(f"{path}: {what} {i} has {key} {value!r}, expected an integer")
    return int(value)


def _frame_number(path: Path, i: int, image_id) -> int:
    if isinstance(image_id, int) and not isinstance(image_id, bool):
        return image_id
    if isinstance(image_id, str):
        digits = re.findall(r"\d+", image_id)
        if digits:
            return int(digits[-1])
    raise KeypointFormatError(
        f"{path}: entry {i} has image_id {image_id!r}; expected a frame number or a name ending in one "
        "(frame_000012.jpg)")


def _image_frames(path: Path, images) -> tuple[dict, tuple[int, int] | None]:
    """image id -> frame index (natural file-name order), and the images' common (width, height)."""
    if not isinstance(images, list) or not all(isinstance(im, dict) and "id" in im for im in images):
        raise KeypointFormatError(f"{path}: 'images' should be a list of objects with 'id' (and file_name, width, "
                                  "height)")
    ordered = sorted(images, key=lambda im: natural_key(str(im.get("file_name", im["id"]))))
    frame_of = {}
    for t, im in enumerate(ordered):
        key = _hashable(im["id"])
        if key in frame_of:
            raise KeypointFormatError(f"{path}: image id {im['id']!r} appears twice in 'images'")
        frame_of[key] = t
    sizes = {(im.get("width"), im.get("height")) for im in images}
    if len(sizes) > 1:
        raise KeypointFormatError(f"{path}: 'images' have different sizes {sorted(map(str, sizes))}; "
                                  "expected the frames of one video")
    size = sizes.pop() if sizes else (None, None)
    return frame_of, (size if None not in size else None)
