"""2D keypoints from ``.npz`` files: VideoPose3D's custom 2D format and poselift's own output.

**VideoPose3D** ``data_2d_custom_<name>.npz`` (what its
``prepare_data_2d_custom.py`` writes from Detectron2 keypoints): entries
``positions_2d`` = {video name: {"custom": [array (T, 17, 2) or (T, 17, 3)]}}
(pixels; a third channel is the confidence) and ``metadata`` =
{"layout_name": "coco", "num_joints": 17, "keypoints_symmetry": [[left], [right]],
"video_metadata": {video name: {"w": width, "h": height}}}. One person per
frame, no frame rate recorded. ``video_name`` picks the video when the file
holds several.

**poselift** ``poses3d.npz`` (for lifting again, e.g. with another model):
``keypoints_2d`` (T, 17, 2) pixels, optional ``scores_2d`` (T, 17) (else 1),
optional ``detected`` (T,) bool (frames where it is False were filled in by
interpolation and are read as frames with nobody, so tracking fills them
again), optional scalars ``width``, ``height``, ``fps``. Joints with NaN
coordinates are read as missing (score 0).

Both are read with poselift's restricted ``.npz`` reader, which refuses pickled
objects other than NumPy arrays (VideoPose3D's dicts are pickles).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from poselift.data.safe_npz import load_npz
from poselift.data.vp3d_format import load_positions_2d
from poselift.errors import ConfigError, DataFormatError, KeypointFormatError
from poselift.infer.sources.files import make_detections, make_person
from poselift.infer.types import Detections, PersonDetection, VideoMeta

__all__ = ["read_keypoints_npz", "read_poselift_npz", "read_vp3d_custom_npz"]


def read_keypoints_npz(path: str | Path, *, video_meta: VideoMeta | None = None, fps: float | None = None,
                       width: int | None = None, height: int | None = None,
                       video_name: str | None = None) -> Detections:
    """Read a VideoPose3D custom 2D ``.npz`` or a poselift ``poses3d.npz``, whichever ``path`` is."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            keys = {name[:-4] for name in zf.namelist() if name.endswith(".npy")}
    except (OSError, zipfile.BadZipFile):
        raise KeypointFormatError(f"{path} is not a readable .npz file") from None
    common = {"video_meta": video_meta, "fps": fps, "width": width, "height": height}
    if "positions_2d" in keys:
        return read_vp3d_custom_npz(path, video_name=video_name, **common)
    if "keypoints_2d" in keys:
        if video_name is not None:
            raise ConfigError(f"{path}: video_name does not apply to a poselift poses3d.npz (it holds one video)")
        return read_poselift_npz(path, **common)
    raise KeypointFormatError(
        f"{path}: found entries {sorted(keys)}; expected 'positions_2d' + 'metadata' (VideoPose3D "
        "data_2d_custom_*.npz) or 'keypoints_2d' (poselift poses3d.npz)")


def read_vp3d_custom_npz(path: str | Path, *, video_name: str | None = None, video_meta: VideoMeta | None = None,
                         fps: float | None = None, width: int | None = None,
                         height: int | None = None) -> Detections:
    """Read one video of a VideoPose3D ``data_2d_custom_*.npz`` (one person per frame)."""
    path = Path(path)
    try:
        positions, meta = load_positions_2d(path)
    except KeypointFormatError:
        raise
    except DataFormatError as exc:  # one error type for every keypoint file problem
        raise KeypointFormatError(str(exc)) from None
    layout = meta.get("layout_name", "coco")
    if layout != "coco" or int(meta.get("num_joints", 17)) != 17:
        raise KeypointFormatError(f"{path}: metadata says layout {layout!r} with {meta.get('num_joints')} joints, "
                                  "expected 'coco' with 17 (COCO-17 keypoints)")
    names = sorted(positions)
    if video_name is None:
        if len(names) != 1:
            raise ConfigError(f"{path} holds {len(names)} videos; choose one with video_name: {names}")
        video_name = names[0]
    elif video_name not in positions:
        raise ConfigError(f"{path} has no video {video_name!r}; it holds {names}")
    actions = positions[video_name]
    action = "custom" if "custom" in actions else (next(iter(actions)) if len(actions) == 1 else None)
    if action is None:
        raise KeypointFormatError(f"{path}: positions_2d[{video_name!r}] has {sorted(actions)}, expected 'custom'")
    field = f"positions_2d[{video_name!r}][{action!r}]"
    if len(actions[action]) != 1:
        raise KeypointFormatError(f"{path}: {field} holds {len(actions[action])} camera views, expected 1")
    arr = actions[action][0]
    if arr.shape[1] != 17:
        raise KeypointFormatError(f"{path}: {field}[0] has {arr.shape[1]} joints, expected 17 (COCO-17 keypoints)")
    scores = np.nan_to_num(arr[:, :, 2]) if arr.shape[2] == 3 else np.ones(arr.shape[:2], np.float32)
    frames = [[make_person(arr[t, :, :2], scores[t])] for t in range(arr.shape[0])]
    vm = meta.get("video_metadata", {}).get(video_name) if isinstance(meta.get("video_metadata"), dict) else None
    file_size = (vm["w"], vm["h"]) if isinstance(vm, dict) and "w" in vm and "h" in vm else None
    return make_detections(path, frames, source=f"vp3d-npz {path.name} [{video_name}]", video_meta=video_meta,
                           fps=fps, width=width, height=height, file_size=file_size,
                           fmt_name="VideoPose3D .npz")


def read_poselift_npz(path: str | Path, *, video_meta: VideoMeta | None = None, fps: float | None = None,
                      width: int | None = None, height: int | None = None) -> Detections:
    """Read the 2D keypoints of a poselift ``poses3d.npz`` (one person per frame)."""
    path = Path(path)
    try:
        entries = load_npz(path)
    except KeypointFormatError:
        raise
    except DataFormatError as exc:
        raise KeypointFormatError(str(exc)) from None
    kp = entries["keypoints_2d"]
    if not (isinstance(kp, np.ndarray) and kp.ndim == 3 and kp.shape[1:] == (17, 2)
            and np.issubdtype(kp.dtype, np.number)):
        desc = f"shape {kp.shape}" if isinstance(kp, np.ndarray) else type(kp).__name__
        raise KeypointFormatError(f"{path}: keypoints_2d has {desc}, expected (T, 17, 2) (COCO-17 keypoints)")
    t_len = kp.shape[0]
    scores = _optional(path, entries, "scores_2d", (t_len, 17), np.ones((t_len, 17), np.float32))
    detected = _optional(path, entries, "detected", (t_len,), np.ones(t_len, bool)).astype(bool)
    ok = np.isfinite(kp).all(axis=2)
    scores = np.where(ok, np.nan_to_num(scores.astype(np.float32)), 0.0)
    kp = np.where(ok[..., None], kp, 0.0)
    frames: list[list[PersonDetection]] = [
        [make_person(kp[t], scores[t])] if detected[t] and scores[t].any() else [] for t in range(t_len)]
    size = [_scalar(path, entries, k) for k in ("width", "height")]
    return make_detections(path, frames, source=f"poselift-npz {path.name}", video_meta=video_meta, fps=fps,
                           width=width, height=height, file_size=None if None in size else tuple(size),
                           file_fps=_scalar(path, entries, "fps"), fmt_name="these poselift .npz")


def _optional(path: Path, entries: dict, key: str, shape: tuple[int, ...], default: np.ndarray) -> np.ndarray:
    if key not in entries:
        return default
    value = entries[key]
    if not isinstance(value, np.ndarray) or value.shape != shape:
        desc = f"shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
        raise KeypointFormatError(f"{path}: {key} has {desc}, expected {shape} to match keypoints_2d")
    return value


def _scalar(path: Path, entries: dict, key: str):
    if key not in entries:
        return None
    value = entries[key]
    if not isinstance(value, np.ndarray) or value.shape != () or not np.issubdtype(value.dtype, np.number):
        raise KeypointFormatError(f"{path}: {key} should be a number")
    return value.item()
