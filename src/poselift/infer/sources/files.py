"""Read precomputed 2D keypoints from the files other pose estimators already write.

Many users have run a 2D detector already (OpenPose, mmpose, Detectron2 via
VideoPose3D, their own tracker). Reading its output lets poselift lift those
keypoints to 3D without running a detector again. :func:`load_keypoints`
picks the reader from the path:

=====================================  ==========================================================
path                                   reader
=====================================  ==========================================================
``*.json``                             COCO keypoint results or annotations (:mod:`.coco_json`)
a folder of ``*_keypoints.json``       OpenPose, BODY_25 or COCO-18 (:mod:`.openpose`)
``*.npz``                              VideoPose3D ``data_2d_custom_*.npz`` or poselift's
                                       ``poses3d.npz`` (:mod:`.npz_keypoints`)
``*.csv``                              one row per person and frame (:mod:`.csv_keypoints`)
=====================================  ==========================================================

Every reader returns :class:`~poselift.infer.types.Detections` in COCO-17
pixels. The helpers below are what the readers share: the video metadata a
result carries (from the video, else from the file, else from options) and
the construction of a :class:`PersonDetection` with checked dtypes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from poselift.errors import ConfigError, KeypointFormatError
from poselift.infer.types import Detections, PersonDetection, VideoMeta

__all__ = ["detect_format", "load_keypoints", "make_detections", "make_person", "natural_key", "read_json"]


def detect_format(path: str | Path) -> str:
    """The keypoint format of ``path``: one of ``"coco-json"``, ``"openpose"``, ``"npz"``, ``"csv"``."""
    path = Path(path)
    if not path.exists():
        raise KeypointFormatError(f"{path} does not exist")
    if path.is_dir():
        if not any(path.glob("*_keypoints.json")):
            raise KeypointFormatError(
                f"{path} is a folder without OpenPose *_keypoints.json files; "
                "pass a COCO .json, an OpenPose output folder, a .npz or a .csv")
        return "openpose"
    suffix = path.suffix.lower()
    by_suffix = {".json": "coco-json", ".npz": "npz", ".csv": "csv"}
    if suffix not in by_suffix:
        raise KeypointFormatError(
            f"{path}: unknown keypoint file type {suffix or '(no extension)'!r}; expected a COCO .json, "
            "an OpenPose folder of *_keypoints.json, a VideoPose3D/poselift .npz or a .csv")
    return by_suffix[suffix]


def load_keypoints(path: str | Path, *, video_meta: VideoMeta | None = None, fps: float | None = None,
                   width: int | None = None, height: int | None = None, video_name: str | None = None,
                   frame_offset: int | None = None) -> Detections:
    """Read 2D keypoints from ``path`` in whichever supported format it is (see the module docstring).

    Args:
        video_meta: the video the keypoints belong to; its size, fps and frame
            count win over anything the file says, and the result is padded
            with empty frames to the video's length.
        fps / width / height: the video's frame rate and size, where neither
            ``video_meta`` nor the file gives them (OpenPose, COCO results and
            CSV record no size or frame rate).
        video_name: which video of a VideoPose3D ``.npz`` holding several.
        frame_offset: COCO JSON only; the image id of frame 0 (default: the smallest id).
    """
    fmt = detect_format(path)
    common = {"video_meta": video_meta, "fps": fps, "width": width, "height": height}
    if video_name is not None and fmt != "npz":
        raise ConfigError(f"{path}: the video_name option only applies to .npz keypoint files")
    if frame_offset is not None and fmt != "coco-json":
        raise ConfigError(f"{path}: the frame_offset option only applies to COCO .json keypoint files")
    # Imported here: the readers import this module's helpers.
    if fmt == "coco-json":
        from poselift.infer.sources.coco_json import read_coco_json
        return read_coco_json(path, frame_offset=frame_offset, **common)
    if fmt == "openpose":
        from poselift.infer.sources.openpose import read_openpose_folder
        return read_openpose_folder(path, **common)
    if fmt == "npz":
        from poselift.infer.sources.npz_keypoints import read_keypoints_npz
        return read_keypoints_npz(path, video_name=video_name, **common)
    from poselift.infer.sources.csv_keypoints import read_keypoints_csv
    return read_keypoints_csv(path, **common)


# --------------------------------------------------------------------------- helpers shared by the readers


def read_json(path: Path):
    """Parsed JSON of ``path``, or a :class:`KeypointFormatError` naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError) as exc:
        raise KeypointFormatError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise KeypointFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def natural_key(text: str) -> tuple:
    """Sort key comparing digit runs as numbers: ``frame_9`` before ``frame_10``."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def make_person(keypoints: np.ndarray, scores: np.ndarray, *, box=None, score: float | None = None,
                track_id: int | None = None) -> PersonDetection:
    """A :class:`PersonDetection` from (17, 2) pixels and (17,) confidences (clipped into [0, 1])."""
    kp = np.asarray(keypoints, dtype=np.float32).reshape(17, 2)
    sc = np.clip(np.asarray(scores, dtype=np.float32).reshape(17), 0.0, 1.0)
    bx = None if box is None else np.asarray(box, dtype=np.float32).reshape(4)
    return PersonDetection(kp, sc, box=bx, score=None if score is None else float(score),
                           track_id=None if track_id is None else int(track_id))


def _positive(value, option: str, kind: type):
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option {option} should be a number, got {value!r}") from None
    if not np.isfinite(out) or out <= 0:
        raise ConfigError(f"option {option} should be positive, got {value!r}")
    return out


def make_detections(path: Path, frames: list[list[PersonDetection]], *, source: str,
                    video_meta: VideoMeta | None, fps: float | None, width: int | None, height: int | None,
                    file_size: tuple[int, int] | None = None, file_fps: float | None = None,
                    fmt_name: str = "these") -> Detections:
    """Attach the video metadata to a reader's frames.

    Precedence: ``video_meta`` (the video itself) over the ``width``/``height``/
    ``fps`` options over what the file records (``file_size`` (w, h),
    ``file_fps``). With ``video_meta`` the frames are padded with empty frames
    to the video's length; keypoints past the video's end are an error (they
    belong to another video).
    """
    if video_meta is not None:
        if any(frames[video_meta.num_frames:]):
            last = max(t for t, people in enumerate(frames) if people)
            raise KeypointFormatError(
                f"{path}: has keypoints for frame {last} but the video {video_meta.name} has only "
                f"{video_meta.num_frames} frames; are these the keypoints of another video?")
        frames = frames[:video_meta.num_frames]  # only empty frames are cut
        frames = frames + [[] for _ in range(video_meta.num_frames - len(frames))]
        return Detections(frames, video_meta, source)
    w = width if width is not None else (file_size[0] if file_size else None)
    h = height if height is not None else (file_size[1] if file_size else None)
    f = fps if fps is not None else file_fps
    missing = [name for name, value in (("width", w), ("height", h), ("fps", f)) if value is None]
    if missing:
        what = ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
        raise ConfigError(
            f"{path}: {fmt_name} keypoints do not record the video's {what}; pass the video the keypoints "
            f"belong to, or the option{'s' if len(missing) > 1 else ''} " + ", ".join(f"{m}=..." for m in missing))
    meta = VideoMeta(width=_positive(w, "width", int), height=_positive(h, "height", int),
                     fps=_positive(f, "fps", float), num_frames=len(frames), name=path.name)
    return Detections(frames, meta, source)
