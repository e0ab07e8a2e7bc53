"""Calibrations of synchronised multi-camera rigs: read, write, project, undistort.

Multi-view triangulation needs, per camera, where a world point lands in the
image. Two file formats cover what people who film with several cameras have:

- Pose2Sim's TOML (also written by Sports2D, Caliscope and poselift itself):
  one table per camera with OpenCV intrinsics, a Rodrigues world->camera
  rotation and a translation in metres.
- Qualisys ``.qca.txt`` exports, converted exactly as Pose2Sim 0.10.49 does
  (``calib_qca_fun`` / ``read_qca``) so that a rig calibrated in QTM gives the
  same cameras here as there.

Conventions (OpenCV): ``x_cam = R @ X_world + t``; camera axes x right, y down,
z forward; pixels with the origin at the top-left pixel's centre; distortion
``(k1, k2, p1, p2[, k3])`` of OpenCV's pinhole model, or ``(k1, k2, k3, k4)``
of ``cv2.fisheye`` when ``fisheye`` is true.
"""

from __future__ import annotations

import math
import re
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from poselift.atomic import atomic_write_text
from poselift.errors import DataFormatError, OutputError

__all__ = [
    "CameraCalibration",
    "MultiCameraCalibration",
    "project",
    "read_calibration",
    "read_calibration_toml",
    "read_qualisys_qca",
    "undistort_points",
    "write_calibration_toml",
]

# Qualisys stores intrinsics in sensor sub-pixels: 64 per pixel.
QUALISYS_SUBPIXELS = 64.0

# Tables of a Pose2Sim TOML that are not cameras.
_NON_CAMERA_TABLES = frozenset({"metadata", "capture_volume", "charuco", "checkerboard"})


@dataclass
class CameraCalibration:
    """One calibrated camera.

    Attributes:
        name: camera name (the TOML's ``name``, the Qualisys ``serial``).
        size: image size ``(width, height)`` in pixels the intrinsics refer to.
        K: (3, 3) intrinsic matrix, pixels.
        dist: (4,) or (5,) OpenCV distortion ``k1, k2, p1, p2[, k3]``
            (fisheye: ``k1, k2, k3, k4``).
        R: (3, 3) world->camera rotation.
        t: (3,) translation in metres, ``x_cam = R @ X_world + t``.
        fisheye: use ``cv2.fisheye``'s model instead of the pinhole one.
        extra: what the source file said beyond the model (e.g. Qualisys
            ``viewrotation``, ``avg-residual``), for reports.
    """

    name: str
    size: tuple[int, int]
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray
    fisheye: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        self.dist = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        self.R = np.asarray(self.R, dtype=np.float64).reshape(3, 3)
        self.t = np.asarray(self.t, dtype=np.float64).reshape(3)
        self.size = (int(round(float(self.size[0]))), int(round(float(self.size[1]))))

    @property
    def rvec(self) -> np.ndarray:
        """(3,) Rodrigues vector of ``R`` (what Pose2Sim's TOML stores)."""
        return cv2.Rodrigues(self.R)[0].reshape(3)

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in world coordinates, metres."""
        return -self.R.T @ self.t

    def extrinsic_matrix(self) -> np.ndarray:
        """(3, 4) ``[R | t]``: projection of world points to normalised image coordinates."""
        return np.hstack([self.R, self.t[:, None]])

    def projection_matrix(self) -> np.ndarray:
        """(3, 4) ``K [R | t]``: projection to undistorted pixels."""
        return self.K @ self.extrinsic_matrix()


@dataclass
class MultiCameraCalibration:
    """The cameras of one rig, in file order (the order keypoint files are given in)."""

    cameras: list[CameraCalibration]
    source: str = ""  # file it was read from, for messages and reports

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self):
        return iter(self.cameras)

    def __getitem__(self, index: int) -> CameraCalibration:
        return self.cameras[index]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def projection_matrices(self) -> np.ndarray:
        """(C, 3, 4) ``K [R | t]`` of every camera."""
        return np.stack([c.projection_matrix() for c in self.cameras])


# ---------------------------------------------------------------------------------------------
# projection and undistortion


def project(camera: CameraCalibration, points_world: np.ndarray) -> np.ndarray:
    """Project world points to distorted pixels.

    Args:
        camera: the camera.
        points_world: (N, 3) metres, world frame.

    Returns:
        (N, 2) pixels. Points behind the camera (z <= 0) give NaN: a pinhole
        image of them does not exist and a number there would be misleading.
    """
    X = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    Xc = X @ camera.R.T + camera.t
    behind = ~(Xc[:, 2] > 0)
    Xc = np.where(behind[:, None], np.array([0.0, 0.0, 1.0]), Xc)
    if camera.fisheye:
        pts, _ = cv2.fisheye.projectPoints(Xc.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), camera.K,
                                           _fisheye_dist(camera))
        out = pts.reshape(-1, 2)
    else:
        x = Xc[:, 0] / Xc[:, 2]
        y = Xc[:, 1] / Xc[:, 2]
        k1, k2, p1, p2, k3 = _pinhole_dist(camera)
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        K = camera.K
        out = np.stack([K[0, 0] * xd + K[0, 1] * yd + K[0, 2], K[1, 1] * yd + K[1, 2]], axis=-1)
    out[behind] = np.nan
    return out


def undistort_points(camera: CameraCalibration, points_px: np.ndarray, *, normalized: bool = False) -> np.ndarray:
    """Remove lens distortion from pixel coordinates.

    Args:
        camera: the camera the points were seen by.
        points_px: (N, 2) distorted pixels; NaN rows stay NaN.
        normalized: return normalised image coordinates ``(x/z, y/z)`` instead
            of undistorted pixels (``K`` applied again).

    Returns:
        (N, 2) undistorted pixels (or normalised coordinates).
    """
    pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
    out = np.full_like(pts, np.nan)
    ok = np.isfinite(pts).all(axis=1)
    if ok.any():
        src = pts[ok].reshape(-1, 1, 2)
        P = None if normalized else camera.K
        if camera.fisheye:
            und = cv2.fisheye.undistortPoints(src, camera.K, _fisheye_dist(camera), P=P)
        else:
            # The iterative solver's default (5 iterations) leaves ~0.1 px at strong distortion;
            # these criteria take it to numerical precision at no noticeable cost.
            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
            und = cv2.undistortPointsIter(src, camera.K, _pinhole_dist(camera), None, P, criteria)
        out[ok] = und.reshape(-1, 2)
    return out


def _pinhole_dist(camera: CameraCalibration) -> np.ndarray:
    """(5,) ``k1, k2, p1, p2, k3`` from the stored 4, 5 (or more: extra terms must be zero) values."""
    d = np.zeros(5)
    n = min(len(camera.dist), 5)
    d[:n] = camera.dist[:n]
    if len(camera.dist) > 5 and np.any(camera.dist[5:]):
        raise DataFormatError(f"camera {camera.name}: only distortion k1, k2, p1, p2, k3 is supported, "
                              f"got {len(camera.dist)} coefficients")
    return d


def _fisheye_dist(camera: CameraCalibration) -> np.ndarray:
    d = np.zeros(4)
    n = min(len(camera.dist), 4)
    d[:n] = camera.dist[:n]
    return d


# ---------------------------------------------------------------------------------------------
# readers


def read_calibration(path: str | Path, *, binning_factor: int = 1) -> MultiCameraCalibration:
    """Read a Pose2Sim ``.toml`` or a Qualisys ``.qca.txt`` calibration (chosen by content).

    ``binning_factor`` only applies to Qualisys files (see :func:`read_qualisys_qca`).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"calibration file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataFormatError(f"calibration file {path} cannot be read: {exc}") from None
    head = text.lstrip()[:200].lower()
    if head.startswith("<?xml") or head.startswith("<calibration"):
        return read_qualisys_qca(path, binning_factor=binning_factor)
    if path.suffix.lower() == ".toml" or re.search(r"^\s*\[[^\]]+\]", text, re.M):
        return read_calibration_toml(path)
    raise DataFormatError(f"calibration file {path}: expected a Pose2Sim .toml or a Qualisys .qca.txt (XML) file")


def read_calibration_toml(path: str | Path) -> MultiCameraCalibration:
    """Read a Pose2Sim calibration TOML.

    Every table except ``metadata`` (and Pose2Sim's ``capture_volume``,
    ``charuco``, ``checkerboard``) is a camera with keys ``name``, ``size``
    ``[w, h]``, ``matrix`` (3x3), ``distortions`` ``[k1, k2, p1, p2(, k3)]``,
    ``rotation`` (Rodrigues, world->camera), ``translation`` (metres) and
    optionally ``fisheye``. Cameras keep the file's order.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"calibration file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataFormatError(f"calibration file {path} is not valid TOML: {exc}") from None
    cameras = []
    for key, table in data.items():
        if key in _NON_CAMERA_TABLES or not isinstance(table, dict):
            continue
        where = f"calibration file {path}, camera [{key}]"
        size = _toml_array(table, "size", (2,), where)
        K = _toml_array(table, "matrix", (3, 3), where)
        dist = _toml_array(table, "distortions", None, where)
        if dist.ndim != 1 or len(dist) not in (4, 5, 8, 12, 14):
            raise DataFormatError(f"{where}: field 'distortions' must be [k1, k2, p1, p2] or [k1, k2, p1, p2, k3], "
                                  f"got {table['distortions']!r}")
        rvec = _toml_array(table, "rotation", None, where)
        if rvec.shape == (3, 3):  # a few tools write the matrix itself
            R = rvec
        elif rvec.shape == (3,):
            R = cv2.Rodrigues(rvec)[0]
        else:
            raise DataFormatError(f"{where}: field 'rotation' must be a Rodrigues vector [rx, ry, rz], "
                                  f"got {table['rotation']!r}")
        t = _toml_array(table, "translation", (3,), where)
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) <= 0:
            raise DataFormatError(f"{where}: field 'rotation' is not a rotation")
        fisheye = table.get("fisheye", False)
        if not isinstance(fisheye, bool):
            raise DataFormatError(f"{where}: field 'fisheye' must be true or false, got {fisheye!r}")
        cameras.append(CameraCalibration(name=str(table.get("name", key)), size=(size[0], size[1]), K=K,
                                         dist=dist, R=R, t=t, fisheye=fisheye, extra={"table": key}))
    if not cameras:
        raise DataFormatError(f"calibration file {path}: no camera tables (expected e.g. [cam_01] with "
                              "name, size, matrix, distortions, rotation, translation)")
    return MultiCameraCalibration(cameras, source=str(path))


def _toml_array(table: dict, key: str, shape: tuple[int, ...] | None, where: str) -> np.ndarray:
    if key not in table:
        raise DataFormatError(f"{where}: field {key!r} is missing")
    try:
        arr = np.asarray(table[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFormatError(f"{where}: field {key!r} must be numbers, got {table[key]!r}") from None
    if shape is not None and arr.shape != shape:
        raise DataFormatError(f"{where}: field {key!r} must have shape {list(shape)}, got {table[key]!r}")
    if not np.all(np.isfinite(arr)):
        raise DataFormatError(f"{where}: field {key!r} has non-finite values: {table[key]!r}")
    return arr


def read_qualisys_qca(path: str | Path, *, binning_factor: int = 1) -> MultiCameraCalibration:
    """Read a Qualisys ``.qca.txt`` export, converted the way Pose2Sim 0.10.49 converts it.

    What the conversion does (Pose2Sim ``read_qca`` + ``calib_qca_fun``):

    - cameras: those whose ``model`` says ``video`` or ``none`` (marker-only
      cameras have no video), sorted by serial in natural order;
    - image size: the ``fov_video`` window, ``right - left + 1`` by
      ``bottom - top + 1``, divided by ``binning_factor``;
    - intrinsics: focal lengths and principal point are in 1/64 sensor pixels:
      divided by 64 and by ``binning_factor``, and the principal point shifted
      by the ``fov_video`` window's ``left, top``; Pose2Sim divides the
      distortion coefficients by 64 (and the binning factor) too, so this does;
    - extrinsics: the ``transform`` is the camera position in the world (mm)
      and a rotation ``M`` (rows ``r11 r12 r13 / ...``) that takes world axes to
      Qualisys camera axes, whose y points up and z backwards; OpenCV's camera
      turns these by pi about x: ``R = diag(1, -1, -1) @ M`` and
      ``t = -R @ position / 1000``.

    The ``viewrotation`` attribute (how QTM displays a camera mounted on its
    side) is not applied, as in Pose2Sim: videos must be in the sensor's
    orientation, the ``fov_video`` size. It is kept in ``extra``.
    """
    path = Path(path)
    if binning_factor <= 0:
        raise DataFormatError(f"binning factor must be a positive integer, got {binning_factor}")
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DataFormatError(f"calibration file {path} is not a readable Qualisys XML (.qca.txt): {exc}") from None
    cams_xml = root.findall("cameras/camera")
    if not cams_xml:
        raise DataFormatError(f"calibration file {path}: no <cameras><camera> elements (not a Qualisys .qca.txt?)")
    cameras = []
    for i, cam in enumerate(cams_xml):
        serial = cam.get("serial", str(i))
        where = f"calibration file {path}, camera {serial}"
        model = cam.get("model", "").lower()
        if "video" not in model and "none" not in model:
            continue
        fov = _xml_child(cam, "fov_video", where)
        left, top, right, bottom = (_xml_float(fov, k, where) for k in ("left", "top", "right", "bottom"))
        intr = _xml_child(cam, "intrinsic", where)
        scale = QUALISYS_SUBPIXELS * binning_factor
        fu, fv, cu, cv = (_xml_float(intr, k, where) for k in ("focalLengthU", "focalLengthV", "centerPointU", "centerPointV"))
        K = np.array([[fu / scale, 0.0, cu / scale - left], [0.0, fv / scale, cv / scale - top], [0.0, 0.0, 1.0]])
        dist = np.array([_xml_float(intr, k, where) for k in
                         ("radialDistortion1", "radialDistortion2", "tangentalDistortion1", "tangentalDistortion2")]) / scale
        tr = _xml_child(cam, "transform", where)
        M = np.array([[_xml_float(tr, f"r{r}{c}", where) for c in (1, 2, 3)] for r in (1, 2, 3)])
        position = np.array([_xml_float(tr, k, where) for k in ("x", "y", "z")]) / 1000.0
        if not np.allclose(M @ M.T, np.eye(3), atol=1e-4):
            raise DataFormatError(f"{where}: <transform> r11..r33 is not a rotation matrix")
        R = np.diag([1.0, -1.0, -1.0]) @ M
        t = -R @ position
        size = ((right - left + 1) / binning_factor, (bottom - top + 1) / binning_factor)
        extra = {"viewrotation": int(float(cam.get("viewrotation", "0") or 0)),
                 "avg_residual": float(cam.get("avg-residual", "nan") or "nan")}
        cameras.append(CameraCalibration(name=serial, size=size, K=K, dist=dist, R=R, t=t, extra=extra))
    if not cameras:
        raise DataFormatError(f"calibration file {path}: no video cameras (model 'video' or 'none'); "
                              "marker-only cameras cannot be used with videos")
    cameras.sort(key=lambda c: _natural_key(c.name))
    return MultiCameraCalibration(cameras, source=str(path))


def _xml_child(elem: ET.Element, tag: str, where: str) -> ET.Element:
    child = elem.find(tag)
    if child is None:
        raise DataFormatError(f"{where}: element <{tag}> is missing")
    return child


def _xml_float(elem: ET.Element, key: str, where: str) -> float:
    value = elem.get(key)
    if value is None:
        raise DataFormatError(f"{where}: <{elem.tag}> has no attribute {key!r}")
    try:
        out = float(value)
    except ValueError:
        raise DataFormatError(f"{where}: <{elem.tag} {key}={value!r}> is not a number") from None
    if not math.isfinite(out):
        raise DataFormatError(f"{where}: <{elem.tag} {key}={value!r}> is not finite")
    return out


def _natural_key(name: str) -> list:
    """'cam2' before 'cam10', as Pose2Sim orders cameras."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


# ---------------------------------------------------------------------------------------------
# writer


def write_calibration_toml(calib: MultiCameraCalibration, path: str | Path) -> Path:
    """Write ``calib`` as a Pose2Sim calibration TOML (atomically); returns the path.

    Numbers are written with ``repr`` so that reading the file back gives the
    same floats (the rotation goes through Rodrigues, exact to ~1e-15).
    """
    lines = []
    used: set[str] = set()
    for i, cam in enumerate(calib.cameras):
        table = _toml_key(cam.name, i, used)
        K = cam.K
        lines += [
            f"[{table}]",
            f"name = {_toml_string(cam.name)}",
            f"size = [ {float(cam.size[0])!r}, {float(cam.size[1])!r}]",
            "matrix = [ " + ", ".join("[ " + ", ".join(repr(float(v)) for v in row) + "]" for row in K) + "]",
            "distortions = [ " + ", ".join(repr(float(v)) for v in cam.dist) + "]",
            "rotation = [ " + ", ".join(repr(float(v)) for v in cam.rvec) + "]",
            "translation = [ " + ", ".join(repr(float(v)) for v in cam.t) + "]",
            f"fisheye = {'true' if cam.fisheye else 'false'}",
            "",
        ]
    lines += ["[metadata]", "adjusted = false", "error = 0.0", ""]
    try:
        return atomic_write_text(path, "\n".join(lines))
    except OSError as exc:
        raise OutputError(f"cannot write calibration file {path}: {exc}") from None


def _toml_key(name: str, index: int, used: set[str]) -> str:
    """A bare TOML table key from the camera name (Pose2Sim uses the name as the table key)."""
    key = re.sub(r"[^A-Za-z0-9_-]", "_", name) or f"cam_{index + 1:02d}"
    if key in _NON_CAMERA_TABLES:
        key = f"cam_{key}"
    base, n = key, 2
    while key in used:
        key, n = f"{base}_{n}", n + 1
    used.add(key)
    return key


def _toml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
