"""Two-stage lifting: any registered lifter followed by a SemGCN refiner.

The second stage of the SE-ResNet + FC + SemGCN pipeline ('3D Human Pose
Estimation with simple Self-Supervised Learning'): a first lifter gives a 3D
estimate per output frame, and :class:`~poselift.models.semgcn.SemGCNRefiner`
adds a residual computed on the skeleton graph from that estimate and, when
configured with ``in_features=5``, the 2D keypoints of the same frame.

Input (B, T, J_in, 2), output (B, T - receptive_field + 1, J_out, 3), like every
lifter; the receptive field is the first lifter's. Output frame ``t`` is input
frame ``t + offset`` with ``offset = (receptive_field - 1) // 2`` (or
``receptive_field - 1`` for a causal temporal convolution), and that frame's 2D
goes to the refiner.

Training the refiner on a fixed first stage (the paper's recipe) sets
:attr:`RefinedLifter.lifter_frozen`: the lifter then stays in eval mode (BatchNorm
running statistics, no dropout) whatever ``train()`` is called with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from poselift.models.semgcn import SemGCNRefiner, SemGCNRefinerConfig


@dataclass
class RefinedLifterConfig:
    """A first lifter (registry kind + its config dict) and a SemGCN refiner config dict."""

    lifter_kind: str = "baseline"
    lifter: dict = field(default_factory=dict)
    refiner: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.lifter_kind in ("refined", "semgcn_refiner"):
            raise ValueError(f"the first stage of a refined lifter cannot be a {self.lifter_kind}")
        self.lifter = dict(self.lifter)
        self.refiner = dict(self.refiner)

    def to_dict(self) -> dict:
        return {"lifter_kind": self.lifter_kind, "lifter": dict(self.lifter), "refiner": dict(self.refiner)}


class RefinedLifter(nn.Module):
    """``refiner(lifter(x), x at the output frames)``; see the module docstring."""

    def __init__(self, config: RefinedLifterConfig) -> None:
        from poselift.models.registry import build_lifter, output_joints

        super().__init__()
        self.config = config
        self.lifter = build_lifter(config.lifter_kind, config.lifter)
        self.refiner = SemGCNRefiner(SemGCNRefinerConfig(**config.refiner))
        if self.refiner.config.num_joints != output_joints(self.lifter):
            raise ValueError(f"the refiner's graph has {self.refiner.config.num_joints} joints, the lifter "
                             f"predicts {output_joints(self.lifter)}")
        self.lifter_frozen = False

    @property
    def receptive_field(self) -> int:
        return self.lifter.receptive_field

    @property
    def output_offset(self) -> int:
        """Input frame index of output frame 0."""
        rf = self.receptive_field
        causal = bool(getattr(self.lifter.config, "causal", False))
        return rf - 1 if causal else (rf - 1) // 2

    def freeze_lifter(self, frozen: bool = True) -> None:
        """Stop (or restart) training the first stage: no gradients, always in eval mode."""
        self.lifter_frozen = frozen
        for p in self.lifter.parameters():
            p.requires_grad_(not frozen)
        if frozen:
            self.lifter.eval()

    def train(self, mode: bool = True) -> RefinedLifter:
        super().train(mode)
        if self.lifter_frozen:
            self.lifter.eval()
        return self

    def set_bn_momentum(self, momentum: float) -> None:
        if hasattr(self.lifter, "set_bn_momentum"):
            self.lifter.set_bn_momentum(momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J_in, 2) -> (B, T - receptive_field + 1, J_out, 3)."""
        coarse = self.lifter(x)
        if not self.refiner.uses_2d:
            return self.refiner(coarse)
        start = self.output_offset
        return self.refiner(coarse, x[:, start : start + coarse.shape[1]])

