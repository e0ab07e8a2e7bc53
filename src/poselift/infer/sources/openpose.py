"""OpenPose ``--write_json`` output: one ``<name>_<frame:012d>_keypoints.json`` per frame.

OpenPose is still a common 2D detector, and its JSON folder is what its users
have. Each file is ``{"people": [{"pose_keypoints_2d": [x, y, c] * N,
"person_id": [-1]}, ...]}`` (OpenPose 1.0/1.1 named the key ``pose_keypoints``;
both are read). Accepted models, recognised by N:

* BODY_25 (N = 25): 0 Nose, 1 Neck, 2 RShoulder, 3 RElbow, 4 RWrist,
  5 LShoulder, 6 LElbow, 7 LWrist, 8 MidHip, 9 RHip, 10 RKnee, 11 RAnkle,
  12 LHip, 13 LKnee, 14 LAnkle, 15 REye, 16 LEye, 17 REar, 18 LEar, 19-24 feet.
* COCO-18 (N = 18): 0 Nose, 1 Neck, 2 RShoulder, 3 RElbow, 4 RWrist,
  5 LShoulder, 6 LElbow, 7 LWrist, 8 RHip, 9 RKnee, 10 RAnkle, 11 LHip,
  12 LKnee, 13 LAnkle, 14 REye, 15 LEye, 16 REar, 17 LEar.

Both are mapped to COCO-17 by joint name (Neck, MidHip and the feet are
dropped). Confidence ``c`` = 0 marks a joint OpenPose did not find (it writes
0, 0, 0). The frame number is the last run of digits before
``_keypoints.json``; frame index = number - smallest number, so a missing file
is a frame with nobody. ``person_id`` (an integer, or a list of one; -1 means
none) becomes ``track_id``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from poselift.errors import KeypointFormatError
from poselift.infer.sources.files import make_detections, make_person, natural_key, read_json
from poselift.infer.types import Detections, PersonDetection, VideoMeta
from poselift.skeleton import COCO_17

__all__ = ["BODY_25_NAMES", "COCO_18_NAMES", "openpose_to_coco17", "read_openpose_folder"]

BODY_25_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
COCO_18_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)


def _openpose_name(coco_name: str) -> str:
    """COCO-17 joint name -> OpenPose's: ``left_wrist`` -> ``LWrist``, ``nose`` -> ``Nose``."""
    side, _, part = coco_name.partition("_")
    if not part:
        return side.capitalize()
    return {"left": "L", "right": "R"}[side] + part.capitalize()


def openpose_to_coco17(model_names: tuple[str, ...]) -> np.ndarray:
    """(17,) index into an OpenPose model's joints for each COCO-17 joint."""
    return np.array([model_names.index(_openpose_name(n)) for n in COCO_17.joint_names])


_MODELS = {25: ("BODY_25", openpose_to_coco17(BODY_25_NAMES)), 18: ("COCO-18", openpose_to_coco17(COCO_18_NAMES))}


def read_openpose_folder(folder: str | Path, *, video_meta: VideoMeta | None = None, fps: float | None = None,
                         width: int | None = None, height: int | None = None) -> Detections:
    """Read every ``*_keypoints.json`` in ``folder`` (see the module docstring).

    OpenPose records neither the video size nor its frame rate: give
    ``video_meta`` or ``width``, ``height`` and ``fps``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise KeypointFormatError(f"{folder} is not a folder of OpenPose *_keypoints.json files")
    files = sorted(folder.glob("*_keypoints.json"), key=lambda p: natural_key(p.name))
    if not files:
        raise KeypointFormatError(f"{folder}: no OpenPose *_keypoints.json files")
    numbers = [_frame_number(p) for p in files]
    if None in numbers:  # names without frame numbers (OpenPose run on an image folder): file order
        numbers = list(range(len(files)))
    first = min(numbers)
    by_frame: dict[int, Path] = {}
    for p, n in zip(files, numbers):
        if n - first in by_frame:
            raise KeypointFormatError(f"{folder}: {by_frame[n - first].name} and {p.name} are both frame {n}; "
                                      "expected the output of one video")
        by_frame[n - first] = p
    frames: list[list[PersonDetection]] = [[] for _ in range(max(by_frame) + 1)]
    models: set[str] = set()
    for t, p in by_frame.items():
        frames[t] = _read_frame(p, models)
    source = f"openpose {folder.name} ({', '.join(sorted(models)) or 'no people'})"
    return make_detections(folder, frames, source=source, video_meta=video_meta, fps=fps, width=width,
                           height=height, fmt_name="OpenPose")


def _frame_number(path: Path) -> int | None:
    match = re.search(r"(\d+)\D*_keypoints\.json$", path.name)
    return int(match.group(1)) if match else None


def _read_frame(path: Path, models: set[str]) -> list[PersonDetection]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise KeypointFormatError(f"{path}: expected an OpenPose object with a 'people' list")
    people = []
    for i, person in enumerate(data["people"]):
        values = person.get("pose_keypoints_2d", person.get("pose_keypoints")) if isinstance(person, dict) else None
        if not isinstance(values, list):
            raise KeypointFormatError(f"{path}: person {i} has no 'pose_keypoints_2d' list")
        if not values:  # OpenPose run without the body model
            continue
        if len(values) % 3 or len(values) // 3 not in _MODELS:
            raise KeypointFormatError(
                f"{path}: person {i} has {len(values)} pose_keypoints_2d values, expected 75 (BODY_25: 25 keypoints "
                "x 3) or 54 (COCO-18: 18 keypoints x 3)")
        name, index = _MODELS[len(values) // 3]
        models.add(name)
        try:
            kp = np.asarray(values, dtype=np.float64).reshape(-1, 3)[index]
        except (TypeError, ValueError):
            raise KeypointFormatError(f"{path}: person {i} has non-numeric keypoint values") from None
        if not np.isfinite(kp).all():
            raise KeypointFormatError(f"{path}: person {i} has NaN or infinite keypoint values")
        if not np.any(kp[:, 2] > 0):
            continue
        people.append(make_person(kp[:, :2], kp[:, 2], track_id=_person_id(path, i, person.get("person_id"))))
    return people


def _person_id(path: Path, i: int, value) -> int | None:
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None if not value else value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise KeypointFormatError(f"{path}: person {i} has person_id {value!r}, expected an integer or [integer]")
    return None if value < 0 else int(value)
