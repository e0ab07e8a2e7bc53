"""OpenSim / Pose2Sim ``.trc`` marker files from the pipeline's 3D joints.

TRC ("track row column") is the marker format OpenSim's scaling and inverse
kinematics tools read, and what Pose2Sim writes: five tab-separated header
lines, a blank line, then one row per frame (``Frame#``, ``Time``, then X Y Z
per marker). Frames are numbered from 1 and time is ``(frame - 1) / fps``.

Axes: OpenSim models are Y-up, so the camera-space joints (x right, y down, z
forward) are rotated 180 degrees about x: ``X = x, Y = -y, Z = -z``. The
result is right-handed with Y up and Z pointing from the scene towards the
camera; a person facing the camera faces +Z. The origin stays at the camera
centre (no ground plane is known from one video), so OpenSim users normally
let the scale tool place the model.

Markers are the 17 Human3.6M joints under short names (:data:`MARKER_NAMES`):
``Pelvis, RHip, RKnee, RAnkle, LHip, LKnee, LAnkle, Spine, Thorax, Nose,
Head, LShoulder, LElbow, LWrist, RShoulder, RElbow, RWrist``. ``Nose`` is
Human3.6M's "neck/nose" joint (the lifter's input there is the COCO nose) and
``Head`` is the top of the head. Non-finite coordinates are written as empty
cells, which OpenSim reads as a missing marker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poselift.errors import ConfigError, DataFormatError
from poselift.infer.types import Poses3D
from poselift.io.poses_files import check_poses, write_atomically

__all__ = ["MARKER_NAMES", "camera_to_y_up", "read_trc", "write_trc"]

#: TRC marker name of each Human3.6M-17 joint, in ``H36M_17`` order.
MARKER_NAMES = ("Pelvis", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "Spine", "Thorax",
                "Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist")

_UNIT_SCALE = {"m": 1.0, "mm": 1000.0}
_DECIMALS = {"m": 6, "mm": 3}  # 1 micrometre either way
_HEADER_KEYS = ("DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units",
                "OrigDataRate", "OrigDataStartFrame", "OrigNumFrames")


def camera_to_y_up(points: np.ndarray) -> np.ndarray:
    """(..., 3) camera space (x right, y down, z forward) to Y-up (X = x, Y = -y, Z = -z).

    A 180-degree rotation about x, so handedness is kept; it is its own inverse.
    """
    return np.asarray(points) * np.array([1.0, -1.0, -1.0])


def _number(x: float) -> str:
    return format(float(x), ".10g")  # 30 -> "30", 29.97002997... -> "29.97002997"


def write_trc(poses: Poses3D, path: str | Path, *, units: str = "m") -> Path:
    """Write the 3D joints of ``poses`` as a TRC marker file, Y-up, in ``units`` ("m" or "mm")."""
    if units not in _UNIT_SCALE:
        raise ConfigError(f"TRC units must be one of {sorted(_UNIT_SCALE)}, got {units!r}")
    t = check_poses(poses)
    path = Path(path)
    xyz = camera_to_y_up(np.asarray(poses.keypoints_3d, dtype=np.float64)) * _UNIT_SCALE[units]
    m = len(MARKER_NAMES)
    header = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "\t".join(_HEADER_KEYS),
        "\t".join([_number(poses.fps), _number(poses.fps), str(t), str(m), units,
                   _number(poses.fps), "1", str(t)]),
        "Frame#\tTime\t" + "\t".join(f"{name}\t\t" for name in MARKER_NAMES),
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, m + 1)),
        "",
    ]
    fmt = f"{{:.{_DECIMALS[units]}f}}"
    cells = np.array([fmt.format(v) for v in xyz.reshape(-1)], dtype=object)
    cells[~np.isfinite(xyz.reshape(-1))] = ""  # OpenSim: empty cell = marker missing
    cells = cells.reshape(t, 3 * m)
    rows = [f"{i + 1}\t{i / poses.fps:.6f}\t" + "\t".join(cells[i]) for i in range(t)]
    text = "\n".join(header + rows) + "\n"
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text), "TRC file")


def read_trc(path: str | Path) -> tuple[list[str], np.ndarray, float]:
    """Read a TRC file: ``(marker names, positions (T, M, 3) float64, DataRate)``.

    Positions are in the file's units and axes, unconverted; empty cells are
    NaN. Raises :class:`DataFormatError` naming the file and line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError as e:
        raise DataFormatError(f"{path}: cannot read TRC file ({e.strerror or e})") from None
    if len(lines) < 5 or not lines[0].startswith("PathFileType"):
        raise DataFormatError(f"{path}: line 1: not a TRC file (expected 'PathFileType' and 5 header lines)")
    keys, values = lines[1].split("\t"), lines[2].split("\t")
    header = dict(zip([k.strip() for k in keys], [v.strip() for v in values]))
    try:
        rate = float(header["DataRate"])
        num_markers = int(header["NumMarkers"])
    except (KeyError, ValueError):
        raise DataFormatError(f"{path}: lines 2-3: need numeric DataRate and NumMarkers, "
                              f"got {header}") from None
    names = [c.strip() for c in lines[3].split("\t")[2:] if c.strip()]
    if len(names) != num_markers:
        raise DataFormatError(f"{path}: line 4: NumMarkers is {num_markers} but {len(names)} marker "
                              f"names are listed")
    width = 2 + 3 * num_markers
    rows = []
    for n, line in enumerate(lines[5:], 6):
        if not line.strip():
            continue
        cells = line.rstrip("\r\n").split("\t")
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            raise DataFormatError(f"{path}: line {n}: {len(cells)} cells, expected {width} "
                                  f"(Frame#, Time, 3 x {num_markers} markers)")
        cells = (cells + [""] * width)[:width]  # writers may drop trailing empty cells
        try:
            rows.append([float(c) if c.strip() else np.nan for c in cells[2:]])
        except ValueError:
            raise DataFormatError(f"{path}: line {n}: expected numbers or empty cells") from None
    data = np.array(rows, dtype=np.float64).reshape(len(rows), num_markers, 3)
    return names, data, rate
