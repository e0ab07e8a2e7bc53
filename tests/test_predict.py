"""Whole-sequence prediction: padding, flip test-time augmentation, causal alignment."""

import numpy as np
import pytest
import torch

from poselift.data.windows import flip_keypoints, pad_sequence
from poselift.models import TemporalConvConfig, TemporalConvLifter, fuse_for_inference
from poselift.models.predict import predict_sequence
from poselift.skeleton import H36M_17


def _model(causal=False, seed=0):
    torch.manual_seed(seed)
    m = TemporalConvLifter(TemporalConvConfig(filter_widths=[3, 3], channels=32, causal=causal))
    with torch.no_grad():
        for bn in [m.expand_bn, *m.layers_bn]:
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
    return m.eval()


def test_every_frame_gets_a_prediction_equal_to_padded_forward():
    m = _model()
    x = np.random.default_rng(0).normal(size=(20, 17, 2)).astype(np.float32)
    y = predict_sequence(m, x)
    assert y.shape == (20, 17, 3)
    with torch.no_grad():
        direct = m(torch.from_numpy(pad_sequence(x, 4))[None])[0].numpy()
    assert np.allclose(y, direct, atol=1e-6)


def test_flip_tta_is_mirror_equivariant():
    # With TTA the prediction of a mirrored clip is the mirrored prediction: both average the same pair.
    m = _model(seed=1)
    sym = (list(H36M_17.joints_left), list(H36M_17.joints_right)) * 2
    x = np.random.default_rng(1).normal(size=(15, 17, 2)).astype(np.float32)
    y = predict_sequence(m, x, flip=sym)
    y_mirror = predict_sequence(m, flip_keypoints(x, *sym[:2]), flip=sym)
    assert np.allclose(flip_keypoints(y, *sym[2:]), y_mirror, atol=1e-6)
    # and TTA is the mean of the plain and the un-mirrored flipped predictions
    plain = predict_sequence(m, x)
    flipped_back = flip_keypoints(predict_sequence(m, flip_keypoints(x, *sym[:2])), *sym[2:])
    assert np.allclose(y, (plain + flipped_back) / 2, atol=1e-6)
    assert not np.allclose(plain, flipped_back, atol=1e-3)  # the network itself is not symmetric


@pytest.mark.parametrize("fused", [False, True])
def test_causal_prediction_uses_only_past_frames(fused):
    m = _model(causal=True, seed=2)
    model = fuse_for_inference(m) if fused else m
    x = np.random.default_rng(2).normal(size=(30, 17, 2)).astype(np.float32)
    y = predict_sequence(model, x, causal=True)
    x2 = x.copy()
    x2[20:] += 1.0
    y2 = predict_sequence(model, x2, causal=True)
    assert np.allclose(y[:20], y2[:20], atol=1e-6)
    assert not np.allclose(y[20:], y2[20:], atol=1e-3)
