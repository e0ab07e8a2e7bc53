"""Speed of the temporal-convolution lifter: whole-sequence inference and training steps.

Inference (frames/s over whole edge-padded sequences, with and without flip
test-time augmentation), for receptive fields 27/81/243 at 1024 channels:

- ``baseline``: VideoPose3D's evaluation path: ``TemporalConvLifter`` in eval
  mode with batch norm, ``torch.no_grad()``, one forward per sequence on the
  ``np.pad(..., mode='edge')`` input (flipped copy as a second batch item),
  un-flip and mean as in VideoPose3D's ``evaluate``;
- ``poselift``: ``fuse_for_inference`` + ``poselift.models.predict.predict_sequences``
  under ``torch.inference_mode()``;
- only with ``--variants``, to separate the effects: ``fused_forward``, the fused
  model called like the baseline (one forward per padded sequence, so no padding
  compression or grouping); ``poselift_direct``, ``predict_sequences`` with
  ``fuse_for_inference(model, winograd=False)``.

Both are timed from NumPy input to NumPy output, interleaved repeat by repeat
(so load from other processes hits both alike), after a warm-up pass; the
table gives medians. Every sequence's outputs are compared: max |poselift -
baseline| must stay below 1e-4 (metres).

Training (output frames/s of forward + backward + Adam step): the strided
single-frame model on VideoPose3D's batch of 1024 receptive-field windows, and
the dilated model on (a prefix of) the same windows; batches are gathered from
edge-padded random-walk sequences with random flips, gather included.

    python benchmarks/bench_temporal.py                 # full run (a few minutes on 2 CPU cores)
    python benchmarks/bench_temporal.py --quick         # smoke run (seconds)
    python benchmarks/bench_temporal.py --json out.json --device cuda
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

from poselift.models import TemporalConvConfig, TemporalConvLifter, TemporalConvLifterStrided, fuse_for_inference
from poselift.models.predict import predict_sequences
from poselift.skeleton import H36M_17

ARCHS = {27: [3, 3, 3], 81: [3, 3, 3, 3], 243: [3, 3, 3, 3, 3]}
TOLERANCE_M = 1e-4
VARIANTS = ("baseline", "fused_forward", "poselift_direct", "poselift")


# ----------------------------------------------------------------------------- setup


def machine_info(device: str) -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "device": device,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "mkl": torch.backends.mkl.is_available(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and "cpu_model" not in info:
                info["cpu_model"] = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and "avx512f" not in info:
                info["avx512f"] = " avx512f " in f" {line} "
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return None


def make_model(filter_widths: list[int], channels: int, joints: int, seed: int, causal: bool = False,
               joints_out: int | None = None) -> TemporalConvLifter:
    """Default-initialised convolutions with non-trivial batch-norm parameters and statistics."""
    torch.manual_seed(seed)
    model = TemporalConvLifter(TemporalConvConfig(num_joints_in=joints, num_joints_out=joints_out or joints,
                                                  filter_widths=filter_widths, channels=channels, causal=causal))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("running_mean") or (name.endswith(".bias") and "bn" in name):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.endswith(".weight") and "bn" in name:
                t.copy_(1 + torch.randn(t.shape, generator=g) * 0.1)
    return model


def random_sequences(n: int, min_frames: int, max_frames: int, joints: int, seed: int) -> list[np.ndarray]:
    """Smooth random 2D keypoint tracks in normalised screen coordinates (about [-1, 1])."""
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n):
        t = int(rng.integers(min_frames, max_frames + 1))
        base = rng.uniform(-0.4, 0.4, size=(1, joints, 2))
        drift = np.cumsum(rng.normal(0, 0.003, size=(t, 1, 2)), axis=0)
        phase = rng.uniform(0, 2 * np.pi, size=(1, joints, 2))
        wiggle = 0.05 * np.sin(np.arange(t)[:, None, None] * rng.uniform(0.02, 0.2) + phase)
        seqs.append((base + drift + wiggle + rng.normal(0, 0.002, size=(t, joints, 2))).astype(np.float32))
    return seqs


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------------- inference


def baseline_predict(model, seqs, pad, shift, flip, device):
    """VideoPose3D's UnchunkedGenerator + evaluate(), one forward per sequence."""
    kl, kr = (list(flip[0]), list(flip[1])) if flip else ([], [])
    outs = []
    with torch.no_grad():
        for seq in seqs:
            batch_2d = np.expand_dims(np.pad(seq, ((pad + shift, pad - shift), (0, 0), (0, 0)), "edge"), axis=0)
            if flip:
                batch_2d = np.concatenate((batch_2d, batch_2d), axis=0)
                batch_2d[1, :, :, 0] *= -1
                batch_2d[1, :, kl + kr] = batch_2d[1, :, kr + kl]
            inputs = torch.from_numpy(batch_2d.astype("float32")).to(device)
            pred = model(inputs)
            if flip:
                pred[1, :, :, 0] *= -1
                pred[1, :, kl + kr] = pred[1, :, kr + kl]
                pred = torch.mean(pred, dim=0, keepdim=True)
            outs.append(pred.squeeze(0).cpu().numpy())
    return outs


def poselift_predict(fused, seqs, pad, shift, flip, device, batch_frames):
    return predict_sequences(fused, seqs, pad, shift, flip=flip, batch_frames=batch_frames)


def fused_forward_predict(fused, seqs, pad, shift, flip, device):
    with torch.inference_mode():
        return baseline_predict(fused, seqs, pad, shift, flip, device)


def bench_inference(rf: int, args, seqs: list[np.ndarray], variants: list[str]) -> list[dict]:
    device = args.device
    model = make_model(ARCHS[rf], args.channels, args.joints, seed=rf).to(device).eval()
    fused = fuse_for_inference(model)
    fused_direct = fuse_for_inference(model, winograd=False)
    pad, shift = (rf - 1) // 2, 0
    frames = sum(len(s) for s in seqs)
    flip_lists = (list(H36M_17.joints_left), list(H36M_17.joints_right))
    fns = {
        "baseline": lambda flip: baseline_predict(model, seqs, pad, shift, flip, device),
        "poselift": lambda flip: poselift_predict(fused, seqs, pad, shift, flip, device, args.batch_frames),
        "fused_forward": lambda flip: fused_forward_predict(fused, seqs, pad, shift, flip, device),
        "poselift_direct": lambda flip: poselift_predict(fused_direct, seqs, pad, shift, flip, device,
                                                         args.batch_frames),
    }
    rows = []
    for tta in (False, True):
        flip = flip_lists if tta else None
        times: dict[str, list[float]] = {v: [] for v in variants}
        outs: dict[str, list[np.ndarray]] = {}
        for v in variants:  # warm-up (also keeps the outputs for the equality check)
            outs[v] = fns[v](flip)
        load_before = loadavg()
        for r in range(args.repeats):
            order = variants if r % 2 == 0 else variants[::-1]
            for v in order:
                sync(device)
                t0 = time.perf_counter()
                fns[v](flip)
                sync(device)
                times[v].append(time.perf_counter() - t0)
        ref = outs["baseline"]
        row = {"receptive_field": rf, "tta": tta, "sequences": len(seqs), "frames": frames,
               "loadavg_before": load_before, "loadavg_after": loadavg(),
               "output_max_abs": float(max(np.abs(o).max() for o in ref))}
        for v in variants:
            med = statistics.median(times[v])
            row[v] = {"times_s": times[v], "median_s": med, "frames_per_s": frames / med}
            if v != "baseline":
                diffs = [float(np.abs(a - b).max()) for a, b in zip(outs[v], ref)]
                assert all(a.shape == b.shape for a, b in zip(outs[v], ref)), f"{v}: output shapes differ"
                row[v]["max_abs_diff"] = max(diffs)
                # paired ratios: robust when other processes load the machine
                row[v]["speedup"] = statistics.median(b / p for b, p in zip(times["baseline"], times[v]))
                if max(diffs) >= TOLERANCE_M:
                    raise AssertionError(f"rf={rf} tta={tta} {v}: max abs diff {max(diffs):.3g} >= {TOLERANCE_M}")
        rows.append(row)
        summary = ", ".join(f"{v} {row[v]['frames_per_s']:.0f} f/s" for v in variants)
        print(f"  inference rf={rf:3d} tta={'yes' if tta else 'no '}: {summary}", file=sys.stderr, flush=True)
    return rows


def verify_predict_sequences(channels: int) -> dict:
    """predict_sequences against the baseline on harder cases than the timed runs (seconds).

    Causal and symmetric models, a trajectory model (one output joint, x-negation only),
    both flip forms, sequences shorter than the receptive field, and several grouping budgets.
    """
    kl, kr = list(H36M_17.joints_left), list(H36M_17.joints_right)
    seqs = [random_sequences(1, n, n, 17, seed=100 + n)[0] for n in (1, 4, 30, 200, 700, 1500)]
    worst: dict[str, float] = {}
    for fw in ([3, 3, 3], [3, 3, 3, 3, 3]):
        for causal in (False, True):
            for joints_out in (17, 1):
                model = make_model(fw, channels, 17, seed=len(fw), causal=causal, joints_out=joints_out).eval()
                fused = fuse_for_inference(model)
                rf = model.receptive_field
                pad = (rf - 1) // 2
                shift = pad if causal else 0
                for flip in (None, (kl, kr), (kl, kr, kl, kr) if joints_out > 1 else (kl, kr, [], [])):
                    ref = []
                    with torch.no_grad():
                        for seq in seqs:
                            x = np.pad(seq, ((pad + shift, pad - shift), (0, 0), (0, 0)), "edge")[None]
                            if flip:
                                xf = x.copy()
                                xf[..., 0] *= -1
                                xf[:, :, kl + kr] = xf[:, :, kr + kl]
                                x = np.concatenate([x, xf])
                            y = model(torch.from_numpy(x))
                            if flip:
                                y[1, :, :, 0] *= -1
                                if joints_out > 1:
                                    y[1, :, kl + kr] = y[1, :, kr + kl]
                                y = torch.mean(y, dim=0, keepdim=True)
                            ref.append(y[0].numpy())
                    for batch_frames in (1, 4096):
                        outs = predict_sequences(fused, seqs, pad, shift, flip=flip, batch_frames=batch_frames)
                        name = f"rf{rf}{'_causal' if causal else ''}_jout{joints_out}"
                        for o, r in zip(outs, ref):
                            if o.shape != r.shape:
                                raise AssertionError(f"{name}: shape {o.shape} != {r.shape}")
                            worst[name] = max(worst.get(name, 0.0), float(np.abs(o - r).max()))
    for name, diff in worst.items():
        if diff >= TOLERANCE_M:
            raise AssertionError(f"predict_sequences check {name}: max abs diff {diff:.3g} >= {TOLERANCE_M}")
    print(f"  predict_sequences checks: max abs diff {max(worst.values()):.1e} over {len(worst)} configurations",
          file=sys.stderr, flush=True)
    return worst


# -------------------------------------------------------------------------- training


class WindowSampler:
    """VideoPose3D-style single-frame training batches: edge-padded sequences, random windows, random flips."""

    def __init__(self, seqs_2d, seqs_3d, pad, flip, seed):
        self.pad = pad
        self.x = np.concatenate([np.pad(s, ((pad, pad), (0, 0), (0, 0)), "edge") for s in seqs_2d])
        self.y = np.concatenate(seqs_3d)
        starts_x = np.cumsum([0] + [len(s) + 2 * pad for s in seqs_2d[:-1]])
        starts_y = np.cumsum([0] + [len(s) for s in seqs_3d[:-1]])
        self.pos_x = np.concatenate([sx + np.arange(len(s)) for sx, s in zip(starts_x, seqs_2d)])
        self.pos_y = np.concatenate([sy + np.arange(len(s)) for sy, s in zip(starts_y, seqs_3d)])
        self.kl, self.kr = list(flip[0]), list(flip[1])
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.rng.integers(0, len(self.pos_x), size=n)
        win = self.pos_x[idx, None] + np.arange(2 * self.pad + 1)
        x = self.x[win]
        y = self.y[self.pos_y[idx]][:, None].copy()
        f = self.rng.random(n) < 0.5
        for arr in (x, y):
            arr[f, ..., 0] *= -1
            sub = arr[f]
            sub[..., self.kl + self.kr, :] = sub[..., self.kr + self.kl, :]
            arr[f] = sub
        return x, y


def mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean(torch.norm(pred - target, dim=-1))


def bench_training(rf: int, args, sampler: WindowSampler, dilated_batch: int) -> dict:
    device = args.device
    base = make_model(ARCHS[rf], args.channels, args.joints, seed=rf)
    models = {"strided": TemporalConvLifterStrided(base.config), "dilated": TemporalConvLifter(base.config)}
    batches = {"strided": args.train_batch, "dilated": dilated_batch}
    row = {"receptive_field": rf, "loadavg_before": loadavg()}
    for name, model in models.items():
        model.load_state_dict(base.state_dict())
        model.to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
        n = batches[name]
        times, gather, steps = [], [], []
        for step in range(1 + args.train_repeats):
            sync(device)
            t0 = time.perf_counter()
            x_np, y_np = sampler.batch(args.train_batch)
            x = torch.from_numpy(x_np[:n]).to(device)
            y = torch.from_numpy(y_np[:n]).to(device)
            t1 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = mpjpe(model(x), y)
            loss.backward()
            opt.step()
            sync(device)
            t2 = time.perf_counter()
            if step > 0:  # step 0 is the warm-up
                times.append(t2 - t0)
                gather.append(t1 - t0)
                steps.append(t2 - t1)
            if not torch.isfinite(loss):
                raise AssertionError(f"{name} rf={rf}: non-finite loss")
        med = statistics.median(times)
        row[name] = {"batch": n, "times_s": times, "median_s": med, "samples_per_s": n / med,
                     "gather_median_s": statistics.median(gather),
                     "step_only_samples_per_s": n / statistics.median(steps)}
        print(f"  training  rf={rf:3d} {name:8s} batch {n:4d}: {n / med:8.1f} samples/s", file=sys.stderr, flush=True)
    row["loadavg_after"] = loadavg()
    row["strided_over_dilated"] = row["strided"]["samples_per_s"] / row["dilated"]["samples_per_s"]
    return row


# --------------------------------------------------------------------------- report


def markdown(results: dict) -> str:
    lines = []
    inf = results.get("inference", [])
    if inf:
        variants = [v for v in VARIANTS if v in inf[0]]
        head = "| RF | TTA | " + " | ".join(f"{v} frames/s" for v in variants)
        head += " | " + " | ".join(f"{v} speed-up" for v in variants if v != "baseline")
        head += " | " + " | ".join(f"{v} max abs diff (m)" for v in variants if v != "baseline") + " |"
        lines += [head, "|" + "---|" * (2 + len(variants) + 2 * (len(variants) - 1))]
        for r in inf:
            cells = [str(r["receptive_field"]), "yes" if r["tta"] else "no"]
            cells += [f"{r[v]['frames_per_s']:.0f}" for v in variants]
            cells += [f"{r[v]['speedup']:.2f}x" for v in variants if v != "baseline"]
            cells += [f"{r[v]['max_abs_diff']:.1e}" for v in variants if v != "baseline"]
            lines.append("| " + " | ".join(cells) + " |")
    tr = results.get("training", [])
    if tr:
        if lines:
            lines.append("")
        lines += ["| RF | strided batch | strided samples/s | strided batch gather (ms) | dilated batch | "
                  "dilated samples/s | strided / dilated |",
                  "|---|---|---|---|---|---|---|"]
        for r in tr:
            lines.append(f"| {r['receptive_field']} | {r['strided']['batch']} | {r['strided']['samples_per_s']:.1f} | "
                         f"{1e3 * r['strided']['gather_median_s']:.1f} | "
                         f"{r['dilated']['batch']} | {r['dilated']['samples_per_s']:.1f} | "
                         f"{r['strided_over_dilated']:.1f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run: 128 channels, short sequences, 1 repeat")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--json", type=Path, help="write all results and machine details here")
    ap.add_argument("--rf", type=int, nargs="+", default=[27, 81, 243], choices=sorted(ARCHS))
    ap.add_argument("--channels", type=int, default=1024)
    ap.add_argument("--joints", type=int, default=17)
    ap.add_argument("--sequences", type=int, default=8, help="inference sequences")
    ap.add_argument("--min-frames", type=int, default=1000)
    ap.add_argument("--max-frames", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3, help="timed inference passes (after one warm-up)")
    ap.add_argument("--batch-frames", type=int, default=4096, help="predict_sequences grouping budget")
    ap.add_argument("--variants", default="baseline,poselift",
                    help=f"comma list from {','.join(VARIANTS)} (baseline is required)")
    ap.add_argument("--train-batch", type=int, default=1024, help="strided model batch (VideoPose3D: 1024)")
    ap.add_argument("--dilated-batch", type=int, nargs="+",
                    help="dilated model batch per receptive field (default 256/128/32 for 27/81/243 on CPU: its "
                         "single-frame cost grows with the receptive field; samples/s is per sample)")
    ap.add_argument("--train-repeats", type=int, default=2, help="timed training steps (after one warm-up)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--skip-inference", action="store_true")
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--skip-verify", action="store_true",
                    help="skip the extra predict_sequences equality checks (causal, trajectory, short sequences)")
    args = ap.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.channels = min(args.channels, 128)
        args.sequences, args.min_frames, args.max_frames = 3, 250, 500
        args.repeats, args.train_repeats = 1, 1
        args.train_batch = min(args.train_batch, 64)
        args.dilated_batch = args.dilated_batch or [16]
    variants = args.variants.split(",")
    if "baseline" not in variants or any(v not in VARIANTS for v in variants):
        ap.error(f"--variants: baseline plus any of {', '.join(VARIANTS[1:])}")
    if args.dilated_batch is None:
        auto = {27: 256, 81: 128, 243: 32} if args.device == "cpu" else {27: 1024, 81: 1024, 243: 256}
        dilated = {rf: min(auto[rf], args.train_batch) for rf in args.rf}
    else:
        b = args.dilated_batch
        dilated = {rf: min(b[i] if i < len(b) else b[-1], args.train_batch) for i, rf in enumerate(args.rf)}

    results: dict = {"machine": machine_info(args.device), "args": {k: (str(v) if isinstance(v, Path) else v)
                                                                    for k, v in vars(args).items()}}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"load {loadavg()}", file=sys.stderr, flush=True)
    t_start = time.perf_counter()
    if not args.skip_verify:
        results["predict_sequences_check"] = verify_predict_sequences(min(args.channels, 256))
    if not args.skip_inference:
        seqs = random_sequences(args.sequences, args.min_frames, args.max_frames, args.joints, seed=0)
        results["sequence_lengths"] = [len(s) for s in seqs]
        results["inference"] = []
        for rf in args.rf:
            results["inference"] += bench_inference(rf, args, seqs, variants)
    if not args.skip_training:
        rng = np.random.default_rng(1)
        seqs_2d = random_sequences(8, 500, 1500, args.joints, seed=1)
        seqs_3d = [rng.normal(0, 0.3, size=(len(s), args.joints, 3)).astype(np.float32) for s in seqs_2d]
        flip = (list(H36M_17.joints_left), list(H36M_17.joints_right))
        results["training"] = []
        for rf in args.rf:
            sampler = WindowSampler(seqs_2d, seqs_3d, (rf - 1) // 2, flip, seed=rf)
            results["training"].append(bench_training(rf, args, sampler, dilated[rf]))
    results["wall_s"] = time.perf_counter() - t_start
    table = markdown(results)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
