"""Losses for unlabelled 2D: back-projection through the camera and bone-length consistency."""

from __future__ import annotations

import torch
from torch import nn

from poselift.geometry.camera import project_to_2d, project_to_2d_linear
from poselift.metrics import mpjpe


class ReprojectionLoss(nn.Module):
    """2D MPJPE between the input keypoints and the projection of pose + trajectory.

    Args (forward):
        pose: (B, T, J, 3) root-relative camera-space pose.
        trajectory: (B, T, 1, 3) root position in camera space.
        keypoints_2d: (B, T, J, 2) observed keypoints (normalised screen units).
        intrinsics: (B, 9) normalised intrinsics.
    """

    def __init__(self, weight: float = 1.0, linear: bool = False) -> None:
        super().__init__()
        self.weight = weight
        self.project = project_to_2d_linear if linear else project_to_2d

    def forward(self, pose: torch.Tensor, trajectory: torch.Tensor, keypoints_2d: torch.Tensor,
                intrinsics: torch.Tensor) -> torch.Tensor:
        return self.weight * mpjpe(self.project(pose + trajectory, intrinsics), keypoints_2d)


class BoneLengthConsistencyLoss(nn.Module):
    """|mean bone lengths of labelled predictions - those of unlabelled predictions|, averaged over bones.

    Keeps the unlabelled predictions from collapsing to a degenerate skeleton
    that still reprojects well (VideoPose3D's bone-length term).

    Args (forward):
        labelled, unlabelled: (B, T, J, 3) predicted poses.
    """

    def __init__(self, parents: list[int] | tuple[int, ...], weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight
        children = [j for j, p in enumerate(parents) if p >= 0]
        self.register_buffer("child", torch.tensor(children), persistent=False)
        self.register_buffer("parent", torch.tensor([parents[j] for j in children]), persistent=False)

    def bone_lengths(self, poses: torch.Tensor) -> torch.Tensor:
        """(B, T, J, 3) -> (B, bones), lengths averaged over time."""
        return torch.linalg.vector_norm(poses[:, :, self.child] - poses[:, :, self.parent], dim=-1).mean(dim=1)

    def forward(self, labelled: torch.Tensor, unlabelled: torch.Tensor) -> torch.Tensor:
        diff = self.bone_lengths(labelled).mean(dim=0) - self.bone_lengths(unlabelled).mean(dim=0)
        return self.weight * diff.abs().mean()
