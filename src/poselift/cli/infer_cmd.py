"""``poselift infer VIDEO --out DIR``: video (or 2D keypoint file) -> 3D joints, files, render and viewer."""

from __future__ import annotations

import argparse
import json

from poselift.infer.lifting import DEFAULT_MODEL, LiftConfig
from poselift.infer.pipeline import OUTPUT_FORMATS, InferConfig, format_summary, run_pipeline
from poselift.infer.trajectory import DEFAULT_SUBJECT_HEIGHT_M


def _formats(value: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = sorted(set(items) - set(OUTPUT_FORMATS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown format(s) {unknown}; choose from {','.join(OUTPUT_FORMATS)}")
    return items


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1920x1080, got {value!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"frame size must be positive, got {value!r}")
    return w, h


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``infer`` and ``demo``."""
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME",
                   help=f"COCO-17 lifter: a shipped model name (poselift models) or a .safetensors file "
                        f"(default {DEFAULT_MODEL})")
    p.add_argument("--height", type=float, default=DEFAULT_SUBJECT_HEIGHT_M, metavar="M",
                   help=f"the person's standing height in metres, which fixes the metric scale "
                        f"(default {DEFAULT_SUBJECT_HEIGHT_M})")
    p.add_argument("--focal-length", type=float, metavar="PX",
                   help="camera focal length in pixels (default: 1.145 x the longer image side, "
                        "Human3.6M's field of view)")
    p.add_argument("--smooth", type=float, default=0.0, metavar="SIGMA",
                   help="extra Gaussian smoothing of the 3D pose, in frames (default 0: the temporal model's own)")
    p.add_argument("--causal", action="store_true",
                   help="frame t uses only frames <= t, as in a live stream (One Euro smoothing)")
    p.add_argument("--person", type=int, metavar="N", help="lift track N instead of the main person")
    p.add_argument("--max-gap", type=int, default=15, metavar="FRAMES",
                   help="missed detections up to this long are interpolated and stay valid (default 15)")
    p.add_argument("--formats", type=_formats, default=OUTPUT_FORMATS, metavar="LIST",
                   help=f"files to write (default {','.join(OUTPUT_FORMATS)})")
    p.add_argument("--gif", action="store_true", help="also write render.gif")
    p.add_argument("--no-render", action="store_true", help="skip render.mp4")
    p.add_argument("--no-viewer", action="store_true", help="skip viewer.html")
    p.add_argument("--no-tta", action="store_true", help="no flip test-time augmentation")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def register(sub) -> None:
    p = sub.add_parser("infer", help="video -> 3D joints (npz/json/csv/trc/bvh), render.mp4 and viewer.html",
                       description="Detect 2D keypoints (built-in MediaPipe detector, an ONNX top-down model, or a "
                                   "keypoint file), track the main person, lift to 3D with a pretrained temporal "
                                   "model, estimate the trajectory, and write everything into --out.")
    p.add_argument("video", nargs="?", help="input video (optional with --keypoints)")
    p.add_argument("--keypoints", metavar="PATH",
                   help="precomputed 2D: COCO results JSON, OpenPose JSON folder, VideoPose3D npz or CSV")
    p.add_argument("--fps", type=float, metavar="FPS", help="frame rate of a keypoint file used without its video")
    p.add_argument("--size", type=_size, metavar="WxH", help="frame size of a keypoint file used without its video")
    p.add_argument("--detector", choices=["mediapipe", "onnx"], default="mediapipe",
                   help="2D detector when no --keypoints (default mediapipe, offline)")
    p.add_argument("--onnx-model", metavar="MODEL.onnx", help="top-down COCO-17 ONNX model for --detector onnx")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace, video: str | None) -> InferConfig:
    lift = LiftConfig(model=args.model, subject_height_m=args.height, focal_length_px=args.focal_length,
                      causal=args.causal, smooth_sigma_frames=args.smooth, test_time_augmentation=not args.no_tta)
    return InferConfig(out_dir=args.out, video=video, keypoints=getattr(args, "keypoints", None),
                       detector=getattr(args, "detector", "mediapipe"), onnx_model=getattr(args, "onnx_model", None),
                       fps=getattr(args, "fps", None), size=getattr(args, "size", None), person=args.person, max_gap=args.max_gap, lift=lift,
                       formats=tuple(args.formats), render=not args.no_render, gif=args.gif,
                       viewer=not args.no_viewer, progress=not args.no_progress)


def report(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.summary))
    else:
        print(format_summary(result.summary))
        print(f"  {'summary':8s} {result.outputs['summary']}")


def run(args: argparse.Namespace) -> int:
    result = run_pipeline(config_from_args(args, args.video))
    report(result, args.json)
    return 0
