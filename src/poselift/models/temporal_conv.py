"""Dilated temporal-convolution lifter (VideoPose3D, Pavllo et al. CVPR 2019).

Input (B, T, J_in, C_in) 2D keypoints, output (B, T - receptive_field + 1, J_out, 3).
A stack of blocks with filter widths ``w_0, w_1, ...``: block ``i`` convolves with
dilation ``w_0 * ... * w_{i-1}``, so the receptive field is ``prod(w)`` frames
(3,3,3,3,3 -> 243). Each block is conv(w, dilated) -> BN -> ReLU -> dropout ->
conv(1) -> BN -> ReLU -> dropout plus a residual sliced from the block input.

Two module variants share parameter names and shapes, so weights move freely
between them and to and from VideoPose3D checkpoints:

- :class:`TemporalConvLifter`: dilated convolutions, any input length (evaluation,
  inference, training with ``stride > 1`` chunks);
- :class:`TemporalConvLifterStrided`: strided convolutions for training batches
  whose input length equals the receptive field (one output frame): it computes
  only the activations that output frame needs.

The trajectory model is the same network with one output joint (the root).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass
class TemporalConvConfig:
    """Architecture of a temporal-convolution lifter (a JSON-serialisable record)."""

    num_joints_in: int = 17
    in_features: int = 2
    num_joints_out: int = 17
    filter_widths: list[int] = field(default_factory=lambda: [3, 3, 3])
    causal: bool = False
    dropout: float = 0.25
    channels: int = 1024
    dense: bool = False

    def __post_init__(self) -> None:
        self.filter_widths = [int(w) for w in self.filter_widths]
        if not self.filter_widths or any(w < 1 or w % 2 == 0 for w in self.filter_widths):
            raise ValueError(f"filter_widths must be odd positive integers, got {self.filter_widths}")

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * sum(block_pads(self.filter_widths))

    def to_dict(self) -> dict:
        return asdict(self)


def block_pads(filter_widths: list[int]) -> list[int]:
    """Frames each block consumes on either side: ``(w_i - 1) * dilation_i // 2``."""
    pads = [filter_widths[0] // 2]
    dilation = filter_widths[0]
    for w in filter_widths[1:]:
        pads.append((w - 1) * dilation // 2)
        dilation *= w
    return pads


def check_input(x: torch.Tensor, config: TemporalConvConfig) -> None:
    """Raise ValueError unless ``x`` is (B, T >= receptive field, J_in, C_in) for ``config``."""
    if x.dim() != 4 or x.shape[-2] != config.num_joints_in or x.shape[-1] != config.in_features:
        raise ValueError(f"expected input (B, T, {config.num_joints_in}, {config.in_features}), got {tuple(x.shape)}")
    if x.shape[1] < config.receptive_field:
        raise ValueError(f"input has {x.shape[1]} frames, fewer than the receptive field {config.receptive_field}")


class ReceptiveFieldMixin:
    """``receptive_field`` and ``total_causal_shift`` from ``self.pad`` and ``self.config``."""

    pad: list[int]
    config: TemporalConvConfig

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * sum(self.pad)

    @property
    def total_causal_shift(self) -> int:
        """Frames the output is delayed by in causal mode (0 when symmetric): ``(receptive_field - 1) // 2``."""
        return (self.receptive_field - 1) // 2 if self.config.causal else 0


class _TemporalConvBase(ReceptiveFieldMixin, nn.Module):
    def __init__(self, config: TemporalConvConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.pad = block_pads(config.filter_widths)
        self.drop = nn.Dropout(config.dropout)
        self.relu = nn.ReLU(inplace=True)
        self.expand_bn = nn.BatchNorm1d(c, momentum=0.1)
        self.shrink = nn.Conv1d(c, config.num_joints_out * 3, 1)
        self.layers_bn = nn.ModuleList(
            nn.BatchNorm1d(c, momentum=0.1) for _ in range(2 * (len(config.filter_widths) - 1))
        )

    def set_bn_momentum(self, momentum: float) -> None:
        self.expand_bn.momentum = momentum
        for bn in self.layers_bn:
            bn.momentum = momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J_in, C_in) -> (B, T_out, J_out, 3)."""
        check_input(x, self.config)
        b = x.shape[0]
        h = x.reshape(b, x.shape[1], -1).transpose(1, 2)
        h = self._blocks(h)
        return h.transpose(1, 2).reshape(b, -1, self.config.num_joints_out, 3)

    def _blocks(self, h: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class TemporalConvLifter(_TemporalConvBase):
    """Dilated temporal convolutions over whole sequences (see module docstring)."""

    def __init__(self, config: TemporalConvConfig) -> None:
        super().__init__(config)
        c, fw = config.channels, config.filter_widths
        self.expand_conv = nn.Conv1d(config.num_joints_in * config.in_features, c, fw[0], bias=False)
        self.causal_shift = [fw[0] // 2 if config.causal else 0]
        convs = []
        dilation = fw[0]
        for i, w in enumerate(fw[1:], start=1):
            self.causal_shift.append(w // 2 * dilation if config.causal else 0)
            if config.dense:
                convs.append(nn.Conv1d(c, c, 2 * self.pad[i] + 1, bias=False))
            else:
                convs.append(nn.Conv1d(c, c, w, dilation=dilation, bias=False))
            convs.append(nn.Conv1d(c, c, 1, bias=False))
            dilation *= w
        self.layers_conv = nn.ModuleList(convs)

    def _blocks(self, h: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.relu(self.expand_bn(self.expand_conv(h))))
        for i in range(len(self.pad) - 1):
            pad, shift = self.pad[i + 1], self.causal_shift[i + 1]
            # Causal blocks keep the latest frames: the residual window moves right by `shift`.
            residual = h[:, :, pad + shift : h.shape[2] - pad + shift]
            h = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](h))))
            h = residual + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](h))))
        return self.shrink(h)


class TemporalConvLifterStrided(_TemporalConvBase):
    """Strided variant for single-output-frame batches; weights interchangeable with the dilated one."""

    def __init__(self, config: TemporalConvConfig) -> None:
        if config.dense:
            raise ValueError("the strided single-frame variant has no dense ablation; use TemporalConvLifter")
        super().__init__(config)
        c, fw = config.channels, config.filter_widths
        self.expand_conv = nn.Conv1d(config.num_joints_in * config.in_features, c, fw[0], stride=fw[0], bias=False)
        self.causal_shift = [fw[0] // 2 if config.causal else 0]
        convs = []
        for w in fw[1:]:
            self.causal_shift.append(w // 2 if config.causal else 0)
            convs.append(nn.Conv1d(c, c, w, stride=w, bias=False))
            convs.append(nn.Conv1d(c, c, 1, bias=False))
        self.layers_conv = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.shape[1] != self.receptive_field:
            raise ValueError(
                f"the strided lifter takes exactly receptive_field={self.receptive_field} frames, got {x.shape[1]}"
            )
        return super().forward(x)

    def _blocks(self, h: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.relu(self.expand_bn(self.expand_conv(h))))
        for i in range(len(self.pad) - 1):
            w = self.config.filter_widths[i + 1]
            residual = h[:, :, self.causal_shift[i + 1] + w // 2 :: w]
            h = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](h))))
            h = residual + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](h))))
        return self.shrink(h)
