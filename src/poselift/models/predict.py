"""Whole-sequence prediction with edge padding and optional flip test-time augmentation."""

from __future__ import annotations

import numpy as np
import torch

from poselift.data.windows import flip_keypoints, pad_sequence


def predict_sequence(model: torch.nn.Module, keypoints_2d: np.ndarray, *, causal: bool = False,
                     flip: tuple[list[int], list[int], list[int], list[int]] | None = None) -> np.ndarray:
    """Lift one sequence: (T, J_2d, 2) normalised keypoints -> (T, J_out, 3).

    The input is edge-padded by half the receptive field (shifted for causal
    models) so every frame gets a prediction. ``flip`` = (kps_left, kps_right,
    joints_left, joints_right) averages with the mirrored input's prediction
    mirrored back (VideoPose3D's test-time augmentation); for a one-joint
    trajectory model pass empty joint lists.
    """
    rf = model.receptive_field
    pad = (rf - 1) // 2
    shift = pad if causal else 0
    x = pad_sequence(keypoints_2d.astype(np.float32), pad, shift)[None]
    if flip is not None:
        kl, kr, jl, jr = flip
        x = np.concatenate([x, flip_keypoints(x, kl, kr)], axis=0)
    with torch.inference_mode():
        y = model(torch.from_numpy(x)).numpy()
    if flip is not None:
        y = (y[0] + flip_keypoints(y[1], jl, jr)) / 2
    else:
        y = y[0]
    return y
