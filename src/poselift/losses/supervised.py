"""Supervised 3D losses."""

from __future__ import annotations

import torch
from torch import nn

from poselift.metrics import mpjpe


class MPJPELoss(nn.Module):
    """Mean per-joint position error between (..., J, 3) poses (VideoPose3D's supervised loss)."""

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.weight * mpjpe(predicted, target)


class WeightedMPJPELoss(nn.Module):
    """Per-joint distances scaled by ``w`` (B, T, J), e.g. 1/depth for the trajectory model.

    Far subjects move fewer pixels per metre, so an unweighted loss would spend
    the model's capacity on depth errors the 2D input cannot resolve.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, predicted: torch.Tensor, target: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if predicted.shape != target.shape:
            raise ValueError(f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} differ")
        return self.weight * torch.mean(w * torch.linalg.vector_norm(predicted - target, dim=-1))
