"""Metric 3D from several calibrated, synchronised cameras: 2D per camera -> world joints.

With two or more calibrated views, depth need not be guessed by a lifter: each
joint is triangulated. This module is the orchestration behind
``poselift triangulate``:

1. per camera, the main person's COCO-17 keypoints (tracked with
   :func:`poselift.infer.tracking.main_track`; frames where they were only
   interpolated do not count as observations);
2. pixels brought to the calibration's image size (see :func:`_pixel_scale`)
   and undistorted with the camera's lens model;
3. per frame and joint, confidence-weighted DLT with rejection of views that
   reproject farther than ``max_reproj_px`` (:func:`triangulate_robust`);
4. reprojection errors per camera and per joint, the share of points
   triangulated, and the outputs: a TRC marker file, an npz and a JSON report.

Results are in the calibration's world frame, metres, COCO-17 joint order;
joints that could not be triangulated consistently are NaN (never filled in:
gaps are for the user to see, and to interpolate if they choose).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from poselift.atomic import atomic_write, atomic_write_text
from poselift.errors import ConfigError, NoPersonError, OutputError
from poselift.geometry.triangulation import triangulate_robust
from poselift.infer.tracking import main_track
from poselift.infer.types import Detections
from poselift.io.calibration import MultiCameraCalibration, undistort_points
from poselift.skeleton import COCO_17

__all__ = ["TRC_MARKER_NAMES", "MultiviewResult", "main_person_2d", "triangulate_sequence", "write_multiview_outputs",
           "world_to_trc_axes", "write_world_trc"]

_J = 17

#: TRC names of the COCO-17 joints: the names Pose2Sim's COCO_17 marker set uses.
TRC_MARKER_NAMES = ("Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow",
                    "LWrist", "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle")

# Video sizes within this fraction of the calibration's are taken as the same image with a
# few rows or columns cropped or padded by the encoder (Pose2Sim's demo: 1080-wide videos of
# a 1088-wide calibration), so pixels are used as they are.
_SAME_SIZE_TOLERANCE = 0.02


@dataclass
class MultiviewResult:
    """The triangulated sequence and what it rests on."""

    keypoints_3d: np.ndarray  # (T, 17, 3) float64 world metres, COCO-17; NaN where not triangulated
    reprojection_error_px: np.ndarray  # (T, 17) mean over the views used; NaN where not triangulated
    views_used: np.ndarray  # (T, 17) int number of views used
    used: np.ndarray  # (T, 17, C) bool: camera c was used for the joint
    observed: np.ndarray  # (T, 17, C) bool: camera c had a detection with score >= min_score
    errors_per_camera: np.ndarray  # (T, 17, C) px of the final point in every observing camera (rejected ones too)
    camera_names: list[str]
    fps: float
    min_score: float
    max_reproj_px: float
    sources: list[str] = field(default_factory=list)  # 2D source per camera
    notes: list[str] = field(default_factory=list)  # size rescaling, frame count mismatch, cameras without anyone

    @property
    def num_frames(self) -> int:
        return int(self.keypoints_3d.shape[0])

    @property
    def triangulated(self) -> np.ndarray:
        """(T, 17) bool."""
        return np.isfinite(self.keypoints_3d).all(axis=-1)

    def report(self) -> dict:
        """Summary as a JSON-ready dict (NaN -> None)."""
        tri = self.triangulated
        cams = []
        for c, name in enumerate(self.camera_names):
            e = self.errors_per_camera[..., c][self.used[..., c]]
            rejected = self.observed[..., c] & tri & ~self.used[..., c]
            cams.append({
                "name": name,
                "source": self.sources[c] if c < len(self.sources) else "",
                "observed_points": int(self.observed[..., c].sum()),
                "used_points": int(self.used[..., c].sum()),
                "rejected_points": int(rejected.sum()),
                "mean_reprojection_error_px": _stat(np.mean, e),
                "median_reprojection_error_px": _stat(np.median, e),
            })
        joints = {}
        for j, name in enumerate(COCO_17.joint_names):
            e = self.reprojection_error_px[:, j][tri[:, j]]
            joints[name] = {
                "triangulated_share": _stat(np.mean, tri[:, j].astype(float)),
                "mean_views": _stat(np.mean, self.views_used[:, j][tri[:, j]].astype(float)),
                "mean_reprojection_error_px": _stat(np.mean, e),
                "median_reprojection_error_px": _stat(np.median, e),
            }
        all_e = self.reprojection_error_px[tri]
        return {
            "frames": self.num_frames,
            "fps": self.fps,
            "cameras": self.camera_names,
            "joints": list(COCO_17.joint_names),
            "coordinates": "calibration world frame, metres",
            "min_score": self.min_score,
            "max_reprojection_px": self.max_reproj_px,
            "triangulated_share": _stat(np.mean, tri.astype(float)),
            "mean_reprojection_error_px": _stat(np.mean, all_e),
            "median_reprojection_error_px": _stat(np.median, all_e),
            "per_camera": cams,
            "per_joint": joints,
            "notes": list(self.notes),
        }


def _stat(fn, values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(fn(values)) if values.size else None


# ---------------------------------------------------------------------------------------------
# 2D per camera


def main_person_2d(detections: Detections, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """The main person's keypoints (T, 17, 2) px and scores (T, 17) in one camera.

    Scores are 0 in frames where the person was not detected (only
    interpolated by the tracker), so such frames do not count as observations.
    Raises :class:`NoPersonError` when nobody is detected in any frame.
    """
    track = main_track(detections, min_score=min_score)
    scores = np.where(track.detected[:, None], track.scores, 0.0)
    return track.keypoints.astype(np.float64), scores.astype(np.float64)


def _pixel_scale(detections: Detections, size: tuple[int, int], camera: str) -> tuple[np.ndarray, str | None]:
    """Factor (2,) taking the detections' pixels to the calibration's image size, and a note if not 1.

    Same size (within 2%: encoders crop or pad a few rows or columns): used as is.
    Same aspect ratio at another resolution: scaled (the intrinsics scale with the image).
    Width and height swapped: an error, the video is turned with respect to the
    calibration (e.g. a Qualisys camera mounted on its side, ``viewrotation``).
    """
    w, h = detections.meta.width, detections.meta.height
    cw, ch = size
    if not w or not h:
        return np.ones(2), None
    if abs(w - cw) <= _SAME_SIZE_TOLERANCE * cw and abs(h - ch) <= _SAME_SIZE_TOLERANCE * ch:
        note = None if (w, h) == (cw, ch) else (
            f"camera {camera}: video is {w}x{h}, calibration {cw}x{ch}; pixels used as they are (cropping/padding)")
        return np.ones(2), note
    if (w, h) == (ch, cw) or (abs(w - ch) <= _SAME_SIZE_TOLERANCE * ch and abs(h - cw) <= _SAME_SIZE_TOLERANCE * cw):
        raise ConfigError(
            f"camera {camera}: the video ({detections.meta.name or detections.source}) is {w}x{h} but the "
            f"calibration is for {cw}x{ch} images: the video is rotated with respect to the calibration; "
            "rotate it back (for Qualisys, use the videos in the sensor's orientation, not the viewrotation one)")
    sx, sy = cw / w, ch / h
    if abs(sx - sy) <= 0.01 * max(sx, sy):
        return np.array([sx, sy]), (f"camera {camera}: video is {w}x{h}, calibration {cw}x{ch}; "
                                    f"keypoints scaled by {sx:.4g}")
    raise ConfigError(
        f"camera {camera}: the video ({detections.meta.name or detections.source}) is {w}x{h} but the calibration "
        f"is for {cw}x{ch} images, a different aspect ratio; calibrate at the video's resolution")


# ---------------------------------------------------------------------------------------------
# triangulation


def triangulate_sequence(calib: MultiCameraCalibration, detections_per_camera: list[Detections], *,
                         min_score: float = 0.3, max_reproj_px: float = 15.0) -> MultiviewResult:
    """Triangulate the main person of synchronised cameras, frame by frame.

    Args:
        calib: the rig; camera ``c`` of ``calib`` filmed ``detections_per_camera[c]``.
        detections_per_camera: COCO-17 pixel detections per camera (any 2D source).
        min_score: keypoints below this confidence are not used.
        max_reproj_px: views reprojecting farther than this (px) are dropped;
            a joint that needs more than two views dropped is NaN.

    Returns:
        :class:`MultiviewResult` over ``T`` = the shortest camera's frame count
        (frame t of every camera is taken to be the same instant).
    """
    C = len(calib)
    if len(detections_per_camera) != C:
        raise ConfigError(f"{len(detections_per_camera)} keypoint sources for {C} cameras in the calibration "
                          f"{calib.source or ''} ({', '.join(calib.names)}); give one per camera, in that order")
    if C < 2:
        raise ConfigError(f"triangulation needs at least 2 cameras; the calibration {calib.source} has {C}")
    if not 0.0 <= min_score <= 1.0:
        raise ConfigError(f"min_score must be in [0, 1], got {min_score}")
    if not max_reproj_px > 0:
        raise ConfigError(f"max_reproj_px must be positive, got {max_reproj_px}")
    notes: list[str] = []
    counts = [d.num_frames for d in detections_per_camera]
    T = min(counts)
    if T == 0:
        empty = [calib[c].name for c, n in enumerate(counts) if n == 0]
        raise ConfigError(f"no frames in the 2D keypoints of camera(s) {', '.join(empty)}")
    if len(set(counts)) > 1:
        notes.append(f"frame counts differ between cameras ({dict(zip(calib.names, counts))}); "
                     f"the first {T} frames are used")
    fps_values = [d.meta.fps for d in detections_per_camera]
    fps = float(fps_values[0])
    if any(abs(f - fps) > 1e-3 * fps for f in fps_values):
        notes.append(f"frame rates differ between cameras ({dict(zip(calib.names, fps_values))}); {fps:g} is used")

    pts = np.full((C, T, _J, 2), np.nan)
    weights = np.zeros((C, T, _J))
    with_person = 0
    for c, (cam, det) in enumerate(zip(calib, detections_per_camera)):
        scale, note = _pixel_scale(det, cam.size, cam.name)
        if note:
            notes.append(note)
        try:
            kp, sc = main_person_2d(det, min_score)
        except NoPersonError:
            notes.append(f"camera {cam.name}: nobody detected in any frame")
            continue
        with_person += 1
        kp, sc = kp[:T] * scale, sc[:T]
        ok = (sc >= min_score) & (sc > 0) & np.isfinite(kp).all(axis=-1)
        und = undistort_points(cam, np.where(ok[..., None], kp, np.nan).reshape(-1, 2)).reshape(T, _J, 2)
        pts[c] = und
        weights[c] = np.where(ok, sc, 0.0)
    if with_person < 2:
        raise NoPersonError(f"a person is detected in {with_person} of {C} cameras; triangulation needs 2")

    res = triangulate_robust(pts.reshape(C, T * _J, 2), calib.projection_matrices(), weights.reshape(C, T * _J),
                             max_error=max_reproj_px)
    used = res.views_used.reshape(C, T, _J).transpose(1, 2, 0)
    return MultiviewResult(
        keypoints_3d=res.points.reshape(T, _J, 3),
        reprojection_error_px=res.mean_error.reshape(T, _J),
        views_used=used.sum(axis=-1),
        used=used,
        observed=(weights > 0).transpose(1, 2, 0),
        errors_per_camera=res.errors.reshape(C, T, _J).transpose(1, 2, 0),
        camera_names=calib.names,
        fps=fps,
        min_score=float(min_score),
        max_reproj_px=float(max_reproj_px),
        sources=[d.source for d in detections_per_camera],
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------
# outputs


def world_to_trc_axes(points: np.ndarray, up: str = "z") -> np.ndarray:
    """(..., 3) world points to OpenSim's Y-up axes.

    ``up="z"`` (Qualisys, Pose2Sim, most lab rigs): ``(X, Y, Z)_trc = (y, z, x)``,
    the axis permutation Pose2Sim applies, so files from both tools agree.
    ``up="y"``: written as they are.
    """
    p = np.asarray(points, dtype=np.float64)
    if up == "z":
        return p[..., [1, 2, 0]]
    if up == "y":
        return p.copy()
    raise ConfigError(f"up axis must be 'z' or 'y', got {up!r}")


def write_world_trc(keypoints_3d: np.ndarray, fps: float, path: str | Path, *, up: str = "z") -> Path:
    """Write (T, 17, 3) world COCO-17 joints (metres) as a TRC marker file, Y-up.

    ``poselift.io.trc.write_trc`` writes a lifter's camera-space Human3.6M joints;
    world-frame COCO joints need another axis change and marker set, hence this.
    NaN coordinates are written as empty cells (OpenSim: marker missing).
    """
    path = Path(path)
    xyz = world_to_trc_axes(keypoints_3d, up)
    T, M = xyz.shape[0], xyz.shape[1]
    rate = format(float(fps), ".10g")
    out = io.StringIO()
    out.write(f"PathFileType\t4\t(X/Y/Z)\t{path.name}\n")
    out.write("DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames\n")
    out.write(f"{rate}\t{rate}\t{T}\t{M}\tm\t{rate}\t1\t{T}\n")
    out.write("Frame#\tTime\t" + "\t".join(f"{n}\t\t" for n in TRC_MARKER_NAMES[:M]) + "\n")
    out.write("\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, M + 1)) + "\n\n")
    flat = xyz.reshape(T, 3 * M)
    for t in range(T):
        cells = ["" if not np.isfinite(v) else f"{v:.6f}" for v in flat[t]]
        out.write(f"{t + 1}\t{t / fps:.6f}\t" + "\t".join(cells) + "\n")
    try:
        return atomic_write_text(path, out.getvalue())
    except OSError as exc:
        raise OutputError(f"cannot write TRC file {path}: {exc}") from None


def write_multiview_outputs(result: MultiviewResult, out_dir: str | Path, *, stem: str = "triangulation",
                            up: str = "z") -> dict[str, Path]:
    """Write ``<stem>.trc``, ``<stem>.npz`` and ``<stem>_report.json`` into ``out_dir``.

    The npz holds ``keypoints_3d`` (T, 17, 3) world metres COCO-17,
    ``reprojection_error_px`` (T, 17), ``views_used`` (T, 17), plus
    ``reprojection_error_per_camera_px`` (T, 17, C), ``used`` (T, 17, C),
    ``camera_names``, ``joint_names`` and ``fps``.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out_dir}: {exc}") from None
    paths = {"trc": out_dir / f"{stem}.trc", "npz": out_dir / f"{stem}.npz", "report": out_dir / f"{stem}_report.json"}
    write_world_trc(result.keypoints_3d, result.fps, paths["trc"], up=up)

    def _npz(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                keypoints_3d=result.keypoints_3d.astype(np.float32),
                reprojection_error_px=result.reprojection_error_px.astype(np.float32),
                views_used=result.views_used.astype(np.int8),
                reprojection_error_per_camera_px=result.errors_per_camera.astype(np.float32),
                used=result.used,
                camera_names=np.array(result.camera_names),
                joint_names=np.array(COCO_17.joint_names),
                fps=np.float64(result.fps),
            )

    try:
        atomic_write(paths["npz"], _npz)
        atomic_write_text(paths["report"], json.dumps(result.report(), indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write outputs into {out_dir}: {exc}") from None
    return paths
