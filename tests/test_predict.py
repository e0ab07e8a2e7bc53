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


@pytest.mark.parametrize("causal", [False, True])
def test_batched_fast_path_equals_one_forward_per_padded_sequence(causal):
    """predict_sequences (grouped streams, compressed padding, Winograd on CPU) vs the plain model."""
    from poselift.models.predict import predict_sequences

    torch.manual_seed(3)
    m = TemporalConvLifter(TemporalConvConfig(filter_widths=[3, 3, 3], channels=256, causal=causal))
    with torch.no_grad():
        for bn in [m.expand_bn, *m.layers_bn]:
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
    m.eval()
    fused = fuse_for_inference(m)
    rng = np.random.default_rng(3)
    seqs = [rng.normal(size=(n, 17, 2)).astype(np.float32) for n in (1, 7, 40, 400, 1200)]
    sym = (list(H36M_17.joints_left), list(H36M_17.joints_right)) * 2
    pad = 13
    shift = pad if causal else 0
    for flip in (None, sym):
        outs = predict_sequences(fused, seqs, pad, shift, flip, batch_frames=1024)
        for x, y in zip(seqs, outs):
            xp = pad_sequence(x, pad, shift)[None]
            with torch.no_grad():
                ref = m(torch.from_numpy(xp))[0].numpy()
                if flip is not None:
                    ref_f = m(torch.from_numpy(flip_keypoints(xp, *sym[:2])))[0].numpy()
                    ref = (ref + flip_keypoints(ref_f, *sym[2:])) / 2
            assert y.shape == (len(x), 17, 3)
            assert np.abs(y - ref).max() < 1e-5, (len(x), np.abs(y - ref).max())
