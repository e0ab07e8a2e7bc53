"""The video pipeline's result (:class:`~poselift.infer.types.Poses3D`) as npz, JSON and CSV files.

Three audiences, three formats:

* ``.npz`` for NumPy users and for reading back into poselift: full precision,
  no pickled objects (``np.load`` without ``allow_pickle`` reads it, so a
  downloaded file can never run code), ``info`` stored as a JSON string.
* ``.json`` for web and other languages: self-describing (units, axes, joint
  names), values rounded to 0.1 mm / 0.01 px so files stay small.
* ``.csv`` for spreadsheets and pandas: one row per frame, one column per
  coordinate.

Coordinates are written as the pipeline produces them: 3D joints in metres,
camera space (x right, y down, z forward), Human3.6M-17 order; 2D keypoints in
pixels, COCO-17 order. The Y-up conversions for animation and biomechanics
tools live in :mod:`poselift.io.trc` and :mod:`poselift.io.bvh_export`.

Every writer goes through :func:`write_atomically`: the file appears complete
or not at all, and an unwritable path raises :class:`OutputError` naming it.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from poselift.atomic import atomic_write
from poselift.errors import DataFormatError, OutputError
from poselift.infer.types import Poses3D, VideoMeta
from poselift.skeleton import COCO_17, H36M_17

__all__ = [
    "JSON_FORMAT",
    "NPZ_KEYS",
    "check_poses",
    "csv_header",
    "read_poses_npz",
    "write_atomically",
    "write_poses_csv",
    "write_poses_json",
    "write_poses_npz",
]

JSON_FORMAT = "poselift-poses3d/1"
NPZ_KEYS = ("keypoints_3d", "keypoints_2d", "scores_2d", "valid", "detected", "fps",
            "joint_names_3d", "joint_names_2d", "width", "height", "info_json")
_COORDINATE_SYSTEM = "camera: x right, y down, z forward"


def write_atomically(path: str | Path, write: Callable[[str], None], what: str) -> Path:
    """``atomic_write`` that turns any OS failure into one :class:`OutputError` naming ``path``.

    ``what`` names the content for the message ("BVH file", "poses CSV").
    """
    path = Path(path)
    try:
        return atomic_write(path, write)
    except OSError as e:
        raise OutputError(f"{path}: cannot write the {what} ({e.strerror or e})") from None


def check_poses(poses: Poses3D) -> int:
    """Check every array of ``poses`` has the documented shape; returns T (the frame count)."""
    t = poses.num_frames
    expected = {
        "keypoints_3d": (t, H36M_17.num_joints, 3),
        "keypoints_2d": (t, COCO_17.num_joints, 2),
        "scores_2d": (t, COCO_17.num_joints),
        "valid": (t,),
        "detected": (t,),
    }
    for name, shape in expected.items():
        got = np.shape(getattr(poses, name))
        if got != shape:
            raise DataFormatError(f"Poses3D.{name} has shape {got}, expected {shape} (T={t} frames)")
    if not (np.isfinite(poses.fps) and poses.fps > 0):
        raise DataFormatError(f"Poses3D.fps must be a positive number, got {poses.fps}")
    return t


def _json_default(obj: Any) -> Any:
    # info dicts carry NumPy scalars, arrays and paths; everything else becomes its str()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _info_json(info: dict) -> str:
    return json.dumps(_finite_only(info), default=_json_default, sort_keys=True)


def _finite_only(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by None, so the JSON stays strict (no NaN tokens)."""
    if isinstance(obj, dict):
        return {str(k): _finite_only(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_only(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite_only(obj.tolist())
    if isinstance(obj, (float, np.floating)) and not math.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------------------- npz


def write_poses_npz(poses: Poses3D, path: str | Path) -> Path:
    """Write ``poses`` as an ``.npz`` with the keys in :data:`NPZ_KEYS` (no object arrays)."""
    check_poses(poses)
    arrays = {
        "keypoints_3d": np.asarray(poses.keypoints_3d, dtype=np.float32),
        "keypoints_2d": np.asarray(poses.keypoints_2d, dtype=np.float32),
        "scores_2d": np.asarray(poses.scores_2d, dtype=np.float32),
        "valid": np.asarray(poses.valid, dtype=bool),
        "detected": np.asarray(poses.detected, dtype=bool),
        "fps": np.float64(poses.fps),
        "joint_names_3d": np.array(H36M_17.joint_names),  # fixed-width unicode, not object
        "joint_names_2d": np.array(COCO_17.joint_names),
        "width": np.int64(poses.meta.width),
        "height": np.int64(poses.meta.height),
        "info_json": np.array(_info_json(poses.info)),
    }

    def write(tmp: str) -> None:
        # A file object, not the name: np.savez would append ".npz" to the temporary name.
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    return write_atomically(path, write, "poses npz")


def read_poses_npz(path: str | Path) -> Poses3D:
    """Read a file written by :func:`write_poses_npz` back into a :class:`Poses3D`.

    ``meta.name`` is empty (the npz does not store the video's name) and
    ``meta.num_frames`` is T. Raises :class:`DataFormatError` naming the file
    and the missing key or wrong shape.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: poses npz file does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise DataFormatError(f"{path}: not a poselift poses npz: missing keys {missing} "
                                      f"(expected {list(NPZ_KEYS)})")
            d = {k: z[k] for k in NPZ_KEYS}
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataFormatError(f"{path}: not a readable .npz file ({e})") from None
    except ValueError as e:  # object arrays (allow_pickle=False) or a corrupt entry
        raise DataFormatError(f"{path}: unreadable entry ({e})") from None

    k3 = d["keypoints_3d"]
    if k3.ndim != 3 or k3.shape[1:] != (H36M_17.num_joints, 3):
        raise DataFormatError(f"{path}: keypoints_3d has shape {k3.shape}, expected (T, 17, 3)")
    t = k3.shape[0]
    expected = {"keypoints_2d": (t, COCO_17.num_joints, 2), "scores_2d": (t, COCO_17.num_joints),
                "valid": (t,), "detected": (t,), "fps": (), "width": (), "height": (), "info_json": ()}
    for key, shape in expected.items():
        if d[key].shape != shape:
            raise DataFormatError(f"{path}: {key} has shape {d[key].shape}, expected {shape} (T={t})")
    for key, skeleton in (("joint_names_3d", H36M_17), ("joint_names_2d", COCO_17)):
        if tuple(str(s) for s in d[key].reshape(-1)) != skeleton.joint_names:
            raise DataFormatError(f"{path}: {key} is {d[key].tolist()}, expected the "
                                  f"{skeleton.name} joints {list(skeleton.joint_names)}")
    try:
        info = json.loads(str(d["info_json"]))
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}: info_json is not valid JSON ({e})") from None
    fps = float(d["fps"])
    meta = VideoMeta(width=int(d["width"]), height=int(d["height"]), fps=fps, num_frames=t)
    return Poses3D(
        keypoints_3d=k3.astype(np.float32),
        keypoints_2d=d["keypoints_2d"].astype(np.float32),
        scores_2d=d["scores_2d"].astype(np.float32),
        valid=d["valid"].astype(bool),
        detected=d["detected"].astype(bool),
        fps=fps,
        meta=meta,
        info=info if isinstance(info, dict) else {"info": info},
    )


# --------------------------------------------------------------------------- json


def _rounded_lists(a: np.ndarray, decimals: int) -> list:
    """Nested lists of ``a`` rounded to ``decimals``, non-finite values as None (strict JSON)."""
    a = np.asarray(a, dtype=np.float64)
    out = np.round(a, decimals).astype(object)
    out[~np.isfinite(a)] = None
    return out.tolist()


def write_poses_json(poses: Poses3D, path: str | Path) -> Path:
    """Write ``poses`` as self-describing JSON (format ``poselift-poses3d/1``).

    Layout: ``{"format", "fps", "width", "height", "joint_names_3d",
    "joint_names_2d", "units", "coordinate_system", "frames": [{"frame",
    "valid", "detected", "keypoints_3d": 17 x [x, y, z] metres (0.1 mm),
    "keypoints_2d": 17 x [u, v] pixels (0.01 px), "scores_2d": 17 (1e-4)}],
    "info"}``. Non-finite values are written as null.
    """
    t = check_poses(poses)
    k3 = _rounded_lists(poses.keypoints_3d, 4)
    k2 = _rounded_lists(poses.keypoints_2d, 2)
    sc = _rounded_lists(poses.scores_2d, 4)
    valid = np.asarray(poses.valid, dtype=bool).tolist()
    detected = np.asarray(poses.detected, dtype=bool).tolist()
    doc = {
        "format": JSON_FORMAT,
        "fps": float(poses.fps),
        "width": int(poses.meta.width),
        "height": int(poses.meta.height),
        "joint_names_3d": list(H36M_17.joint_names),
        "joint_names_2d": list(COCO_17.joint_names),
        "units": "metres",
        "coordinate_system": _COORDINATE_SYSTEM,
        "frames": [
            {"frame": i, "valid": valid[i], "detected": detected[i],
             "keypoints_3d": k3[i], "keypoints_2d": k2[i], "scores_2d": sc[i]}
            for i in range(t)
        ],
        "info": _finite_only(poses.info),
    }
    text = json.dumps(doc, default=_json_default, allow_nan=False, separators=(",", ":"))
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text + "\n"), "poses JSON")


# ---------------------------------------------------------------------------- csv


def csv_header() -> list[str]:
    """Column names of :func:`write_poses_csv`, in order."""
    cols = ["frame", "time_s", "valid", "detected"]
    cols += [f"{name}_{axis}" for name in H36M_17.joint_names for axis in "xyz"]
    cols += [f"{name}_{part}" for name in COCO_17.joint_names for part in ("u", "v", "score")]
    return cols


def write_poses_csv(poses: Poses3D, path: str | Path) -> Path:
    """One row per frame: ``frame, time_s, valid, detected`` (0/1), then ``<h36m joint>_x/_y/_z``
    (metres, camera space, 1 µm resolution), then ``<coco joint>_u/_v/_score`` (pixels, 0.001 px).

    Non-finite values are written as ``nan`` (read as NaN by pandas and NumPy).
    """
    t = check_poses(poses)
    frames = np.arange(t)
    k3 = np.asarray(poses.keypoints_3d, dtype=np.float64).reshape(t, -1)
    uvs = np.concatenate([np.asarray(poses.keypoints_2d, dtype=np.float64),
                          np.asarray(poses.scores_2d, dtype=np.float64)[..., None]], axis=-1).reshape(t, -1)
    lead = np.stack([frames, frames / poses.fps, np.asarray(poses.valid, dtype=float),
                     np.asarray(poses.detected, dtype=float)], axis=1)
    table = np.concatenate([lead, k3, uvs], axis=1)
    fmt = ["%d", "%.6f", "%d", "%d"] + ["%.6f"] * k3.shape[1] + ["%.3f", "%.3f", "%.4f"] * COCO_17.num_joints

    def write(tmp: str) -> None:
        buf = io.StringIO()
        np.savetxt(buf, table, fmt=fmt, delimiter=",", header=",".join(csv_header()), comments="")
        Path(tmp).write_text(buf.getvalue())

    return write_atomically(path, write, "poses CSV")
