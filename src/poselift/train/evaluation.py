"""Protocol 1-3 and MPJVE per action and averaged over actions, as in VideoPose3D's paper tables.

Per action, sequences (all subjects and cameras) are pooled frame-weighted;
the reported mean is the plain average over actions. Targets are
root-relative (root joint at the origin), as the lifter predicts them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from poselift.data.dataset import PoseDataset, Sequence
from poselift.metrics import mpjpe, mpjve, n_mpjpe, p_mpjpe
from poselift.models.fused import fuse_for_inference
from poselift.models.predict import predict_sequences


@dataclass
class ProtocolErrors:
    """Errors in millimetres over ``frames`` frames."""

    mpjpe: float
    p_mpjpe: float
    n_mpjpe: float
    mpjve: float
    frames: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvaluationReport:
    mean: ProtocolErrors  # averaged over actions
    per_action: dict[str, ProtocolErrors]
    test_time_augmentation: bool
    per_subject: dict[str, ProtocolErrors] = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        out = {"mpjpe": round(self.mean.mpjpe, 3), "p_mpjpe": round(self.mean.p_mpjpe, 3),
               "n_mpjpe": round(self.mean.n_mpjpe, 3), "mpjve": round(self.mean.mpjve, 3),
               "frames": self.mean.frames, "units": "mm", "test_time_augmentation": self.test_time_augmentation,
               "per_action": {a: {k: round(v, 3) if isinstance(v, float) else v for k, v in e.to_dict().items()}
                              for a, e in self.per_action.items()}}
        if self.per_subject:
            out["per_subject"] = {s: e.to_dict() for s, e in self.per_subject.items()}
        return out

    def table(self) -> str:
        lines = ["| action | frames | MPJPE (P1) | P-MPJPE (P2) | N-MPJPE (P3) | MPJVE |", "|---|---:|---:|---:|---:|---:|"]
        for a, e in sorted(self.per_action.items()):
            lines.append(f"| {a} | {e.frames} | {e.mpjpe:.1f} | {e.p_mpjpe:.1f} | {e.n_mpjpe:.1f} | {e.mpjve:.2f} |")
        m = self.mean
        lines.append(f"| **average over actions** | {m.frames} | {m.mpjpe:.1f} | {m.p_mpjpe:.1f} | {m.n_mpjpe:.1f} | {m.mpjve:.2f} |")
        return "\n".join(lines)


def sequence_errors(predicted: np.ndarray, target: np.ndarray) -> tuple[float, float, float, float]:
    """(mpjpe, p_mpjpe, n_mpjpe, mpjve) in metres for one (T, J, 3) sequence."""
    p, t = torch.from_numpy(predicted).float(), torch.from_numpy(target).float()
    ve = mpjve(p, t).item() if p.shape[0] > 1 else 0.0
    return mpjpe(p, t).item(), p_mpjpe(p, t).item(), n_mpjpe(p, t).item(), ve


def _pool(items: list[tuple[int, tuple[float, ...]]]) -> ProtocolErrors:
    frames = sum(n for n, _ in items)
    sums = np.sum([np.array(e) * n for n, e in items], axis=0) / max(frames, 1) * 1000
    return ProtocolErrors(*map(float, sums), frames=frames)


def _average(errors: list[ProtocolErrors]) -> ProtocolErrors:
    return ProtocolErrors(*(float(np.mean([getattr(e, k) for e in errors])) for k in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve")),
                          frames=sum(e.frames for e in errors))


def root_relative(positions: np.ndarray) -> np.ndarray:
    out = positions.copy()
    out[:, 0] = 0
    return out


def evaluate_sequences(model: torch.nn.Module, sequences: list[Sequence], dataset: PoseDataset, *,
                       causal: bool = False, test_time_augmentation: bool = True,
                       by_subject: bool = False, progress=None) -> EvaluationReport:
    """Evaluate a pose model on labelled sequences (see module docstring)."""
    flip = (dataset.kps_left, dataset.kps_right, dataset.joints_left, dataset.joints_right) if test_time_augmentation else None
    by_action: dict[str, list] = defaultdict(list)
    by_subj: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for seq, pred in zip(sequences, predict_all(model, sequences, causal, flip)):
        errs = sequence_errors(pred, root_relative(seq.positions_3d))
        by_action[seq.action_group].append((seq.keypoints_2d.shape[0], errs))
        by_subj[seq.subject][seq.action_group].append((seq.keypoints_2d.shape[0], errs))
        if progress is not None:
            progress.update(seq.keypoints_2d.shape[0])
    per_action = {a: _pool(items) for a, items in by_action.items()}
    report = EvaluationReport(_average(list(per_action.values())), per_action, test_time_augmentation)
    if by_subject:
        report.per_subject = {s: _average([_pool(i) for i in acts.values()]) for s, acts in by_subj.items()}
    return report


def quick_mpjpe(model: torch.nn.Module, sequences: list[Sequence], causal: bool = False) -> float:
    """Frame-weighted MPJPE (metres) without augmentation: the per-epoch validation number."""
    seqs = [s for s in sequences if s.keypoints_2d.shape[0] > 0]
    total, frames = 0.0, 0
    for seq, pred in zip(seqs, predict_all(model, seqs, causal)):
        total += mpjpe(torch.from_numpy(pred), torch.from_numpy(root_relative(seq.positions_3d))).item() * len(pred)
        frames += len(pred)
    return total / max(frames, 1)


def predict_all(model: torch.nn.Module, sequences: list[Sequence], causal: bool = False,
                flip: tuple | None = None) -> list[np.ndarray]:
    """Predictions (T_i, J_out, 3) for every sequence, in one batched pass of the fused model."""
    fused = fuse_for_inference(model) if hasattr(model, "layers_bn") else model
    pad = (fused.receptive_field - 1) // 2
    return predict_sequences(fused, [s.keypoints_2d for s in sequences], pad, pad if causal else 0, flip)
