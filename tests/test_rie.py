"""RIE lifter: geometry, relative encodings, multi-stage freezing, training, weights and reference parity."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from model_helpers import randomise_bn

from poselift.errors import CheckpointError
from poselift.models.rie import (
    REFERENCE_GROUPS,
    STAGE_LR_SCALE,
    RIEConfig,
    RIELifter,
    encode_windows,
    load_reference_state_dict,
    reference_key,
    set_stage,
)
from poselift.skeleton import H36M_17

TINY = dict(channels=8, latent_dim=4, mlp_channels=16)


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are many tiny ops: one thread is ~15x faster than two on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(widths=(3, 3), seed=0, **kw) -> RIELifter:
    torch.manual_seed(seed)
    return RIELifter(RIEConfig(filter_widths=list(widths), **{**TINY, **kw}))


def _x(b, t, seed=1) -> torch.Tensor:
    return torch.randn(b, t, 17, 2, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- config and shapes


@pytest.mark.parametrize("widths, rf", [([3, 3, 3], 27), ([3, 3, 3, 3], 81), ([3, 3, 3, 3, 3], 243), ([3, 5], 15)])
def test_receptive_field_and_output_shape(widths, rf):
    model = _model(widths).eval()
    assert model.config.receptive_field == rf and model.receptive_field == rf
    with torch.no_grad():
        out = model(_x(2, rf + 4))
    assert out.shape == (2, 5, 17, 3)
    with torch.no_grad():
        assert model(_x(3, rf)).shape == (3, 1, 17, 3)


def test_config_json_round_trip_and_reference_groups():
    cfg = RIEConfig(filter_widths=[3, 3, 3], latent_dim=512)
    again = RIEConfig(**json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.receptive_field == 27
    names = [[H36M_17.joint_names[j] for j in g] for g in cfg.groups]
    assert names == [
        ["pelvis", "spine", "thorax", "neck_nose", "head"],
        ["right_shoulder", "right_elbow", "right_wrist"],
        ["left_shoulder", "left_elbow", "left_wrist"],
        ["right_hip", "right_knee", "right_ankle"],
        ["left_hip", "left_knee", "left_ankle"],
    ]
    assert cfg.group_names == ["torso", "right_arm", "left_arm", "right_leg", "left_leg"]


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(filter_widths=[3, 2]), "odd"),
        (dict(groups=[[0, 1, 2], [3, 4]]), "each joint exactly once"),
        (dict(groups=[list(range(17)), [3]]), "each joint exactly once"),
        (dict(groups=[list(range(17))], group_names=["all"]), "at least two"),
        (dict(group_names=["a", "b"]), "group_names"),
        (dict(latent_dim=0), "latent_dim"),
    ],
)
def test_config_rejects(kw, match):
    with pytest.raises(ValueError, match=match):
        RIEConfig(**kw)


def test_short_or_misshapen_input_raises():
    model = _model([3, 3, 3]).eval()
    with pytest.raises(ValueError, match="26 frames, fewer than the receptive field 27"):
        model(_x(1, 26))
    with pytest.raises(ValueError, match=r"expected input \(B, T, 17, 2\)"):
        model(torch.zeros(1, 30, 16, 2))
    with pytest.raises(ValueError, match="windows must have 27 frames"):
        model.forward_windows(torch.zeros(2, 28, 17, 2))


def test_sequence_is_its_windows_and_chunking_is_exact():
    model = _model([3, 3])
    randomise_bn(model)
    model.eval()
    x = _x(2, 20)
    with torch.no_grad():
        whole = model(x)
        chunked = model(x, max_windows=3)  # 1 window per batch row per chunk
        per_window = torch.stack([model(x[:, s : s + 9])[:, 0] for s in range(12)], dim=1)
    assert whole.shape == (2, 12, 17, 3)
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(per_window, whole, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- relative encodings


def test_encode_windows_hand_values():
    # One window of 3 frames, 2 joints: joint 0 is the root, frame 1 the centre.
    w = torch.tensor([[[[1.0, 2.0], [4.0, 6.0]], [[2.0, 2.0], [3.0, 5.0]], [[0.0, 1.0], [7.0, 7.0]]]])
    v = encode_windows(w)
    assert v.shape == (1, 3, 3, 2, 2)
    assert torch.equal(v[:, :, 0], w)
    positional = [[[0.0, 0.0], [3.0, 4.0]], [[0.0, 0.0], [1.0, 3.0]], [[0.0, 0.0], [7.0, 6.0]]]
    temporal = [[[-1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], [[-2.0, -1.0], [4.0, 2.0]]]
    assert torch.equal(v[0, :, 1], torch.tensor(positional))
    assert torch.equal(v[0, :, 2], torch.tensor(temporal))


def test_encodings_translation_invariance():
    # Dyadic values so that subtracting the shift is exact and equality can be bitwise.
    g = torch.Generator().manual_seed(3)
    w = torch.randint(-64, 64, (4, 9, 17, 2), generator=g).float() / 8
    v = encode_windows(w)
    const = encode_windows(w + torch.tensor([3.25, -1.5]))
    # A shift constant over the window: both relative views are unchanged, the absolute one moves.
    assert torch.equal(const[:, :, 1:], v[:, :, 1:])
    assert not torch.equal(const[:, :, 0], v[:, :, 0])
    # A shift that varies per frame: only the positional (root-relative) view is unchanged; the
    # temporal view moves by (shift of frame f) - (shift of the centre frame).
    shift = torch.arange(9).float()[:, None, None].expand(9, 1, 2) / 4
    moving = encode_windows(w + shift)
    assert torch.equal(moving[:, :, 1], v[:, :, 1])
    assert torch.equal(moving[:, :, 2] - v[:, :, 2], (shift - shift[4]).expand(9, 17, 2).expand(4, 9, 17, 2))


def test_model_translation_dependence_comes_only_from_absolute_inputs():
    model = _model([3, 3], channels=16, latent_dim=8, mlp_channels=32)
    randomise_bn(model)
    model.eval()
    x = _x(2, 12)
    offset = torch.tensor([0.7, -0.4])
    with torch.no_grad():
        base = model(x)
        # As in the reference, absolute coordinates are inputs too: a global shift changes the output.
        assert (model(x + offset) - base).abs().max() > 1e-3
        # Cut the absolute inputs (the first third of each group's channels; the global encoder's input).
        for joints, enc in zip(model.config.groups, model.local_encoders):
            enc.expand_conv.weight[:, : 2 * len(joints)] = 0
        model.global_encoder.fc_in.weight.zero_()
        base = model(x)
        torch.testing.assert_close(model(x + offset), base, rtol=1e-5, atol=1e-5)
        # ...but a shift moving with time still changes the temporal encoding, hence the output.
        drift = torch.linspace(0, 1, 12)[None, :, None, None] * offset
        assert (model(x + drift) - base).abs().max() > 1e-3


# --------------------------------------------------------------------------- multi-stage training


def _names(model: RIELifter, params) -> set[str]:
    ids = {id(p) for p in params}
    return {n for n, p in model.named_parameters() if id(p) in ids}


@pytest.mark.parametrize(
    "stage, trained, fusion",
    [
        (1, ("local_encoders", "global_encoder", "decoders"), False),
        (2, ("fusion", "decoders"), True),
        (3, ("local_encoders", "global_encoder", "fusion", "decoders"), True),
    ],
)
def test_stage_trainable_sets(stage, trained, fusion):
    model = _model()
    groups = set_stage(model, stage)
    components = ("local_encoders", "global_encoder", "fusion", "decoders")
    assert [g["name"] for g in groups] == [n for n in components if n in trained]
    assert all(g["lr_scale"] == STAGE_LR_SCALE[stage] for g in groups)
    expected = {n for n, _ in model.named_parameters() if n.split(".")[0] in trained}
    assert _names(model, [p for g in groups for p in g["params"]]) == expected
    assert {n for n, p in model.named_parameters() if p.requires_grad} == expected
    assert model.use_fusion is fusion
    assert STAGE_LR_SCALE == {1: 1.0, 2: 1.0, 3: 0.5}
    # torch optimizers accept the extra keys
    opt = torch.optim.AdamW([{**g, "lr": 1e-3 * g["lr_scale"]} for g in groups])
    assert [pg["lr"] for pg in opt.param_groups] == [1e-3 * STAGE_LR_SCALE[stage]] * len(groups)


def test_bad_stage():
    with pytest.raises(ValueError, match="stage must be 1, 2 or 3, got 4"):
        set_stage(_model(), 4)


def test_stage1_bypasses_fusion():
    model = _model()
    set_stage(model, 1)
    model.train()
    loss = model(_x(4, 11)).square().mean()
    loss.backward()
    assert all(p.grad is None for p in model.fusion.parameters())
    others = [p for n, p in model.named_parameters() if not n.startswith("fusion.")]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in others if p.dim() > 1)
    # The fusion weights do not influence a stage-1 output at all.
    model.eval()
    x = _x(2, 10)
    with torch.no_grad():
        before = model(x)
        for p in model.fusion.parameters():
            p.add_(1.0)
        assert torch.equal(model(x), before)
        model.use_fusion = True
        assert not torch.allclose(model(x), before)


def test_stage2_step_changes_only_fusion_and_decoders():
    model = _model()
    set_stage(model, 1)
    model.reset_decoders()  # the reference's stage-2 restart
    groups = set_stage(model, 2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    running_before = model.local_encoders[0].expand_bn.running_mean.clone()
    opt = torch.optim.AdamW([{**g, "lr": 1e-3 * g["lr_scale"]} for g in groups], amsgrad=True)
    model.train()
    opt.zero_grad()
    model(_x(4, 11)).square().mean().backward()
    opt.step()
    for n, p in model.named_parameters():
        if n.startswith(("local_encoders.", "global_encoder.")):
            assert torch.equal(p, before[n]), n
            assert p.grad is None, n
        elif p.dim() > 1:
            assert not torch.equal(p, before[n]), n
    assert any(n.startswith("fusion.") for n in before)
    # As in the reference, frozen encoders in train mode still track BatchNorm statistics.
    assert not torch.equal(model.local_encoders[0].expand_bn.running_mean, running_before)


def test_reset_decoders_touches_only_decoders():
    model = _model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.reset_decoders()
    for n, p in model.named_parameters():
        if not n.startswith("decoders."):
            assert torch.equal(p, before[n]), n
        elif p.dim() == 2:  # linear weights are redrawn (BN affine terms go back to 1 and 0)
            assert not torch.equal(p, before[n]), n


def test_overfits_tiny_batch():
    torch.manual_seed(0)
    model = RIELifter(RIEConfig(filter_widths=[3, 3], channels=32, latent_dim=16, mlp_channels=64,
                                dropout=0.0, mlp_dropout=0.0))
    groups = set_stage(model, 3)
    opt = torch.optim.Adam([{**g, "lr": 2e-3} for g in groups])
    x = _x(4, 12, seed=5)
    y = torch.randn(4, 4, 17, 3, generator=torch.Generator().manual_seed(6)) * 0.2
    y[:, :, 0] = 0
    model.train()
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = (model(x) - y).norm(dim=-1).mean()  # MPJPE
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
    # ...and well below predicting zeros (the initial loss can be inflated by large random outputs).
    assert losses[-1] < y.norm(dim=-1).mean().item() / 10, (losses[-1], y.norm(dim=-1).mean().item())


# --------------------------------------------------------------------------- weights


def test_safetensors_round_trip_keeps_outputs_and_stage(tmp_path):
    model = _model([3, 3, 3])
    randomise_bn(model)
    set_stage(model, 1)
    model.eval()
    path = tmp_path / "rie.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    fresh = _model([3, 3, 3], seed=7)
    assert fresh.use_fusion  # a new model has fusion on...
    fresh.load_state_dict(load_file(str(path)))
    assert not fresh.use_fusion  # ...but a stage-1 model's file restores it off
    fresh.eval()
    x = _x(2, 30)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


_REF_NAMES = ["Torso", "LArm", "RArm", "LLeg", "RLeg"]


def _to_reference_key(name: str) -> str:
    """Inverse of reference_key, written independently, to fake reference state dicts."""
    top, index, rest = name.split(".", 2)
    if top == "local_encoders":
        return f"LocalLayer_{_REF_NAMES[int(index)]}.{rest}"
    if top == "global_encoder":
        prefix, rest = "GlobalInfo", f"{index}.{rest}"
    elif top == "fusion":
        prefix = f"FuseBlocks.{index}"
    else:
        prefix = f"Integration_{_REF_NAMES[int(index)]}"
    for a, b in [("fc_in", "fc_1"), ("bn_in", "bn_1"), ("fc_out", "fc_2")]:
        rest = re.sub(rf"^{a}\.", f"{b}.", rest)
    rest = re.sub(r"^blocks\.(\d+)\.(fc|bn)([12])\.",
                  lambda m: f"layers.{m[1]}.{'w' if m[2] == 'fc' else 'batch_norm'}{m[3]}.", rest)
    return f"{prefix}.{rest}"


def test_reference_key_names():
    assert reference_key("LocalLayer_LArm.layers_conv.2.weight") == "local_encoders.1.layers_conv.2.weight"
    assert reference_key("GlobalInfo.layers.1.batch_norm2.running_var") == "global_encoder.blocks.1.bn2.running_var"
    assert reference_key("FuseBlocks.3.fc_1.weight") == "fusion.3.fc_in.weight"
    assert reference_key("Integration_RLeg.fc_2.bias") == "decoders.4.fc_out.bias"
    with pytest.raises(CheckpointError, match="unexpected key"):
        reference_key("Shrink.weight")


@pytest.mark.parametrize("stage", [1, 3])
def test_load_reference_state_dict(stage):
    src = _model([3, 3])
    randomise_bn(src)
    src.use_fusion = stage != 1
    state = {}
    for k, v in src.state_dict().items():
        if k == "fusion_enabled" or (stage == 1 and k.startswith("fusion.")):
            continue
        if stage == 1 and re.fullmatch(r"decoders\.\d\.fc_in\.weight", k):
            v = torch.cat((v[:, :4], v[:, 8:]), dim=1)  # reference stage-1 decoders: [local, global]
        assert reference_key(_to_reference_key(k)) == k
        state[_to_reference_key(k)] = v.clone()
    dst = _model([3, 3], seed=9)
    load_reference_state_dict(dst, state)
    assert dst.use_fusion is (stage != 1)
    src.eval(), dst.eval()
    x = _x(3, 12)
    with torch.no_grad():
        if stage == 1:
            # The fused columns were not in the file: dst has zeros there, src has its random weights,
            # which is harmless since fusion is off.
            assert torch.equal(dst.decoders[0].fc_in.weight[:, 4:8], torch.zeros(16, 4))
        torch.testing.assert_close(dst(x), src(x), rtol=1e-6, atol=1e-6)
    with pytest.raises(CheckpointError, match="shape"):
        load_reference_state_dict(_model([3, 3], latent_dim=5), state)


def _fill_deterministic(model: torch.nn.Module) -> None:
    """Weights as a fixed formula of (sorted tensor index, element index), platform independent."""
    with torch.no_grad():
        for k, (name, v) in enumerate(sorted(model.state_dict().items())):
            if not v.dtype.is_floating_point:
                continue
            s = torch.sin(torch.arange(v.numel(), dtype=torch.float64) * 0.37 + 1.3 * k)
            vals = 0.6 + 0.5 * s**2 if name.endswith("running_var") else 0.4 * s
            v.copy_(vals.reshape(v.shape).to(v.dtype))


# Outputs of Pose3D-RIE's own RIEModel (common/model.py at bd3f488, eval mode, stage 1 and stage 3,
# filter widths 3,3, 8 channels, 4 latent features, its MLP width patched from 1024 to 16) with the
# weights of _fill_deterministic mapped by reference_key, on the input of the test below. Our model
# matched that reference to 0.0 absolute difference on these and on 6-window batches at 27/81/243 frames.
_REFERENCE_OUTPUTS = {
    1: dict(sum=-38.97003936767578, abs_sum=90.4059829711914,
            pelvis=(-0.7413432598114014, -0.9680087566375732, -1.069498062133789),
            b1_j16_z=1.0384202003479004, b0_j12_y=-0.7109802961349487),
    3: dict(sum=-39.07660675048828, abs_sum=89.25078582763672,
            pelvis=(-0.6947205066680908, -0.9144874811172485, -1.0160605907440186),
            b1_j16_z=1.1076213121414185, b0_j12_y=-0.948947548866272),
}


@pytest.mark.parametrize("stage", [1, 3])
def test_matches_reference_outputs(stage):
    model = RIELifter(RIEConfig(filter_widths=[3, 3], **TINY)).eval()
    _fill_deterministic(model)
    model.use_fusion = stage != 1
    x = (0.8 * torch.sin(torch.arange(2 * 9 * 17 * 2, dtype=torch.float64) * 0.173)).float().reshape(2, 9, 17, 2)
    with torch.no_grad():
        out = model(x).double()
    ref = _REFERENCE_OUTPUTS[stage]
    close = dict(rel=1e-5, abs=1e-5)
    assert out.sum().item() == pytest.approx(ref["sum"], **close)
    assert out.abs().sum().item() == pytest.approx(ref["abs_sum"], **close)
    assert out[0, 0, 0].tolist() == pytest.approx(ref["pelvis"], **close)
    assert out[1, 0, 16, 2].item() == pytest.approx(ref["b1_j16_z"], **close)
    assert out[0, 0, 12, 1].item() == pytest.approx(ref["b0_j12_y"], **close)
