"""Fully connected single-frame lifter (Martinez et al., ICCV 2017).

"A simple yet effective baseline for 3d human pose estimation": the flattened 2D
pose of one frame goes through a linear layer to ``linear_size`` units
(BN, ReLU, dropout), ``num_stages`` residual blocks of two
(Linear, BatchNorm, ReLU, Dropout) layers, and a final linear layer to ``J_out * 3``
root-relative coordinates. It sees one frame at a time, so its receptive field
is 1 and a (B, T, J, 2) input gives (B, T, J, 3): the frames are independent
samples (also for BatchNorm statistics in training).

The optional max-norm constraint follows the authors' TensorFlow code: every
linear layer multiplies by its weight matrix clipped, in the forward pass, to
Frobenius norm at most 1 (``tf.clip_by_norm(w, 1)``); BatchNorm undoes the scale.
The PyTorch re-implementations (and the default here) leave it off.

Parameter names follow the widely used PyTorch port (``w1``, ``batch_norm1``,
``linear_stages.i.w1`` ...), so its Human3.6M checkpoints load with
``load_state_dict`` when the joint counts match (16 in / 16 out there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class BaselineConfig:
    """Architecture of the fully connected baseline (a JSON-serialisable record)."""

    num_joints_in: int = 17
    in_features: int = 2
    num_joints_out: int = 17
    linear_size: int = 1024
    num_stages: int = 2
    dropout: float = 0.5
    max_norm: bool = False

    def __post_init__(self) -> None:
        if self.linear_size < 1 or self.num_stages < 0:
            raise ValueError(
                f"linear_size must be >= 1 and num_stages >= 0, got {self.linear_size} and {self.num_stages}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def receptive_field(self) -> int:
        return 1

    def to_dict(self) -> dict:
        return asdict(self)


class MaxNormLinear(nn.Linear):
    """``nn.Linear`` whose weight is clipped to Frobenius norm <= ``max_norm`` when used.

    The stored parameter is left as it is (the clip is a reparametrisation, as in
    the original TensorFlow model), so the optimiser sees the raw weight.
    """

    def __init__(self, in_features: int, out_features: int, max_norm: float | None = None) -> None:
        super().__init__(in_features, out_features)
        self.max_norm = max_norm

    def effective_weight(self) -> torch.Tensor:
        """The (out, in) matrix the layer multiplies by."""
        if self.max_norm is None:
            return self.weight
        norm = torch.linalg.vector_norm(self.weight)
        return self.weight * torch.clamp(self.max_norm / norm.clamp_min(1e-12), max=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)


def _init_linear(layer: nn.Linear) -> None:
    # Kaiming-normal weights as in the original; PyTorch's default bias init.
    nn.init.kaiming_normal_(layer.weight)


class _ResidualStage(nn.Module):
    """x + drop(relu(bn(W2 drop(relu(bn(W1 x)))))), on (N, linear_size)."""

    def __init__(self, size: int, dropout: float, max_norm: float | None) -> None:
        super().__init__()
        self.w1 = MaxNormLinear(size, size, max_norm)
        self.batch_norm1 = nn.BatchNorm1d(size)
        self.w2 = MaxNormLinear(size, size, max_norm)
        self.batch_norm2 = nn.BatchNorm1d(size)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dropout(self.relu(self.batch_norm1(self.w1(x))))
        y = self.dropout(self.relu(self.batch_norm2(self.w2(y))))
        return x + y


class FCBaselineLifter(nn.Module):
    """Martinez et al. baseline: (B, T, J_in, C_in) -> (B, T, J_out, 3), frame by frame."""

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__()
        self.config = config
        size = config.linear_size
        max_norm = 1.0 if config.max_norm else None
        self.w1 = MaxNormLinear(config.num_joints_in * config.in_features, size, max_norm)
        self.batch_norm1 = nn.BatchNorm1d(size)
        self.linear_stages = nn.ModuleList(
            _ResidualStage(size, config.dropout, max_norm) for _ in range(config.num_stages)
        )
        self.w2 = MaxNormLinear(size, config.num_joints_out * 3, max_norm)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(config.dropout)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                _init_linear(m)

    @property
    def receptive_field(self) -> int:
        return 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J_in, C_in) 2D poses -> (B, T, J_out, 3) root-relative 3D poses."""
        cfg = self.config
        if x.dim() != 4 or x.shape[-2] != cfg.num_joints_in or x.shape[-1] != cfg.in_features:
            raise ValueError(f"expected input (B, T, {cfg.num_joints_in}, {cfg.in_features}), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        y = x.reshape(b * t, -1)
        y = self.dropout(self.relu(self.batch_norm1(self.w1(y))))
        for stage in self.linear_stages:
            y = stage(y)
        return self.w2(y).reshape(b, t, cfg.num_joints_out, 3)
