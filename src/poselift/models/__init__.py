"""Lifting models: the temporal-convolution lifter (VideoPose3D), its trajectory twin,
inference fusion, RIE, the fully connected baseline, SemGCN, one registry of them,
and loading of VideoPose3D checkpoints and poselift weights."""

from poselift.models.fused import FusedTemporalConvLifter, fuse_for_inference
from poselift.models.temporal_conv import (
    TemporalConvConfig,
    TemporalConvLifter,
    TemporalConvLifterStrided,
    block_pads,
)
from poselift.models.registry import LIFTERS, build_lifter, kind_of
from poselift.models.videopose3d_checkpoint import VideoPose3DCheckpoint, load_videopose3d
from poselift.models.weights import load_model, save_model

__all__ = [
    "LIFTERS",
    "FusedTemporalConvLifter",
    "TemporalConvConfig",
    "TemporalConvLifter",
    "TemporalConvLifterStrided",
    "VideoPose3DCheckpoint",
    "block_pads",
    "build_lifter",
    "fuse_for_inference",
    "kind_of",
    "load_model",
    "load_videopose3d",
    "save_model",
]
