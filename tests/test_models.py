"""Temporal-convolution lifters: geometry of the receptive field, variants, causality, fusion."""

from __future__ import annotations

import pytest
import torch

from model_helpers import randomise_bn

from poselift.models import (
    TemporalConvConfig,
    TemporalConvLifter,
    TemporalConvLifterStrided,
    block_pads,
    fuse_for_inference,
)


def _model(widths, *, causal=False, channels=32, j_in=17, j_out=17, cls=TemporalConvLifter, dense=False, seed=0):
    torch.manual_seed(seed)
    cfg = TemporalConvConfig(num_joints_in=j_in, num_joints_out=j_out, filter_widths=list(widths),
                             causal=causal, channels=channels, dense=dense)
    m = cls(cfg)
    randomise_bn(m, seed)
    return m.eval()


def _x(b, t, j=17, seed=1, dtype=torch.float32):
    return torch.randn(b, t, j, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    "widths, rf, pads",
    [
        ([3, 3, 3], 27, [1, 3, 9]),
        ([3, 3, 3, 3, 3], 243, [1, 3, 9, 27, 81]),
        ([1, 1, 1], 1, [0, 0, 0]),
        ([3, 3, 3, 3], 81, [1, 3, 9, 27]),
        ([5, 3], 15, [2, 5]),
        ([3, 5, 3], 45, [1, 6, 15]),
        ([1], 1, [0]),
    ],
)
def test_receptive_field_and_pads(widths, rf, pads):
    assert block_pads(widths) == pads
    cfg = TemporalConvConfig(filter_widths=widths, channels=8)
    assert cfg.receptive_field == rf
    m = TemporalConvLifter(cfg)
    assert m.receptive_field == rf
    assert m.pad == pads
    # receptive field = product of the widths
    prod = 1
    for w in widths:
        prod *= w
    assert rf == prod
    assert m.total_causal_shift == 0
    mc = TemporalConvLifter(TemporalConvConfig(filter_widths=widths, channels=8, causal=True))
    assert mc.total_causal_shift == (rf - 1) // 2


def test_layer_shapes_and_dilations():
    m = TemporalConvLifter(TemporalConvConfig(filter_widths=[3, 3, 3], channels=16, num_joints_in=16,
                                              num_joints_out=15))
    assert tuple(m.expand_conv.weight.shape) == (16, 32, 3)
    assert m.expand_conv.bias is None
    assert [c.kernel_size[0] for c in m.layers_conv] == [3, 1, 3, 1]
    assert [c.dilation[0] for c in m.layers_conv] == [3, 1, 9, 1]
    assert tuple(m.shrink.weight.shape) == (45, 16, 1)
    assert len(m.layers_bn) == 4
    s = TemporalConvLifterStrided(m.config)
    assert [c.stride[0] for c in s.layers_conv] == [3, 1, 3, 1]
    assert s.expand_conv.stride[0] == 3
    # same parameter names and shapes
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {k: tuple(v.shape) for k, v in s.state_dict().items()}


def test_config_validation():
    with pytest.raises(ValueError):
        TemporalConvConfig(filter_widths=[3, 2, 3])
    with pytest.raises(ValueError):
        TemporalConvConfig(filter_widths=[])
    with pytest.raises(ValueError):
        TemporalConvLifterStrided(TemporalConvConfig(filter_widths=[3, 3], dense=True, channels=8))


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("widths", [[3, 3, 3], [1, 1, 1], [3, 5]])
def test_output_shape(widths):
    m = _model(widths, j_in=16, j_out=15, channels=16)
    rf = m.receptive_field
    for t in (rf, rf + 1, rf + 17):
        with torch.no_grad():
            y = m(_x(2, t, j=16))
        assert y.shape == (2, t - rf + 1, 15, 3)
        assert y.dtype == torch.float32


def test_bad_input_shapes_raise():
    m = _model([3, 3, 3], channels=8)
    with pytest.raises(ValueError):
        m(_x(1, 26))  # fewer frames than the receptive field
    with pytest.raises(ValueError):
        m(_x(1, 30, j=16))
    with pytest.raises(ValueError):
        m(torch.zeros(30, 17, 2))
    s = _model([3, 3, 3], channels=8, cls=TemporalConvLifterStrided)
    with pytest.raises(ValueError):
        s(_x(1, 28))


# --------------------------------------------------------------------------- strided == dilated


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("widths", [[3, 3, 3], [3, 5, 3], [5, 3], [3, 3, 3, 3, 3], [1, 1, 1]])
def test_strided_equals_dilated(widths, causal):
    dil = _model(widths, causal=causal, channels=16 if len(widths) > 3 else 32, seed=3)
    strided = TemporalConvLifterStrided(dil.config)
    strided.load_state_dict(dil.state_dict())
    strided.eval()
    rf = dil.receptive_field
    x = _x(4, rf, seed=4)
    with torch.no_grad():
        a = dil(x)
        b = strided(x)
    assert a.shape == b.shape == (4, 1, 17, 3)
    assert float((a - b).abs().max()) < 1e-5
    # and on a longer sequence, every dilated output frame is the strided output of its window
    xl = _x(1, rf + 6, seed=5)
    with torch.no_grad():
        full = dil(xl)
        for i in range(7):
            assert float((full[:, i] - strided(xl[:, i:i + rf])[:, 0]).abs().max()) < 1e-5


# --------------------------------------------------------------------------- causality


def _pad_edges(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    return torch.cat((x[:, :1].expand(-1, left, -1, -1), x, x[:, -1:].expand(-1, right, -1, -1)), dim=1)


def test_causal_output_depends_only_on_past():
    m = _model([3, 3, 3], causal=True, channels=16, seed=6)
    rf, shift = m.receptive_field, m.total_causal_shift
    pad = (rf - 1) // 2
    t_len = 40
    x = _x(1, t_len, seed=7)
    # VideoPose3D's evaluation padding: pad + shift on the left, pad - shift on the right,
    # so output t is aligned with input frame t.
    with torch.no_grad():
        y = m(_pad_edges(x, pad + shift, pad - shift))
        assert y.shape[1] == t_len
        k = 20
        x2 = x.clone()
        x2[:, k] += 5.0
        y2 = m(_pad_edges(x2, pad + shift, pad - shift))
    diff = (y2 - y).abs().amax(dim=(0, 2, 3))
    assert float(diff[:k].max()) == 0.0  # frames before k do not see frame k
    assert float(diff[k]) > 1e-4  # frame k sees itself
    # the symmetric model with symmetric padding does see the future
    sym = _model([3, 3, 3], causal=False, channels=16, seed=6)
    with torch.no_grad():
        z = sym(_pad_edges(x, pad, pad))
        z2 = sym(_pad_edges(x2, pad, pad))
    dz = (z2 - z).abs().amax(dim=(0, 2, 3))
    assert float(dz[k - 1]) > 1e-4
    assert float(dz[:k - pad].max()) == 0.0


@pytest.mark.parametrize("causal", [False, True])
def test_residual_path_alignment(causal):
    """With every block's convolutions silenced, the output is shrink(expand features) of one frame:
    the centre of the window (symmetric) or its newest frame (causal)."""
    m = _model([3, 3, 3], causal=causal, channels=16, seed=8)
    with torch.no_grad():
        for bn in m.layers_bn:
            bn.weight.zero_()
            bn.bias.zero_()
    rf = m.receptive_field
    x = _x(1, rf, seed=9)
    # expand conv has width 3; the residual frame is centre 13 (inputs 12..14) or newest 25 (inputs 24..26)
    anchor = rf - 2 if causal else rf // 2
    with torch.no_grad():
        y = m(x)
        feat = torch.relu(m.expand_bn(m.expand_conv(x[:, anchor - 1:anchor + 2].reshape(1, 3, -1).transpose(1, 2))))
        expected = m.shrink(feat).transpose(1, 2).reshape(1, 1, 17, 3)
        torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)
        x2 = x.clone()
        x2[:, [i for i in range(rf) if abs(i - anchor) > 1]] = 100.0
        torch.testing.assert_close(m(x2), y, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- dense ablation


def test_dense_kernel_sizes_and_equivalence_with_sparse_taps():
    dense = _model([3, 3, 3], dense=True, channels=16, seed=10)
    assert [c.kernel_size[0] for c in dense.layers_conv] == [7, 1, 19, 1]
    assert all(c.dilation[0] == 1 for c in dense.layers_conv)
    assert dense.receptive_field == 27
    dense5 = TemporalConvLifter(TemporalConvConfig(filter_widths=[3, 3, 3, 3, 3], dense=True, channels=4))
    assert [c.kernel_size[0] for c in dense5.layers_conv[::2]] == [7, 19, 55, 163]
    # A dense kernel that is zero except at the dilated taps equals the dilated model.
    dil = _model([3, 3, 3], channels=16, seed=11)
    state = dil.state_dict()
    dense_state = dict(state)
    for idx, d in ((0, 3), (2, 9)):
        w = state[f"layers_conv.{idx}.weight"]
        wd = torch.zeros(w.shape[0], w.shape[1], 2 * d + 1)
        wd[:, :, ::d] = w
        dense_state[f"layers_conv.{idx}.weight"] = wd
    dense.load_state_dict(dense_state)
    x = _x(2, 40, seed=12)
    with torch.no_grad():
        a, b = dil(x), dense(x)
    assert a.shape == b.shape == (2, 14, 17, 3)
    assert float((a - b).abs().max()) < 1e-5


# --------------------------------------------------------------------------- fused inference


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("widths", [[3, 3, 3], [3, 5]])
def test_fused_equals_eval(widths, causal):
    m = _model(widths, causal=causal, channels=32, seed=13)
    x = _x(2, m.receptive_field + 9, seed=14)
    with torch.no_grad():
        ref = m(x)
        out = fuse_for_inference(m)(x)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) < 1e-5
    assert float(ref.abs().max()) > 1e-3


def test_fused_dense_equals_eval():
    m = _model([3, 3, 3], dense=True, channels=16, seed=17)
    x = _x(2, 33, seed=18)
    with torch.no_grad():
        ref = m(x)
        out = fuse_for_inference(m)(x)
    assert out.shape == ref.shape == (2, 7, 17, 3)
    assert float((out - ref).abs().max()) < 1e-5


def test_fused_from_strided_and_from_training_mode_model():
    m = _model([3, 3, 3], channels=32, seed=15)
    s = TemporalConvLifterStrided(m.config)
    s.load_state_dict(m.state_dict())
    s.train()  # fusing uses the running statistics whatever the mode
    x = _x(1, 35, seed=16)
    with torch.no_grad():
        ref = m(x)
        out = fuse_for_inference(s)(x)
    assert out.shape == (1, 9, 17, 3)
    assert float((out - ref).abs().max()) < 1e-5
    # the source model is untouched
    assert s.training
    with torch.no_grad():
        m2 = _model([3, 3, 3], channels=32, seed=15)
        torch.testing.assert_close(m2(x), ref)
