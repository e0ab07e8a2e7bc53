"""CPU inference speed and size of every lifter kind (the comparison in docs/results.md).

For each poselift weights file (``model.safetensors`` of a training run) the
lifter is loaded as a user would (:func:`poselift.models.load_model`) and one
10,000-frame sequence of random-walk 2D keypoints is lifted with
:func:`poselift.models.predict.predict_sequences`, edge-padded like evaluation,
without and with flip test-time augmentation. Temporal convolutions go through
the fused engine, the others through their own ``forward`` in eval mode. Each
measurement is the median of ``--repeats`` timed passes after one warm-up pass,
from NumPy input to NumPy output. Parameters are counted on the loaded module.

    python benchmarks/bench_lifters.py runs/cmp_*/model.safetensors --json docs/bench_lifters.json
    python benchmarks/bench_lifters.py --quick     # fresh tiny models of every kind, seconds

Output: a Markdown table on stdout (name, kind, receptive field, parameters,
frames/s), and optionally the numbers with the machine description as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from poselift.models import load_model
from poselift.models.predict import predict_sequences
from poselift.models.registry import build_lifter, input_joints, is_causal, kind_of
from poselift.skeleton import H36M_17

QUICK_MODELS = {
    "temporal_conv": ("temporal_conv", {"filter_widths": [3, 3, 3], "channels": 64}),
    "rie": ("rie", {"filter_widths": [3, 3, 3], "channels": 16, "latent_dim": 16, "mlp_channels": 32}),
    "baseline": ("baseline", {"linear_size": 64}),
    "semgcn": ("semgcn", {"hid_dim": 16, "num_layers": 1}),
    "baseline + refiner": ("refined", {"lifter_kind": "baseline", "lifter": {"linear_size": 64},
                                       "refiner": {"hid_dim": 16, "num_layers": 1}}),
}


def random_walk(frames: int, joints: int, seed: int = 0) -> np.ndarray:
    """(frames, joints, 2) smooth 2D tracks in normalised screen units."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.004, (frames, joints, 2))
    return (np.cumsum(steps, axis=0) + rng.uniform(-0.3, 0.3, (1, joints, 2))).astype(np.float32)


def time_model(model: torch.nn.Module, frames: int, repeats: int, tta: bool) -> float:
    """Median frames/s lifting one ``frames``-long sequence."""
    seq = random_walk(frames, input_joints(model))
    pad = (model.receptive_field - 1) // 2
    shift = pad if is_causal(model) else 0
    flip = (list(H36M_17.joints_left), list(H36M_17.joints_right)) if tta else None
    predict_sequences(model, [seq[: max(model.receptive_field, 512)]], pad, shift, flip)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = predict_sequences(model, [seq], pad, shift, flip)
        times.append(time.perf_counter() - start)
        assert out[0].shape[0] == frames
    return frames / statistics.median(times)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="*", help="poselift .safetensors files (a run's model.safetensors)")
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="tiny fresh models of every kind, 2,000 frames")
    parser.add_argument("--json", metavar="FILE", help="write the numbers and the machine description here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models: list[tuple[str, torch.nn.Module]] = []
    if args.quick:
        args.frames, args.repeats = 2_000, 1
        models = [(name, build_lifter(kind, cfg).eval()) for name, (kind, cfg) in QUICK_MODELS.items()]
    for path in args.weights:
        model, _, _ = load_model(path)
        models.append((Path(path).parent.name or Path(path).stem, model))
    if not models:
        parser.error("give weights files or --quick")
    rows = []
    for name, model in models:
        kind = kind_of(model) if kind_of(model) != "refined" else f"{kind_of(model.lifter)} + semgcn refiner"
        row = {"name": name, "kind": kind, "receptive_field": model.receptive_field,
               "parameters": sum(p.numel() for p in model.parameters()),
               "fps": time_model(model, args.frames, args.repeats, tta=False),
               "fps_tta": time_model(model, args.frames, args.repeats, tta=True)}
        rows.append(row)
        print(f"{name}: {row['fps']:,.0f} frames/s ({row['fps_tta']:,.0f} with flip TTA)", file=sys.stderr)
    print("| model | kind | receptive field | parameters | frames/s | frames/s, flip TTA |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['kind']} | {r['receptive_field']} | {r['parameters']:,} | {r['fps']:,.0f} "
              f"| {r['fps_tta']:,.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "frames": args.frames,
                                               "repeats": args.repeats, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
