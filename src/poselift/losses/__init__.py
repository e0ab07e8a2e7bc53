"""Training losses, each a small module returning a scalar; the trainer sums the configured terms."""

from poselift.losses.posture import (BoneProportionLoss, BoneSymmetryLoss, JointMobilityLoss, MultiViewPoseLoss,
                                     MultiViewPostureLoss)
from poselift.losses.semi_supervised import BoneLengthConsistencyLoss, ReprojectionLoss
from poselift.losses.supervised import MPJPELoss, WeightedMPJPELoss

__all__ = ["BoneLengthConsistencyLoss", "MPJPELoss", "ReprojectionLoss", "WeightedMPJPELoss",
           "BoneProportionLoss", "BoneSymmetryLoss", "JointMobilityLoss", "MultiViewPoseLoss", "MultiViewPostureLoss"]
