"""Loading original VideoPose3D checkpoints and poselift's own weight files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import poselift
from poselift.errors import CheckpointError
from malicious_payloads import CustomPayload, EvalPayload, SystemPayload
from poselift.models import (
    TemporalConvConfig,
    TemporalConvLifter,
    load_model,
    load_videopose3d,
    save_model,
)


# --------------------------------------------------------------------------- reference checkpoint


def _vp3d_state(widths, channels, j_in, j_out, seed, dense=False) -> dict[str, torch.Tensor]:
    """A state dict named exactly as VideoPose3D's TemporalModel names its parameters."""
    g = torch.Generator().manual_seed(seed)

    def w(*shape):
        fan_in = shape[1] * shape[2]
        return torch.randn(*shape, generator=g) / np.sqrt(fan_in)

    def bn(prefix, state):
        state[prefix + ".weight"] = torch.rand(channels, generator=g) + 0.5
        state[prefix + ".bias"] = torch.randn(channels, generator=g) * 0.2
        state[prefix + ".running_mean"] = torch.randn(channels, generator=g) * 0.3
        state[prefix + ".running_var"] = torch.rand(channels, generator=g) + 0.5
        state[prefix + ".num_batches_tracked"] = torch.tensor(1000)

    s: dict[str, torch.Tensor] = {"expand_conv.weight": w(channels, j_in * 2, widths[0])}
    bn("expand_bn", s)
    dilation = widths[0]
    for i, fw in enumerate(widths[1:]):
        k = (fw - 1) * dilation + 1 if dense else fw
        s[f"layers_conv.{2 * i}.weight"] = w(channels, channels, k)
        s[f"layers_conv.{2 * i + 1}.weight"] = w(channels, channels, 1)
        bn(f"layers_bn.{2 * i}", s)
        bn(f"layers_bn.{2 * i + 1}", s)
        dilation *= fw
    s["shrink.weight"] = w(j_out * 3, channels, 1)
    s["shrink.bias"] = torch.randn(j_out * 3, generator=g) * 0.1
    return s


def _write_vp3d_checkpoint(path, model_pos: dict, model_traj: dict | None = None, **extra) -> None:
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(5))]
    opt = torch.optim.Adam(params, lr=0.001, amsgrad=True)
    (params[0].sum() + params[1].pow(2).sum()).backward()
    opt.step()
    ckpt = {
        "epoch": 80,
        "lr": 0.00095,
        "random_state": np.random.RandomState(1),
        "optimizer": opt.state_dict(),
        "model_pos": model_pos,
        **extra,
    }
    if model_traj is not None:
        ckpt["model_traj"] = model_traj
        ckpt["random_state_semi"] = np.random.RandomState(2)
    torch.save(ckpt, path)


def _naive_vp3d_forward(state: dict, x: np.ndarray, widths, causal=False, dense=False) -> np.ndarray:
    """VideoPose3D's TemporalModel.forward in eval mode, written as loops in float64 NumPy.

    x: (T, J_in, 2) -> (T - rf + 1, J_out, 3).
    """
    st = {k: v.detach().double().numpy() for k, v in state.items()}
    eps = 1e-5

    def conv(h, weight, dilation):  # h (C_in, T), weight (C_out, C_in, K)
        k = weight.shape[2]
        t_out = h.shape[1] - (k - 1) * dilation
        out = np.zeros((weight.shape[0], t_out))
        for t in range(t_out):
            for tap in range(k):
                out[:, t] += weight[:, :, tap] @ h[:, t + tap * dilation]
        return out

    def bn(h, prefix):
        mean, var = st[prefix + ".running_mean"], st[prefix + ".running_var"]
        return (h - mean[:, None]) / np.sqrt(var[:, None] + eps) * st[prefix + ".weight"][:, None] + st[prefix + ".bias"][:, None]

    def relu(h):
        return np.maximum(h, 0)

    h = x.reshape(x.shape[0], -1).T.astype(np.float64)
    h = relu(bn(conv(h, st["expand_conv.weight"], 1), "expand_bn"))
    dilation = widths[0]
    for i, fw in enumerate(widths[1:]):
        pad = (fw - 1) * dilation // 2
        shift = fw // 2 * dilation if causal else 0
        res = h[:, pad + shift: h.shape[1] - pad + shift]
        h = relu(bn(conv(h, st[f"layers_conv.{2 * i}.weight"], 1 if dense else dilation), f"layers_bn.{2 * i}"))
        h = res + relu(bn(conv(h, st[f"layers_conv.{2 * i + 1}.weight"], 1), f"layers_bn.{2 * i + 1}"))
        dilation *= fw
    out = st["shrink.weight"][:, :, 0] @ h + st["shrink.bias"][:, None]
    return out.T.reshape(out.shape[1], -1, 3)


def _x(t, j, seed):
    return np.random.default_rng(seed).normal(size=(t, j, 2)).astype(np.float32)


# --------------------------------------------------------------------------- loading VideoPose3D checkpoints


@pytest.mark.parametrize("causal", [False, True])
def test_load_videopose3d_matches_naive_reference(tmp_path, causal):
    widths = [3, 3, 3]
    pos = _vp3d_state(widths, 32, 17, 17, seed=0)
    traj = _vp3d_state(widths, 16, 17, 1, seed=1)
    path = tmp_path / "pretrained_h36m_cpn.bin"
    _write_vp3d_checkpoint(path, pos, traj)
    ck = load_videopose3d(path, causal=causal)
    assert ck.epoch == 80 and abs(ck.lr - 0.00095) < 1e-12
    assert ck.config.causal is causal
    assert not ck.model_pos.training and not ck.model_traj.training
    x = _x(40, 17, seed=2)
    with torch.no_grad():
        y = ck.model_pos(torch.from_numpy(x)[None])[0].numpy()
        yt = ck.model_traj(torch.from_numpy(x)[None])[0].numpy()
    ref = _naive_vp3d_forward(pos, x, widths, causal=causal)
    ref_t = _naive_vp3d_forward(traj, x, widths, causal=causal)
    assert y.shape == ref.shape == (14, 17, 3)
    assert yt.shape == ref_t.shape == (14, 1, 3)
    assert np.abs(ref).max() > 0.1  # not a trivially zero comparison
    assert np.abs(y - ref).max() < 1e-5
    assert np.abs(yt - ref_t).max() < 1e-5


def test_load_videopose3d_causal_flag_matters(tmp_path):
    # Same weights, different alignment: the causal and symmetric outputs must differ.
    pos = _vp3d_state([3, 3, 3], 16, 17, 17, seed=3)
    path = tmp_path / "c.bin"
    _write_vp3d_checkpoint(path, pos)
    x = torch.from_numpy(_x(27, 17, seed=4))[None]
    with torch.no_grad():
        a = load_videopose3d(path).model_pos(x)
        b = load_videopose3d(path, causal=True).model_pos(x)
    assert float((a - b).abs().max()) > 1e-3


def test_package_level_entry_point():
    assert poselift.load_videopose3d is load_videopose3d


@pytest.mark.parametrize(
    "widths, channels, j_in, j_out",
    [
        ([3, 3, 3], 32, 17, 17),
        ([3, 3, 3, 3, 3], 8, 17, 17),
        ([3, 5, 3], 16, 16, 17),
        ([1, 1, 1], 8, 15, 15),
        ([5, 3], 12, 15, 14),
    ],
)
def test_architecture_inferred(tmp_path, widths, channels, j_in, j_out):
    path = tmp_path / "arch.bin"
    _write_vp3d_checkpoint(path, _vp3d_state(widths, channels, j_in, j_out, seed=5),
                           _vp3d_state(widths, channels, j_in, 1, seed=6))
    ck = load_videopose3d(path)
    cfg = ck.config
    assert cfg.filter_widths == widths
    assert cfg.channels == channels
    assert cfg.num_joints_in == j_in and cfg.num_joints_out == j_out and cfg.in_features == 2
    assert cfg.dense is False and cfg.causal is False
    assert ck.model_traj.config.num_joints_out == 1
    rf = int(np.prod(widths))
    assert ck.model_pos.receptive_field == rf
    x = _x(rf + 2, j_in, seed=7)
    with torch.no_grad():
        y = ck.model_pos(torch.from_numpy(x)[None])[0].numpy()
    ref = _naive_vp3d_forward(_vp3d_state(widths, channels, j_in, j_out, seed=5), x, widths)
    assert y.shape == (3, j_out, 3)
    assert np.abs(y - ref).max() < 1e-5


def test_dense_checkpoint(tmp_path):
    widths = [3, 3, 3]
    pos = _vp3d_state(widths, 16, 17, 17, seed=8, dense=True)
    assert pos["layers_conv.0.weight"].shape[-1] == 7 and pos["layers_conv.2.weight"].shape[-1] == 19
    path = tmp_path / "dense.bin"
    _write_vp3d_checkpoint(path, pos)
    ck = load_videopose3d(path, dense=True)
    assert ck.config.filter_widths == widths and ck.config.dense
    assert ck.model_traj is None
    x = _x(30, 17, seed=9)
    with torch.no_grad():
        y = ck.model_pos(torch.from_numpy(x)[None])[0].numpy()
    ref = _naive_vp3d_forward(pos, x, widths, dense=True)
    assert np.abs(y - ref).max() < 1e-5
    # read as non-dense, the kernel widths do not fit a dilated model with these widths
    ck2 = load_videopose3d(path)
    assert ck2.config.filter_widths == [3, 7, 19]


# --------------------------------------------------------------------------- bad checkpoints


def test_missing_file(tmp_path):
    path = tmp_path / "nope.bin"
    with pytest.raises(CheckpointError, match="nope.bin"):
        load_videopose3d(path)


def test_dict_without_model_pos(tmp_path):
    path = tmp_path / "nopos.bin"
    torch.save({"epoch": 3, "model_traj": _vp3d_state([3], 4, 17, 1, seed=0)}, path)
    with pytest.raises(CheckpointError, match="nopos.bin") as ei:
        load_videopose3d(path)
    assert "model_pos" in str(ei.value)
    path2 = tmp_path / "tensor.bin"
    torch.save(torch.zeros(3), path2)
    with pytest.raises(CheckpointError, match="tensor.bin"):
        load_videopose3d(path2)


def test_not_a_checkpoint_file(tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"this is not a torch file at all" * 10)
    with pytest.raises(CheckpointError, match="garbage.bin"):
        load_videopose3d(path)


def test_incomplete_state_dict(tmp_path):
    state = _vp3d_state([3, 3], 8, 17, 17, seed=1)
    del state["shrink.bias"]
    path = tmp_path / "noshrink.bin"
    _write_vp3d_checkpoint(path, state)
    with pytest.raises(CheckpointError, match="noshrink.bin"):
        load_videopose3d(path)
    state = _vp3d_state([3, 3], 8, 17, 17, seed=1)
    del state["layers_bn.1.running_var"]
    path = tmp_path / "nobn.bin"
    _write_vp3d_checkpoint(path, state)
    with pytest.raises(CheckpointError, match="nobn.bin"):
        load_videopose3d(path)





@pytest.mark.parametrize("kind", ["custom", "system", "eval"])
def test_pickled_code_is_refused_and_not_executed(tmp_path, kind):
    marker = tmp_path / "pwned"
    payload = {"custom": CustomPayload(), "system": SystemPayload(marker), "eval": EvalPayload(marker)}[kind]
    path = tmp_path / f"evil_{kind}.bin"
    torch.save({"epoch": 1, "model_pos": _vp3d_state([3], 4, 17, 17, seed=0), "extra": payload}, path)
    assert not marker.exists()  # saving did not run it
    with pytest.raises(CheckpointError, match=f"evil_{kind}.bin"):
        load_videopose3d(path)
    assert not marker.exists()


def test_expected_joints_mismatch(tmp_path):
    path = tmp_path / "j17.bin"
    _write_vp3d_checkpoint(path, _vp3d_state([3, 3], 8, 17, 17, seed=2))
    with pytest.raises(CheckpointError, match="j17.bin") as ei:
        load_videopose3d(path, expected_joints=16)
    assert "17" in str(ei.value) and "16" in str(ei.value)
    assert load_videopose3d(path, expected_joints=17).config.num_joints_in == 17


# --------------------------------------------------------------------------- poselift weights


def test_save_load_model_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = TemporalConvConfig(num_joints_in=17, num_joints_out=16, filter_widths=[3, 5], channels=24,
                             causal=True, dropout=0.1)
    model = TemporalConvLifter(cfg)
    traj = TemporalConvLifter(TemporalConvConfig(**{**cfg.to_dict(), "num_joints_out": 1}))
    for m in (model, traj):
        m.load_state_dict({k: (torch.randn_like(v.float()).abs() + 0.5).to(v.dtype) if "running_var" in k
                           else torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
                           for k, v in m.state_dict().items()})
        m.eval()
    st, js = save_model(model, tmp_path / "sub" / "model", trajectory=traj, extra={"notes": "hello"})
    assert st.name == "model.safetensors" and js.name == "model.json"
    meta = json.loads(js.read_text())
    assert meta["config"] == cfg.to_dict()
    assert meta["config"]["filter_widths"] == [3, 5] and meta["config"]["causal"] is True
    assert meta["has_trajectory"] is True and meta["notes"] == "hello"
    m2, t2, meta2 = load_model(st)
    assert meta2 == meta
    assert m2.config == cfg
    assert not m2.training and not t2.training
    x = torch.randn(2, 30, 17, 2)
    with torch.no_grad():
        torch.testing.assert_close(m2(x), model(x), atol=0, rtol=0)
        torch.testing.assert_close(t2(x), traj(x), atol=0, rtol=0)
    # the suffix may be omitted
    m3, _, _ = load_model(tmp_path / "sub" / "model")
    with torch.no_grad():
        torch.testing.assert_close(m3(x), model(x), atol=0, rtol=0)


def test_save_load_without_trajectory(tmp_path):
    model = TemporalConvLifter(TemporalConvConfig(channels=8, filter_widths=[3, 3]))
    st, _ = save_model(model, tmp_path / "m.safetensors")
    m2, t2, meta = load_model(st)
    assert t2 is None and meta["has_trajectory"] is False
    for k, v in model.state_dict().items():
        assert torch.equal(m2.state_dict()[k], v)


def test_load_model_missing_files(tmp_path):
    model = TemporalConvLifter(TemporalConvConfig(channels=8, filter_widths=[3, 3]))
    st, js = save_model(model, tmp_path / "m")
    js.unlink()
    with pytest.raises(CheckpointError, match="m.json"):
        load_model(st)
    with pytest.raises(CheckpointError, match="other.safetensors"):
        load_model(tmp_path / "other.safetensors")


def test_load_model_bad_json_and_mismatch(tmp_path):
    model = TemporalConvLifter(TemporalConvConfig(channels=8, filter_widths=[3, 3]))
    st, js = save_model(model, tmp_path / "m")
    meta = json.loads(js.read_text())
    meta["config"]["channels"] = 16
    js.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="m.safetensors"):
        load_model(st)
    js.write_text("{not json")
    with pytest.raises(CheckpointError, match="m.json"):
        load_model(st)
