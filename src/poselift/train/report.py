"""Per-run training records: metrics CSV and training-curve PNG (both rewritten every epoch)."""

from __future__ import annotations

import csv
from pathlib import Path

from poselift.atomic import atomic_write


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    if not history:
        return
    fields = list(dict.fromkeys(k for row in history for k in row))

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for row in history:
                w.writerow({k: row.get(k, "") for k in fields})

    atomic_write(path, write)


_CURVES = [
    ("loss_3d_train_mm", "3D train (training mode)", "--", "C0"),
    ("mpjpe_train_eval_mm", "3D train (eval mode)", "-", "C0"),
    ("mpjpe_valid_mm", "3D validation", "-", "C1"),
    ("traj_valid_mm", "trajectory validation", "-", "C2"),
]


def plot_training_curves(path: Path, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    epochs = [row["epoch"] for row in history]
    for key, label, style, color in _CURVES:
        values = [row.get(key) for row in history]
        if any(v not in (None, "") for v in values):
            pts = [(e, v) for e, v in zip(epochs, values) if v not in (None, "")]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, label=label, marker="o", ms=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("MPJPE (mm)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("poselift training")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
