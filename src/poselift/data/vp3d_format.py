"""VideoPose3D's dataset files, read and written exactly.

``data_3d_<dataset>.npz``
    ``positions_3d``: dict subject -> action -> (T, J, 3) float, metres, world
    space (Human3.6M: J = 32, reduced to 17 on loading).
    poselift extension (ignored by VideoPose3D): ``cameras``: dict subject ->
    list of camera dicts (see :class:`~poselift.geometry.CameraParameters`),
    for datasets whose cameras are not the published Human3.6M/HumanEva ones.

``data_2d_<dataset>_<keypoints>.npz``
    ``positions_2d``: dict subject -> action -> list per camera of (T, J, 2+) pixels;
    ``metadata``: dict with ``layout_name``, ``num_joints``,
    ``keypoints_symmetry`` ([left joints], [right joints]); the custom
    (in-the-wild) format adds ``video_metadata``: {video name: {"w", "h"}}.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poselift.atomic import atomic_write
from poselift.errors import DataFormatError
from poselift.data.safe_npz import load_npz
from poselift.geometry.camera import CameraParameters
from poselift.skeleton import Skeleton

Positions3D = dict[str, dict[str, np.ndarray]]
Positions2D = dict[str, dict[str, list[np.ndarray]]]


def _atomic_savez(path: Path, **entries) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            np.savez_compressed(f, **entries)

    atomic_write(path, write)


def _require_dict(value, path: Path, field: str) -> dict:
    if not isinstance(value, dict):
        raise DataFormatError(f"{path}: '{field}' should be a dict, got {type(value).__name__}")
    return value


def _check_array(arr, path: Path, field: str, last_dims: tuple[int, ...] | None = None, ndim: int = 3,
                 finite_coords: int = 2) -> np.ndarray:
    if not isinstance(arr, np.ndarray) or arr.ndim != ndim or not np.issubdtype(arr.dtype, np.number):
        desc = f"{arr.dtype} array of shape {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise DataFormatError(f"{path}: {field} should be a numeric (T, J, C) array, got {desc}")
    if last_dims is not None and arr.shape[-1] not in last_dims:
        raise DataFormatError(f"{path}: {field} has {arr.shape[-1]} values per joint, expected {last_dims}")
    if not np.isfinite(arr[..., :finite_coords]).all():
        bad = np.argwhere(~np.isfinite(arr[..., :finite_coords]))[0]
        raise DataFormatError(f"{path}: {field} contains NaN or infinite values (first at frame {bad[0]}, joint {bad[1]})")
    return arr


def load_positions_3d(path: str | Path) -> tuple[Positions3D, dict[str, list[CameraParameters]] | None]:
    """Read ``data_3d_*.npz``; returns positions and, if present, the poselift ``cameras`` extension."""
    path = Path(path)
    entries = load_npz(path)
    if "positions_3d" not in entries:
        raise DataFormatError(f"{path}: missing key 'positions_3d' (found {sorted(entries)}); is this a data_3d file?")
    data = _require_dict(entries["positions_3d"], path, "positions_3d")
    out: Positions3D = {}
    num_joints = None
    for subject, actions in data.items():
        _require_dict(actions, path, f"positions_3d[{subject!r}]")
        out[str(subject)] = {}
        for action, arr in actions.items():
            field = f"positions_3d[{subject!r}][{action!r}]"
            arr = _check_array(arr, path, field, (3,), finite_coords=3)
            if num_joints is None:
                num_joints = arr.shape[1]
            elif arr.shape[1] != num_joints:
                raise DataFormatError(f"{path}: {field} has {arr.shape[1]} joints, others have {num_joints}")
            out[str(subject)][str(action)] = arr.astype(np.float32)
    cameras = None
    if "cameras" in entries:
        raw = _require_dict(entries["cameras"], path, "cameras")
        try:
            cameras = {str(s): [CameraParameters.from_dict(dict(c)) for c in cams] for s, cams in raw.items()}
        except (TypeError, ValueError) as exc:
            raise DataFormatError(f"{path}: 'cameras' entries are not camera parameter dicts ({exc})") from None
    return out, cameras


def save_positions_3d(path: str | Path, positions: Positions3D,
                      cameras: dict[str, list[CameraParameters]] | None = None) -> Path:
    """Write ``data_3d_*.npz`` (atomically: temporary file, then rename)."""
    path = Path(path)
    entries: dict = {"positions_3d": {s: {a: np.asarray(v, dtype=np.float32) for a, v in acts.items()}
                                      for s, acts in positions.items()}}
    if cameras is not None:
        entries["cameras"] = {s: [c.to_dict() for c in cams] for s, cams in cameras.items()}
    _atomic_savez(path, **entries)
    return path


def load_positions_2d(path: str | Path) -> tuple[Positions2D, dict]:
    """Read ``data_2d_*.npz``; returns positions (pixels, float32) and metadata."""
    path = Path(path)
    entries = load_npz(path)
    for key in ("positions_2d", "metadata"):
        if key not in entries:
            raise DataFormatError(f"{path}: missing key '{key}' (found {sorted(entries)}); is this a data_2d file?")
    meta = _require_dict(entries["metadata"], path, "metadata")
    if "keypoints_symmetry" not in meta:
        raise DataFormatError(f"{path}: metadata lacks 'keypoints_symmetry' ([left joints], [right joints])")
    sym = meta["keypoints_symmetry"]
    if len(sym) != 2:
        raise DataFormatError(f"{path}: metadata 'keypoints_symmetry' should hold two lists (left, right)")
    data = _require_dict(entries["positions_2d"], path, "positions_2d")
    out: Positions2D = {}
    num_joints = meta.get("num_joints")
    for subject, actions in data.items():
        _require_dict(actions, path, f"positions_2d[{subject!r}]")
        out[str(subject)] = {}
        for action, per_camera in actions.items():
            if isinstance(per_camera, np.ndarray) and per_camera.dtype != object:
                per_camera = [per_camera]
            if not isinstance(per_camera, (list, tuple)) and not (isinstance(per_camera, np.ndarray)):
                raise DataFormatError(f"{path}: positions_2d[{subject!r}][{action!r}] should be a list per camera")
            cams = []
            for c, arr in enumerate(per_camera):
                field = f"positions_2d[{subject!r}][{action!r}][{c}]"
                arr = _check_array(arr, path, field, (2, 3))
                if num_joints is not None and arr.shape[1] != int(num_joints):
                    raise DataFormatError(f"{path}: {field} has {arr.shape[1]} joints but metadata says {num_joints}")
                cams.append(arr.astype(np.float32))
            out[str(subject)][str(action)] = cams
    meta = dict(meta)
    meta["keypoints_symmetry"] = [list(map(int, sym[0])), list(map(int, sym[1]))]
    return out, meta


def metadata_for(skeleton: Skeleton, video_metadata: dict | None = None) -> dict:
    meta = {"layout_name": skeleton.name, "num_joints": skeleton.num_joints,
            "keypoints_symmetry": [list(skeleton.joints_left), list(skeleton.joints_right)]}
    if video_metadata is not None:
        meta["video_metadata"] = video_metadata
    return meta


def save_positions_2d(path: str | Path, positions: Positions2D, skeleton: Skeleton,
                      video_metadata: dict | None = None) -> Path:
    """Write ``data_2d_*.npz`` with VideoPose3D metadata (``video_metadata`` for the custom format)."""
    path = Path(path)
    data = {s: {a: [np.asarray(c, dtype=np.float32) for c in cams] for a, cams in acts.items()}
            for s, acts in positions.items()}
    _atomic_savez(path, positions_2d=data, metadata=metadata_for(skeleton, video_metadata))
    return path
