"""From a video (or a file of 2D keypoints) to 3D joints, files, a rendered video and a browser viewer.

    video ─► decode ─► detect 2D ─► track the main person ─► lift ─► export ─► render ─► viewer

Each stage reports its wall time; the summary gives frames per second per stage.
Every output is written under a temporary name and renamed, so an interrupted
run never leaves a half-written file; the output folder is checked for
writability before any expensive work starts.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from poselift.atomic import atomic_write_text
from poselift.errors import ConfigError, OutputError
from poselift.infer.lifting import LiftConfig, lift_normalized, lift_track, load_lifter_for_video
from poselift.infer.types import Detections, Poses3D, Track2D, VideoMeta
from poselift.models.registry import input_joints

__all__ = ["InferConfig", "PipelineResult", "StageTimes", "check_output_dir", "run_pipeline"]

OUTPUT_FORMATS = ("npz", "json", "csv", "trc", "bvh")


@dataclass
class InferConfig:
    out_dir: str
    video: str | None = None  # the video to process (also the render's background)
    keypoints: str | None = None  # precomputed 2D instead of the detector (COCO JSON, OpenPose folder, npz, CSV)
    detector: str = "mediapipe"  # mediapipe | onnx
    onnx_model: str | None = None  # a top-down COCO-17 ONNX model (detector=onnx)
    fps: float | None = None  # frame rate of a keypoint file without video
    size: tuple[int, int] | None = None  # (width, height) of a keypoint file without video
    person: int | None = None  # track index to lift (default: the main person)
    max_gap: int = 15  # frames a person may be missed and still be interpolated (valid)
    lift: LiftConfig = field(default_factory=LiftConfig)
    formats: tuple[str, ...] = OUTPUT_FORMATS
    render: bool = True
    gif: bool = False
    viewer: bool = True
    progress: bool = True


@dataclass
class StageTimes:
    """Wall seconds and frames per stage (decode is the time spent reading frames inside detection)."""

    seconds: dict[str, float] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    log: Callable[[str], None] | None = None  # told when each stage ends
    setup_seconds: float = 0.0  # loading and warming up the lifter

    def add(self, stage: str, seconds: float, frames: int) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.frames[stage] = frames
        if self.log is not None:
            rate = f"{frames / seconds:,.0f} frames/s" if seconds > 0 else "instant"
            self.log(f"{stage}: {frames} frames in {seconds:.2f} s ({rate})")

    def fps(self) -> dict[str, float]:
        return {k: (self.frames[k] / s if s > 0 else float("inf")) for k, s in self.seconds.items()}


@dataclass
class PipelineResult:
    poses: Poses3D
    track: Track2D
    outputs: dict[str, Path]
    times: StageTimes
    summary: dict


class _TimedFrames:
    """Wraps a frame iterator and adds up the time spent producing frames (decoding)."""

    def __init__(self, frames: Iterable[np.ndarray]) -> None:
        self._it = iter(frames)
        self.seconds = 0.0
        self.count = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        start = time.perf_counter()
        try:
            frame = next(self._it)
        finally:
            self.seconds += time.perf_counter() - start
        self.count += 1
        return frame


def check_output_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` if needed and prove it is writable (before any expensive work)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".poselift-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"output folder {out} cannot be written: {exc.strerror or exc}") from None
    return out


def _log(cfg: InferConfig, msg: str) -> None:
    if cfg.progress:
        print(msg, file=sys.stderr)


def _detect(cfg: InferConfig, meta: VideoMeta, times: StageTimes) -> Detections:
    from poselift.io.video import read_frames

    frames = _TimedFrames(read_frames(cfg.video))
    start = time.perf_counter()
    if cfg.detector == "mediapipe":
        from poselift.infer.sources.mediapipe_pose import MediaPipePose

        with MediaPipePose() as detector:
            detections = detector.detect_frames(frames, meta, progress=cfg.progress)
    elif cfg.detector == "onnx":
        if not cfg.onnx_model:
            raise ConfigError("--detector onnx needs --onnx-model MODEL.onnx (a top-down COCO-17 model such as RTMPose)")
        from poselift.infer.sources.onnx_topdown import detect_video_topdown

        detections = detect_video_topdown(cfg.onnx_model, frames, meta, progress=cfg.progress)
    else:
        raise ConfigError(f"unknown detector {cfg.detector!r}; choose mediapipe or onnx")
    total = time.perf_counter() - start
    times.add("decode", frames.seconds, frames.count)
    times.add("detect", total - frames.seconds, frames.count)
    return detections


def _load_2d(cfg: InferConfig, meta: VideoMeta | None, times: StageTimes) -> Detections:
    from poselift.infer.sources.files import load_keypoints

    start = time.perf_counter()
    width, height = cfg.size if cfg.size else (None, None)
    detections = load_keypoints(cfg.keypoints, video_meta=meta, fps=cfg.fps, width=width, height=height)
    times.add("read 2D", time.perf_counter() - start, detections.num_frames)
    return detections


def _export(poses: Poses3D, out: Path, formats: Iterable[str]) -> dict[str, Path]:
    from poselift.io.bvh_export import write_bvh
    from poselift.io.poses_files import write_poses_csv, write_poses_json, write_poses_npz
    from poselift.io.trc import write_trc

    writers = {"npz": ("poses3d.npz", write_poses_npz), "json": ("poses3d.json", write_poses_json),
               "csv": ("poses3d.csv", write_poses_csv), "trc": ("poses3d.trc", write_trc),
               "bvh": ("poses3d.bvh", write_bvh)}
    written = {}
    for fmt in formats:
        if fmt not in writers:
            raise ConfigError(f"unknown output format {fmt!r}; choose from {sorted(writers)}")
        name, write = writers[fmt]
        written[fmt] = Path(write(poses, out / name) or out / name)
    return written


def run_pipeline(cfg: InferConfig) -> PipelineResult:
    """Run every stage (see module docstring) and write the outputs into ``cfg.out_dir``."""
    if cfg.video is None and cfg.keypoints is None:
        raise ConfigError("give a video, a keypoint file (--keypoints), or both")
    times = StageTimes(log=(lambda msg: _log(cfg, msg)) if cfg.progress else None)
    wall = time.perf_counter()
    # Cheap checks of every input first, so a bad input leaves nothing behind, not even the folder.
    meta = None
    if cfg.video is not None:
        from poselift.io.video import probe_video

        meta = probe_video(cfg.video)
        _log(cfg, f"video {meta.name}: {meta.num_frames} frames, {meta.width}x{meta.height}, {meta.fps:g} fps")
    start = time.perf_counter()
    model, model_label = load_lifter_for_video(cfg.lift.model)
    # One tiny pass pays torch's one-off start-up (thread pools, kernel selection, ~1 s) here, so the
    # lift stage's frames/s is the steady rate and not dominated by it on short videos.
    lift_normalized(model, np.zeros((2, input_joints(model), 2), np.float32))
    times.setup_seconds = time.perf_counter() - start
    detections = _load_2d(cfg, meta, times) if cfg.keypoints else None
    created = not Path(cfg.out_dir).exists()
    out = check_output_dir(cfg.out_dir)  # before the expensive stages
    try:
        return _run_stages(cfg, meta, model, model_label, detections, out, times, wall)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a failed run leaves no trace, not even the empty folder it made
        raise


def _run_stages(cfg: InferConfig, meta, model, model_label, detections, out: Path, times: StageTimes,
                wall: float) -> PipelineResult:
    from poselift.infer.tracking import main_track

    if detections is None:
        detections = _detect(cfg, meta, times)
    meta = detections.meta

    start = time.perf_counter()
    track = main_track(detections, person=cfg.person, max_gap=cfg.max_gap)
    times.add("track", time.perf_counter() - start, track.keypoints.shape[0])

    start = time.perf_counter()
    poses = lift_track(track, cfg.lift, model=model, model_label=model_label)
    times.add("lift", time.perf_counter() - start, poses.num_frames)
    poses.info.update({"source_2d": detections.source, "video": cfg.video, "people_seen": track.num_people,
                       "track_id": track.track_id})

    start = time.perf_counter()
    outputs = _export(poses, out, cfg.formats)
    times.add("export", time.perf_counter() - start, poses.num_frames)

    if cfg.render:
        from poselift.viz.render import render_video

        start = time.perf_counter()
        outputs["mp4"] = Path(render_video(poses, out / "render.mp4", video_path=cfg.video,
                                           gif_path=out / "render.gif" if cfg.gif else None,
                                           progress=cfg.progress))
        if cfg.gif:
            outputs["gif"] = out / "render.gif"
        times.add("render", time.perf_counter() - start, poses.num_frames)
    if cfg.viewer:
        from poselift.viz.html_viewer import write_html_viewer

        start = time.perf_counter()
        outputs["html"] = Path(write_html_viewer(poses, out / "viewer.html",
                                                 title=f"poselift: {meta.name or 'poses'}"))
        times.add("viewer", time.perf_counter() - start, poses.num_frames)

    summary = _summary(cfg, poses, track, detections, times, outputs, time.perf_counter() - wall)
    outputs["summary"] = atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return PipelineResult(poses, track, outputs, times, summary)


def _summary(cfg, poses: Poses3D, track: Track2D, detections: Detections, times: StageTimes,
             outputs: dict[str, Path], wall: float) -> dict:
    n = poses.num_frames
    frames_with_person = sum(1 for f in detections.frames if f)
    return {
        "frames": n,
        "fps": poses.fps,
        "size": [poses.meta.width, poses.meta.height],
        "source_2d": detections.source,
        "detection_rate": round(frames_with_person / max(n, 1), 4),
        "main_person_detected_rate": round(float(poses.detected.mean()) if n else 0.0, 4),
        "valid_rate": round(float(poses.valid.mean()) if n else 0.0, 4),
        "people_seen": track.num_people,
        "stage_seconds": {k: round(v, 3) for k, v in times.seconds.items()},
        "stage_fps": {k: round(v, 1) for k, v in times.fps().items()},
        "model_load_seconds": round(times.setup_seconds, 3),
        "total_seconds": round(wall, 2),
        "lifting": poses.info,
        "config": {"detector": cfg.detector if cfg.keypoints is None else None, "keypoints": cfg.keypoints,
                   "max_gap": cfg.max_gap, "lift": asdict(cfg.lift)},
        "outputs": {k: str(v) for k, v in outputs.items()},
    }


def format_summary(summary: dict) -> str:
    """The human-readable end-of-run report."""
    lines = [f"frames: {summary['frames']} at {summary['fps']:g} fps, {summary['size'][0]}x{summary['size'][1]}",
             f"2D source: {summary['source_2d']}",
             f"person detected in {summary['detection_rate'] * 100:.1f}% of frames "
             f"(main person {summary['main_person_detected_rate'] * 100:.1f}%, {summary['people_seen']} seen); "
             f"valid 3D in {summary['valid_rate'] * 100:.1f}%",
             "speed: " + ", ".join(f"{k} {v:,.0f} fps" for k, v in summary["stage_fps"].items())
             + f"; total {summary['total_seconds']:.1f} s",
             f"assumed: height {summary['lifting']['subject_height_m']} m, focal length "
             f"{summary['lifting']['focal_length_px']} px (model {summary['lifting']['model']})",
             "outputs:"]
    lines += [f"  {k:8s} {v}" for k, v in summary["outputs"].items()]
    return "\n".join(lines)
