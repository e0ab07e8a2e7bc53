"""Protocol 1-3, MPJVE and the bone-orientation errors MPBOE / J-MPBOE per action and averaged over actions.

Protocols 1-3 and MPJVE are as in VideoPose3D's paper tables; MPBOE and
J-MPBOE (Amadi & Agam 2023, docs/posture.md) measure posture alone and are
reported for Human3.6M-17 skeletons only (``None`` otherwise).

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
from poselift.metrics import j_mpboe, mpboe, mpjpe, mpjve, n_mpjpe, p_mpjpe
from poselift.models.fused import fuse_for_inference
from poselift.models.predict import predict_sequences
from poselift.skeleton import H36M_17


@dataclass
class ProtocolErrors:
    """Errors in millimetres over ``frames`` frames."""

    mpjpe: float
    p_mpjpe: float
    n_mpjpe: float
    mpjve: float
    frames: int
    mpboe: float | None = None  # Human3.6M-17 skeletons only
    j_mpboe: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def json_fields(self) -> dict:
        """Rounded values in report order: the posture errors next to P1 and P2."""
        keys = ("mpjpe", "p_mpjpe", "mpboe", "j_mpboe", "n_mpjpe", "mpjve")
        out = {k: None if getattr(self, k) is None else round(getattr(self, k), 3) for k in keys}
        return {**out, "frames": self.frames}


@dataclass
class EvaluationReport:
    mean: ProtocolErrors  # averaged over actions
    per_action: dict[str, ProtocolErrors]
    test_time_augmentation: bool
    per_subject: dict[str, ProtocolErrors] = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        out = {**self.mean.json_fields(), "units": "mm", "test_time_augmentation": self.test_time_augmentation,
               "per_action": {a: e.json_fields() for a, e in self.per_action.items()}}
        if self.per_subject:
            out["per_subject"] = {s: e.to_dict() for s, e in self.per_subject.items()}
        return out

    def table(self) -> str:
        lines = ["| action | frames | MPJPE (P1) | P-MPJPE (P2) | MPBOE | J-MPBOE | N-MPJPE (P3) | MPJVE |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]

        def row(name: str, e: ProtocolErrors) -> str:
            posture = " | ".join("-" if v is None else f"{v:.1f}" for v in (e.mpboe, e.j_mpboe))
            return (f"| {name} | {e.frames} | {e.mpjpe:.1f} | {e.p_mpjpe:.1f} | {posture} | {e.n_mpjpe:.1f} "
                    f"| {e.mpjve:.2f} |")

        lines += [row(a, e) for a, e in sorted(self.per_action.items())]
        lines.append(row("**average over actions**", self.mean))
        return "\n".join(lines)


def sequence_errors(predicted: np.ndarray, target: np.ndarray) -> tuple[float, float, float, float]:
    """(mpjpe, p_mpjpe, n_mpjpe, mpjve) in metres for one (T, J, 3) sequence."""
    p, t = torch.from_numpy(predicted).float(), torch.from_numpy(target).float()
    ve = mpjve(p, t).item() if p.shape[0] > 1 else 0.0
    return mpjpe(p, t).item(), p_mpjpe(p, t).item(), n_mpjpe(p, t).item(), ve


def sequence_posture_errors(predicted: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(mpboe, j_mpboe) in metres for one (T, 17, 3) Human3.6M-17 sequence."""
    p, t = torch.from_numpy(predicted).float(), torch.from_numpy(target).float()
    return mpboe(p, t).item(), j_mpboe(p, t).item()


_KEYS = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "mpboe", "j_mpboe")


def _errors(values, frames: int) -> ProtocolErrors:
    """ProtocolErrors from values in _KEYS order; NaN (not measured) becomes None."""
    return ProtocolErrors(**{k: None if np.isnan(v) else float(v) for k, v in zip(_KEYS, values)}, frames=frames)


def _pool(items: list[tuple[int, tuple[float, ...]]]) -> ProtocolErrors:
    """Frame-weighted mean of per-sequence errors (metres, _KEYS order, NaN = not measured) -> mm."""
    frames = sum(n for n, _ in items)
    sums = np.sum([np.array(e, dtype=np.float64) * n for n, e in items], axis=0) / max(frames, 1) * 1000
    return _errors(sums, frames)


def _average(errors: list[ProtocolErrors]) -> ProtocolErrors:
    values = [np.mean([np.nan if getattr(e, k) is None else getattr(e, k) for e in errors]) for k in _KEYS]
    return _errors(values, sum(e.frames for e in errors))


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
    # free bones are defined on Human3.6M-17 joints only
    skeleton = dataset.skeleton
    posture = skeleton is not None and skeleton.name == H36M_17.name and skeleton.num_joints == 17
    for seq, pred in zip(sequences, predict_all(model, sequences, causal, flip)):
        target = root_relative(seq.positions_3d)
        errs = sequence_errors(pred, target) + (sequence_posture_errors(pred, target) if posture else (np.nan, np.nan))
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
