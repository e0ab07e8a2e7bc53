"""Inference-only temporal lifter with batch norm folded into the convolutions.

In eval mode ``BN(conv(x)) = conv'(x)`` with ``W' = W * g / sqrt(v + eps)`` and
``b' = beta - g * mu / sqrt(v + eps)``, which removes one pass over every
activation per layer. Dropout is the identity at inference and is dropped.
Output equals the source model's eval-mode output up to float rounding.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from poselift.models.temporal_conv import TemporalConvLifter, _TemporalConvBase


def _fold(conv: nn.Conv1d, bn: nn.BatchNorm1d) -> nn.Conv1d:
    fused = copy.deepcopy(conv)
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    fused.weight = nn.Parameter(conv.weight.detach() * scale[:, None, None], requires_grad=False)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias = nn.Parameter(bn.bias.detach() + (bias - bn.running_mean) * scale, requires_grad=False)
    return fused


class FusedTemporalConvLifter(nn.Module):
    """Eval-only copy of a :class:`TemporalConvLifter` (or strided one) with BN folded in.

    Always uses dilated convolutions, so it accepts any input length >= the
    receptive field, whichever variant it was built from.
    """

    def __init__(self, model: _TemporalConvBase) -> None:
        super().__init__()
        dilated = model if isinstance(model, TemporalConvLifter) else _to_dilated(model)
        self.config = dilated.config
        self.pad = list(dilated.pad)
        self.causal_shift = list(dilated.causal_shift)
        self.expand = _fold(dilated.expand_conv, dilated.expand_bn)
        self.convs = nn.ModuleList(
            _fold(dilated.layers_conv[i], dilated.layers_bn[i]) for i in range(len(dilated.layers_conv))
        )
        self.shrink = copy.deepcopy(dilated.shrink)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * sum(self.pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J_in, C_in) -> (B, T - receptive_field + 1, J_out, 3)."""
        b = x.shape[0]
        h = torch.relu_(self.expand(x.reshape(b, x.shape[1], -1).transpose(1, 2)))
        for i in range(len(self.pad) - 1):
            pad, shift = self.pad[i + 1], self.causal_shift[i + 1]
            residual = h[:, :, pad + shift : h.shape[2] - pad + shift]
            h = torch.relu_(self.convs[2 * i](h))
            h = torch.relu_(self.convs[2 * i + 1](h)).add_(residual)
        h = self.shrink(h)
        return h.transpose(1, 2).reshape(b, -1, self.config.num_joints_out, 3)


def _to_dilated(model: _TemporalConvBase) -> TemporalConvLifter:
    dilated = TemporalConvLifter(copy.deepcopy(model.config))
    dilated.load_state_dict(model.state_dict())
    return dilated.eval()


def fuse_for_inference(model: _TemporalConvBase) -> FusedTemporalConvLifter:
    """Return a BN-folded, eval-only copy of ``model`` (the original is untouched)."""
    return FusedTemporalConvLifter(model)
