"""Fully connected single-frame lifter (Martinez et al., ICCV 2017).

"A simple yet effective baseline for 3d human pose estimation": the flattened 2D
pose of one frame goes through a linear layer to ``linear_size`` units
(BN, ReLU, dropout), ``num_stages`` residual blocks of two
(Linear, BatchNorm, ReLU, Dropout) layers, and a final linear layer to ``J_out * 3``
root-relative coordinates. It sees one frame at a time, so its receptive field
is 1 and a (B, T, J, 2) input gives (B, T, J, 3): the frames are independent
samples (also for BatchNorm statistics in training).

Data normalisation, as in the authors' code: the 2D input and the 3D output are
z-scored per coordinate with statistics of the training set. The statistics are
buffers of the module (``input_mean``/``input_std``, ``output_mean``/``output_std``,
identity by default; :meth:`FCBaselineLifter.set_normalization` sets them, the
trainer does so before training), so saved weights carry them and the module maps
raw 2D to metres by itself. Without normalised targets the last layer starts with
outputs of about a metre and training spends its first epochs shrinking them.

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
        n_in, n_out = config.num_joints_in * config.in_features, config.num_joints_out * 3
        self.register_buffer("input_mean", torch.zeros(n_in))
        self.register_buffer("input_std", torch.ones(n_in))
        self.register_buffer("output_mean", torch.zeros(n_out))
        self.register_buffer("output_std", torch.ones(n_out))

    _NORMALIZATION = ("input_mean", "input_std", "output_mean", "output_std")

    def set_normalization(self, inputs: torch.Tensor, targets: torch.Tensor, min_std: float = 1e-4) -> None:
        """Per-coordinate z-scoring from training data: ``inputs`` (N, J_in, C_in), ``targets`` (N, J_out, 3).

        Coordinates that barely vary (the root of root-relative targets, exactly 0)
        keep a standard deviation of 1, so they are only shifted.
        """
        x = torch.as_tensor(inputs, dtype=torch.float64).reshape(len(inputs), -1)
        y = torch.as_tensor(targets, dtype=torch.float64).reshape(len(targets), -1)
        if x.shape[1] != self.input_mean.numel() or y.shape[1] != self.output_mean.numel():
            raise ValueError(f"normalisation data has {x.shape[1]} input and {y.shape[1]} output values per frame, "
                             f"the model {self.input_mean.numel()} and {self.output_mean.numel()}")
        for name, data in (("input", x), ("output", y)):
            std = data.std(dim=0)
            std = torch.where(std < min_std, torch.ones_like(std), std)
            getattr(self, f"{name}_mean").copy_(data.mean(dim=0))
            getattr(self, f"{name}_std").copy_(std)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights without statistics (the PyTorch port's checkpoints, which normalise outside
        # the model) load with the identity normalisation.
        for name in self._NORMALIZATION:
            state_dict.setdefault(prefix + name, getattr(self, name).detach().clone().fill_(
                0.0 if name.endswith("mean") else 1.0))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def receptive_field(self) -> int:
        return 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J_in, C_in) 2D poses -> (B, T, J_out, 3) root-relative 3D poses."""
        cfg = self.config
        if x.dim() != 4 or x.shape[-2] != cfg.num_joints_in or x.shape[-1] != cfg.in_features:
            raise ValueError(f"expected input (B, T, {cfg.num_joints_in}, {cfg.in_features}), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        y = (x.reshape(b * t, -1) - self.input_mean) / self.input_std
        y = self.dropout(self.relu(self.batch_norm1(self.w1(y))))
        for stage in self.linear_stages:
            y = stage(y)
        y = self.w2(y) * self.output_std + self.output_mean
        return y.reshape(b, t, cfg.num_joints_out, 3)
