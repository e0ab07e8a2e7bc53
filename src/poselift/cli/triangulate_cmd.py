"""``poselift triangulate``: world 3D joints from several calibrated, synchronised cameras."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from poselift.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser(
        "triangulate", help="3D joints from several calibrated cameras (multi-view triangulation)",
        description="Triangulate the main person's COCO-17 joints from synchronised cameras. Give one keypoint "
                    "file (or video) per camera, in the calibration's camera order. Writes triangulation.trc "
                    "(world frame, Y-up), triangulation.npz and triangulation_report.json into --out.")
    p.add_argument("--calibration", required=True, metavar="FILE",
                   help="Pose2Sim calibration .toml or Qualisys .qca.txt")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--keypoints", nargs="+", metavar="FILE",
                     help="2D keypoints per camera: COCO .json, OpenPose folder, .npz or .csv")
    src.add_argument("--videos", nargs="+", metavar="VIDEO", help="videos per camera (2D by the built-in MediaPipe)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--min-score", type=float, default=0.3, metavar="S",
                   help="ignore 2D keypoints below this confidence (default 0.3)")
    p.add_argument("--max-reprojection-px", type=float, default=15.0, metavar="PX",
                   help="drop views reprojecting farther than this (default 15 px)")
    p.add_argument("--fps", type=float, metavar="FPS",
                   help="frame rate, for keypoint files that do not record it")
    p.add_argument("--binning-factor", type=int, default=1, metavar="N",
                   help="Qualisys only: videos recorded with N x N pixel binning (default 1)")
    p.add_argument("--up", choices=("z", "y"), default="z",
                   help="world up axis of the calibration, for the Y-up TRC file (default z)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(func=run)


def _load_keypoint_file(path: str, size: tuple[int, int], fps: float | None):
    """The file's detections; the calibration's image size where the file records none."""
    from poselift.infer.sources.files import load_keypoints

    try:
        return load_keypoints(path, fps=fps)
    except ConfigError:
        pass  # the format records no size (or fps): retry with the calibration's size
    try:
        return load_keypoints(path, fps=fps, width=size[0], height=size[1])
    except ConfigError as exc:
        if fps is None and "fps" in str(exc):
            raise ConfigError(f"{path}: this keypoint file does not record the frame rate; pass --fps") from None
        raise


def run(args: argparse.Namespace) -> int:
    from poselift.infer.multiview import triangulate_sequence, write_multiview_outputs
    from poselift.io.calibration import read_calibration

    calib = read_calibration(args.calibration, binning_factor=args.binning_factor)
    inputs = args.keypoints if args.keypoints is not None else args.videos
    if len(inputs) != len(calib):
        kind = "keypoint files" if args.keypoints is not None else "videos"
        raise ConfigError(f"{len(inputs)} {kind} for {len(calib)} cameras in {args.calibration} "
                          f"({', '.join(calib.names)}); give one per camera, in that order")
    for path in inputs:
        if not Path(path).exists():
            raise ConfigError(f"input {path} does not exist")
    if args.fps is not None and not args.fps > 0:
        raise ConfigError(f"--fps must be positive, got {args.fps}")

    if args.keypoints is not None:
        detections = [_load_keypoint_file(path, cam.size, args.fps) for path, cam in zip(inputs, calib)]
    else:
        from poselift.infer.sources.mediapipe_pose import MediaPipePose

        with MediaPipePose() as detector:
            detections = [detector.detect_video(path, progress=not args.no_progress) for path in inputs]

    result = triangulate_sequence(calib, detections, min_score=args.min_score, max_reproj_px=args.max_reprojection_px)
    paths = write_multiview_outputs(result, args.out, up=args.up)
    report = result.report()
    if args.json:
        print(json.dumps(report))
        return 0
    print(_summary(report))
    print(f"\nwritten: {paths['trc']}, {paths['npz'].name}, {paths['report'].name}")
    return 0


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def _summary(report: dict) -> str:
    share = report["triangulated_share"]
    lines = [
        f"{report['frames']} frames, {len(report['cameras'])} cameras, "
        f"{_fmt(None if share is None else 100 * share)}% of joints triangulated, "
        f"mean reprojection error {_fmt(report['mean_reprojection_error_px'])} px",
        f"{'camera':<16}{'mean px':>9}{'median px':>11}{'used':>8}{'rejected':>10}",
    ]
    for cam in report["per_camera"]:
        lines.append(f"{cam['name']:<16}{_fmt(cam['mean_reprojection_error_px']):>9}"
                     f"{_fmt(cam['median_reprojection_error_px']):>11}{cam['used_points']:>8}{cam['rejected_points']:>10}")
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)
