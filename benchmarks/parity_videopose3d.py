"""Check poselift against the reference VideoPose3D code (not part of the test suite).

Builds reference models (facebookresearch/VideoPose3D's ``common/model.py``, from a
local checkout given with --reference-dir) for several architectures, randomises
their weights and batch-norm statistics, saves checkpoints exactly as the
reference ``run.py`` does (including NumPy RandomState objects), loads them with
``poselift.load_videopose3d`` and compares outputs, plus the strided variants.

    python benchmarks/parity_videopose3d.py --reference-dir /path/to/VideoPose3D
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import poselift
from poselift.models import TemporalConvLifterStrided, fuse_for_inference


def randomise(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference-dir", required=True, type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(args.reference_dir))
    from common.model import TemporalModel, TemporalModelOptimized1f  # type: ignore

    cases = [
        dict(fw=[3, 3, 3], ch=64, causal=False, joints=17),
        dict(fw=[3, 3, 3, 3], ch=128, causal=False, joints=17),
        dict(fw=[3, 3, 3, 3, 3], ch=256, causal=False, joints=17),
        dict(fw=[3, 3, 3], ch=64, causal=True, joints=17),
        dict(fw=[5, 3, 3], ch=64, causal=False, joints=15),
        dict(fw=[1, 1, 1], ch=32, causal=False, joints=17),
    ]
    worst = 0.0
    for i, c in enumerate(cases):
        ref = TemporalModel(c["joints"], 2, c["joints"], filter_widths=c["fw"], causal=c["causal"],
                            dropout=0.25, channels=c["ch"]).eval()
        traj = TemporalModel(c["joints"], 2, 1, filter_widths=c["fw"], causal=c["causal"],
                             dropout=0.25, channels=c["ch"]).eval()
        randomise(ref, 10 + i)
        randomise(traj, 100 + i)
        rf = ref.receptive_field()
        x = torch.randn(2, rf + 37, c["joints"], 2)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "epoch_1.bin"
            opt = torch.optim.Adam(ref.parameters(), lr=1e-3, amsgrad=True)
            torch.save({"epoch": 7, "lr": 0.00095, "random_state": np.random.RandomState(1234),
                        "optimizer": opt.state_dict(), "model_pos": ref.state_dict(),
                        "model_traj": traj.state_dict(), "random_state_semi": np.random.RandomState(4321)}, path)
            loaded = poselift.load_videopose3d(path, causal=c["causal"])
        with torch.no_grad():
            y_ref, y = ref(x), loaded.model_pos(x)
            t_ref, t = traj(x), loaded.model_traj(x)
            y_fused = fuse_for_inference(loaded.model_pos)(x)
            # strided variants on single-frame windows
            ref1f = TemporalModelOptimized1f(c["joints"], 2, c["joints"], filter_widths=c["fw"], causal=c["causal"],
                                             dropout=0.25, channels=c["ch"]).eval()
            ref1f.load_state_dict(ref.state_dict())
            ours1f = TemporalConvLifterStrided(loaded.config).eval()
            ours1f.load_state_dict(loaded.model_pos.state_dict())
            win = x[:, :rf]
            s_ref, s = ref1f(win), ours1f(win)
        errs = {
            "pos": (y - y_ref).abs().max().item(), "traj": (t - t_ref).abs().max().item(),
            "fused": (y_fused - y_ref).abs().max().item(), "strided": (s - s_ref).abs().max().item(),
            "strided_vs_dilated": (s - y_ref[:, :1]).abs().max().item(),
        }
        assert y.shape == y_ref.shape == (2, 38, c["joints"], 3), y.shape
        assert loaded.config.receptive_field == rf and loaded.epoch == 7
        worst = max(worst, *errs.values())
        print(f"fw={c['fw']} ch={c['ch']} causal={c['causal']} J={c['joints']} rf={rf}: "
              + " ".join(f"{k}={v:.2e}" for k, v in errs.items()))
    print(f"worst absolute difference: {worst:.2e}")
    return 0 if worst < 1e-5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
