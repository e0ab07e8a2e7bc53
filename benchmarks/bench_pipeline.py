"""Per-stage speed of the video pipeline, and lifting speed on long sequences.

    python benchmarks/bench_pipeline.py [--video PATH] [--out DIR] [--threads N]

1. Runs ``poselift infer`` on the video (default: the cached demo video) with every
   output, three times, and reports the median frames/s per stage (decode, detect,
   track, lift, export, render, viewer) from the pipeline's own stage timers.
2. Lifts a long synthetic 2D track (10,000 frames) with every shipped COCO model
   through :func:`poselift.infer.lifting.lift_track` (model loaded once; flip
   test-time augmentation on, offline and causal), median of 5 runs.

Prints a Markdown table; the numbers in docs/benchmarks.md come from it.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import numpy as np
import torch

from poselift.infer.demo_video import demo_video_path
from poselift.infer.lifting import LiftConfig, lift_track, load_lifter_for_video
from poselift.infer.pipeline import InferConfig, run_pipeline
from poselift.infer.types import Track2D, VideoMeta
from poselift.pretrained import list_pretrained


def bench_pipeline(video: str, out: str, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        result = run_pipeline(InferConfig(out_dir=out, video=video, progress=False))
        runs.append(result.times.fps())
    stages = runs[0].keys()
    return {k: statistics.median(r[k] for r in runs) for k in stages}, result.summary


def bench_lifting(frames: int, repeats: int) -> list[tuple[str, int, float, float]]:
    rng = np.random.default_rng(0)
    base = rng.uniform(300, 700, (1, 17, 2))
    walk = base + np.cumsum(rng.normal(0, 1.5, (frames, 17, 2)), axis=0) * 0.05
    track = Track2D(walk.astype(np.float32), np.ones((frames, 17), np.float32), np.ones(frames, bool),
                    np.ones(frames, bool), VideoMeta(1000, 1000, 50.0, frames, "synthetic"))
    rows = []
    for card in list_pretrained():
        if card.input_layout != "coco":
            continue
        model, label = load_lifter_for_video(card.name)
        result = []
        for causal in (False, True):
            lift_track(track, LiftConfig(causal=causal), model=model, model_label=label)  # warm-up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                lift_track(track, LiftConfig(causal=causal), model=model, model_label=label)
                times.append(time.perf_counter() - start)
            result.append(frames / statistics.median(times))
        rows.append((card.name, card.receptive_field, *result))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", help="video to run (default: the cached demo video)")
    parser.add_argument("--out", help="output folder (default: a temporary one)")
    parser.add_argument("--threads", type=int, help="torch threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lift-frames", type=int, default=10_000)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    video = args.video or str(demo_video_path())
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        fps, summary = bench_pipeline(video, args.out or tmp, args.repeats)
    print(f"\nvideo {video}: {summary['frames']} frames, {summary['size'][0]}x{summary['size'][1]}, "
          f"{summary['fps']:g} fps; median of {args.repeats} runs\n")
    print("| stage | frames/s |\n|---|---:|")
    for k, v in fps.items():
        print(f"| {k} | {v:,.0f} |")
    print(f"\nlifting {args.lift_frames:,} frames (lift_track: resampling, flip TTA, scale, trajectory)\n")
    print("| model | receptive field | offline frames/s | causal frames/s |\n|---|---:|---:|---:|")
    for name, rf, offline, causal in bench_lifting(args.lift_frames, 5):
        print(f"| {name} | {rf} | {offline:,.0f} | {causal:,.0f} |")


if __name__ == "__main__":
    main()
