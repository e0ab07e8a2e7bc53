"""Single-frame lifters: the FC baseline (Martinez et al.) and SemGCN (lifter, refiner, graph conv).

The parity tests against the authors' SemGCN code run only when
``POSELIFT_SEMGCN_REFERENCE`` names a checkout of github.com/garyzhao/SemGCN.
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path
import types

import pytest
import torch
from safetensors.torch import load_file, save_file

from model_helpers import randomise_bn

from poselift.models.baseline import BaselineConfig, FCBaselineLifter, MaxNormLinear
from poselift.models.refined import RefinedLifter, RefinedLifterConfig
from poselift.models.semgcn import (
    H36M_17_JOINT_GROUPS,
    SemGCNConfig,
    SemGCNLifter,
    SemGCNRefiner,
    SemGCNRefinerConfig,
    SemGraphConv,
    _GraphNonLocal,
    adjacency_from_parents,
    convert_reference_state_dict,
)
from poselift.skeleton import H36M_17


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: on a busy 2-core machine, intra-op threads only fight each other.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _randn(*shape, seed=1, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _baseline(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("linear_size", 64)
    m = FCBaselineLifter(BaselineConfig(**kw))
    randomise_bn(m, seed)
    return m.eval()


def _semgcn(seed=0, refiner=False, **kw):
    torch.manual_seed(seed)
    kw.setdefault("hid_dim", 16)
    kw.setdefault("num_layers", 2)
    m = SemGCNRefiner(SemGCNRefinerConfig(**kw)) if refiner else SemGCNLifter(SemGCNConfig(**kw))
    randomise_bn(m, seed)
    return m.eval()


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --------------------------------------------------------------------------- configs and sizes


def test_configs_are_json_round_trippable_and_single_frame():
    for cls in (BaselineConfig, SemGCNConfig, SemGCNRefinerConfig):
        cfg = cls()
        assert cfg.receptive_field == 1
        assert cls(**json.loads(json.dumps(cfg.to_dict()))) == cfg
    cfg = SemGCNConfig(non_local=True, joint_groups=[list(g) for g in H36M_17_JOINT_GROUPS], p_dropout=0.1)
    assert SemGCNConfig(**json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert SemGCNRefinerConfig().in_features == 5 and SemGCNRefinerConfig().zero_init_output


def test_default_parameter_counts():
    # Martinez: in 34*1024+1024, BN 2*1024, 2 stages of 2*(1024^2+1024) + 2*2048, out 1024*51+51.
    expected = (34 * 1024 + 1024) + 2048 + 2 * (2 * (1024 * 1024 + 1024) + 2 * 2048) + (1024 * 51 + 51)
    assert _n_params(FCBaselineLifter(BaselineConfig())) == expected == 4_296_755
    # SemGraphConv(i, o): 2*i*o weights + 49 edge logits (17 self-loops + 2*16 bones) + o biases.
    def sgc(i, o):
        return 2 * i * o + 49 + o

    blocks = 4 * 2 * (sgc(128, 128) + 2 * 128)
    plain = sgc(2, 128) + 2 * 128 + blocks + sgc(128, 3)
    assert _n_params(SemGCNLifter(SemGCNConfig())) == plain == 267_373
    # Non-local: g, theta, phi (128 -> 64), concat (128), W (64 -> 128), BN (2*128); 5 of them.
    nl = 3 * (128 * 64 + 64) + 128 + (64 * 128 + 128) + 2 * 128
    assert _n_params(SemGCNLifter(SemGCNConfig(non_local=True))) == plain + 5 * nl == 434_733


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(joint_groups=[[0, 1], [2]]), "joint_groups"),
        (dict(non_local=True, parents=[-1, 0, 1]), "joint_groups"),
        (dict(parents=[-1, 5]), "parents"),
        (dict(p_dropout=1.0), "p_dropout"),
    ],
)
def test_semgcn_config_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        SemGCNConfig(**kw)


def test_refiner_config_needs_3_or_5_features():
    with pytest.raises(ValueError, match="3 .* or 5"):
        SemGCNRefinerConfig(in_features=2)
    with pytest.raises(TypeError):
        SemGCNRefiner(SemGCNConfig())


# --------------------------------------------------------------------------- shapes, frame independence


@pytest.mark.parametrize(
    "make",
    [
        lambda: _baseline(),
        lambda: _baseline(num_stages=0, max_norm=True),
        lambda: _semgcn(),
        lambda: _semgcn(non_local=True),
        lambda: _semgcn(p_dropout=0.25),
    ],
)
def test_lifter_shapes_and_frame_by_frame_equivalence(make):
    model = make()
    assert model.receptive_field == 1
    x = _randn(3, 5, 17, 2)
    with torch.no_grad():
        y = model(x)
        per_frame = torch.stack([model(x[:, t : t + 1])[:, 0] for t in range(5)], dim=1)
        per_sample = torch.cat([model(x[b : b + 1]) for b in range(3)])
    assert y.shape == (3, 5, 17, 3)
    torch.testing.assert_close(y, per_frame, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, per_sample, rtol=1e-5, atol=1e-5)
    # Frames are independent: changing frame 2 changes only frame 2's output.
    x2 = x.clone()
    x2[:, 2] += 1.0
    with torch.no_grad():
        y2 = model(x2)
    assert torch.equal(torch.cat([y2[:, :2], y2[:, 3:]], 1), torch.cat([y[:, :2], y[:, 3:]], 1))
    assert (y2[:, 2] - y[:, 2]).abs().max() > 1e-3


@pytest.mark.parametrize("make", [_baseline, _semgcn])
def test_lifters_reject_wrong_input_shapes(make):
    model = make()
    for bad in (torch.zeros(2, 17, 2), torch.zeros(1, 2, 16, 2), torch.zeros(1, 2, 17, 3)):
        with pytest.raises(ValueError, match="expected input"):
            model(bad)


# --------------------------------------------------------------------------- FC baseline internals


def test_baseline_stage_with_zero_second_layer_is_the_identity():
    """Zeroing a stage's second linear layer makes the stage a pure skip connection."""
    full = _baseline(num_stages=2)
    with torch.no_grad():
        for stage in full.linear_stages:
            stage.w2.weight.zero_()
            stage.w2.bias.zero_()
            # BN(0) = beta - gamma * mean / sqrt(var + eps): make it 0 so relu(.) = 0.
            stage.batch_norm2.running_mean.zero_()
            stage.batch_norm2.bias.zero_()
    short = _baseline(num_stages=0)
    short.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("linear_stages")})
    x = _randn(2, 3, 17, 2)
    with torch.no_grad():
        assert torch.equal(full(x), short(x))


def test_max_norm_clips_the_weight_used_not_the_parameter():
    layer = MaxNormLinear(4, 3, max_norm=1.0)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(12.0).reshape(3, 4))  # Frobenius norm sqrt(506)
        layer.bias.copy_(torch.tensor([1.0, -1.0, 0.5]))
    x = torch.tensor([[1.0, 0.0, -1.0, 2.0]])
    raw = torch.arange(12.0).reshape(3, 4)
    expected = x @ (raw / math.sqrt(506.0)).T + torch.tensor([1.0, -1.0, 0.5])
    torch.testing.assert_close(layer(x), expected)
    assert torch.equal(layer.weight, raw)  # stored weight untouched
    torch.testing.assert_close(torch.linalg.vector_norm(layer.effective_weight()), torch.tensor(1.0))
    with torch.no_grad():
        layer.weight.mul_(0.01 / math.sqrt(506.0))  # norm 0.01 < 1: no clipping
    assert torch.equal(layer.effective_weight(), layer.weight)
    assert FCBaselineLifter(BaselineConfig(linear_size=8, max_norm=False)).w1.max_norm is None


# --------------------------------------------------------------------------- graph convolution


def test_h36m_adjacency():
    adj = adjacency_from_parents(H36M_17.parents)
    assert adj.shape == (17, 17) and adj.dtype == torch.bool
    assert torch.equal(adj, adj.T) and bool(adj.diagonal().all())
    assert int(adj.sum()) == 17 + 2 * 16
    assert adj[8, 11] and adj[11, 8] and adj[8, 14] and adj[0, 7] and adj[9, 10]
    assert not adj[11, 14] and not adj[0, 8] and not adj[1, 4]


def test_semgraphconv_softmax_rows_and_locality():
    torch.manual_seed(0)
    conv = SemGraphConv(4, 6, adjacency_from_parents(H36M_17.parents))
    with torch.no_grad():
        conv.e.copy_(torch.randn_like(conv.e) * 2)
    a = conv.normalised_adjacency()
    torch.testing.assert_close(a.sum(dim=1), torch.ones(17))
    assert torch.equal(a > 0, conv.mask)  # positive exactly on the edges
    assert torch.all(a[~conv.mask] == 0)  # and exactly zero elsewhere

    x = _randn(2, 17, 4)
    y = conv(x)
    far = x.clone()
    far[:, 14] += 5.0  # right shoulder: not adjacent to the left elbow (12)
    near = x.clone()
    near[:, 11] += 5.0  # left shoulder: parent of the left elbow
    assert torch.equal(conv(far)[:, 12], y[:, 12])
    assert (conv(near)[:, 12] - y[:, 12]).abs().min() > 1e-4


def test_semgraphconv_hand_computed_chain():
    """3-node chain 0-1-2 with chosen edge weights, W0, W1 and bias."""
    conv = SemGraphConv(1, 2, adjacency_from_parents([-1, 0, 1]))
    # Mask entries in row-major order: (0,0) (0,1) (1,0) (1,1) (1,2) (2,1) (2,2).
    # Row weights: [1/4, 3/4], [1/3, 1/3, 1/3], [2/3, 1/3].
    with torch.no_grad():
        conv.e.copy_(torch.log(torch.tensor([[1.0, 3.0, 1.0, 1.0, 1.0, 2.0, 1.0]])))
        conv.W.copy_(torch.tensor([[[2.0, -1.0]], [[10.0, 1.0]]]))  # W0 (self), W1 (neighbours)
        conv.bias.copy_(torch.tensor([0.5, -1.0]))
    expected_a = torch.tensor([[0.25, 0.75, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.0, 2 / 3, 1 / 3]])
    torch.testing.assert_close(conv.normalised_adjacency(), expected_a)
    x = torch.tensor([[[1.0], [2.0], [3.0]]])
    # node 0: 1/4*2*1 + 3/4*10*2 + .5 = 16;   1/4*-1 + 3/4*2 - 1 = 0.25
    # node 1: 1/3*2*2 + 1/3*10*(1+3) + .5;     1/3*-2 + 1/3*4 - 1 = -1/3
    # node 2: 1/3*2*3 + 2/3*10*2 + .5;         1/3*-3 + 2/3*2 - 1 = -2/3
    expected = torch.tensor([[[16.0, 0.25], [44 / 3 + 0.5, -1 / 3], [2 + 40 / 3 + 0.5, -2 / 3]]])
    torch.testing.assert_close(conv(x), expected)


def test_semgraphconv_needs_self_loops():
    with pytest.raises(ValueError, match="self-loop"):
        SemGraphConv(2, 2, torch.tensor([[False, True], [True, True]]))


def test_graph_non_local_hand_computed():
    """dim 2 (inter 1), 3 joints, groups {0, 1} and {2}."""
    block = _GraphNonLocal(2, [[0, 1], [2]]).eval()
    with torch.no_grad():
        block.g.weight.copy_(torch.tensor([[1.0, 0.0]]))
        block.phi.weight.copy_(torch.tensor([[0.0, 1.0]]))
        block.theta.weight.copy_(torch.tensor([[1.0, 1.0]]))
        block.concat_project.weight.copy_(torch.tensor([[1.0, -1.0]]))
        block.W.weight.copy_(torch.tensor([[1.0], [2.0]]))
        block.W_bn.weight.fill_(1.0)
        block.W_bn.eps = 0.0
    x = torch.tensor([[[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]]])
    # values: max over groups of g = x[:, 0] -> [3, 0]; keys: max of phi = x[:, 1] -> [2, 1];
    # queries theta = [3, 3, 1]; scores relu(q - k) = [[1, 2], [1, 2], [0, 0]]; y = scores @ v / 2.
    y = torch.tensor([1.5, 1.5, 0.0])
    expected = x + torch.stack([y, 2 * y], dim=-1)
    torch.testing.assert_close(block(x), expected)


def test_fresh_non_local_block_is_the_identity():
    block = _GraphNonLocal(8, [list(g) for g in H36M_17_JOINT_GROUPS])
    x = _randn(4, 17, 8)
    assert torch.equal(block(x), x)


# --------------------------------------------------------------------------- refiner


@pytest.mark.parametrize("in_features", [3, 5])
def test_fresh_refiner_returns_its_input_exactly(in_features):
    model = _semgcn(refiner=True, in_features=in_features, non_local=True)
    p3, p2 = _randn(2, 4, 17, 3), _randn(2, 4, 17, 2, seed=2)
    with torch.no_grad():
        out = model(p3, p2 if in_features == 5 else None)
    assert torch.equal(out, p3)


def test_refiner_is_input_plus_trunk_residual():
    """Refiner(p3, p2) == p3 + lifter-trunk(concat(p3, p2)) with the same weights."""
    refiner = _semgcn(refiner=True, zero_init_output=False)
    lifter = SemGCNLifter(SemGCNConfig(in_features=5, hid_dim=16, num_layers=2)).eval()
    lifter.load_state_dict(refiner.state_dict())
    p3, p2 = _randn(2, 3, 17, 3), _randn(2, 3, 17, 2, seed=2)
    with torch.no_grad():
        residual = lifter(torch.cat([p3, p2], dim=-1))
        out = refiner(p3, p2)
    assert residual.abs().mean() > 1e-2
    torch.testing.assert_close(out, p3 + residual)


def test_refiner_checks_its_inputs():
    with_2d = _semgcn(refiner=True, in_features=5)
    only_3d = _semgcn(refiner=True, in_features=3)
    p3, p2 = torch.zeros(1, 2, 17, 3), torch.zeros(1, 2, 17, 2)
    with pytest.raises(ValueError, match="needs pose2d"):
        with_2d(p3)
    with pytest.raises(ValueError, match="differ in"):
        with_2d(p3, torch.zeros(1, 3, 17, 2))
    with pytest.raises(ValueError, match="no pose2d"):
        only_3d(p3, p2)
    with pytest.raises(ValueError, match="pose3d"):
        only_3d(p2)


# --------------------------------------------------------------------------- training and persistence


def _overfit(model, inputs, target, steps=80, lr=3e-3):
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(*inputs), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], min(losses[-10:])


@pytest.mark.parametrize(
    "make, refiner",
    [
        (lambda: FCBaselineLifter(BaselineConfig(linear_size=64, dropout=0.0)), False),
        (lambda: FCBaselineLifter(BaselineConfig(linear_size=64, dropout=0.0, max_norm=True)), False),
        (lambda: SemGCNLifter(SemGCNConfig(hid_dim=32, num_layers=2, non_local=True)), False),
        (lambda: SemGCNRefiner(SemGCNRefinerConfig(hid_dim=32, num_layers=2)), True),
        # the FC + SemGCN chain trained end to end
        (lambda: RefinedLifter(RefinedLifterConfig(lifter_kind="baseline",
                                                   lifter={"linear_size": 64, "dropout": 0.0},
                                                   refiner={"hid_dim": 32, "num_layers": 1})), False),
    ],
)
def test_models_overfit_a_tiny_batch(make, refiner):
    torch.manual_seed(0)
    model = make()
    x2d = _randn(4, 2, 17, 2)
    target = _randn(4, 2, 17, 3, seed=3)
    inputs = (target + _randn(4, 2, 17, 3, seed=4), x2d) if refiner else (x2d,)
    first, last = _overfit(model, inputs, target)
    assert last < first / 10, (first, last)


@pytest.mark.parametrize(
    "make, refiner",
    [
        (lambda: _baseline(max_norm=True), False),
        (lambda: _semgcn(non_local=True), False),
        (lambda: _semgcn(refiner=True, zero_init_output=False), True),
    ],
)
def test_safetensors_round_trip(tmp_path, make, refiner):
    model = make()
    path = tmp_path / "weights.safetensors"
    save_file(model.state_dict(), str(path))
    fresh = type(model)(model.config).eval()
    fresh.load_state_dict(load_file(str(path)))
    inputs = (_randn(2, 3, 17, 3), _randn(2, 3, 17, 2)) if refiner else (_randn(2, 3, 17, 2),)
    with torch.no_grad():
        assert torch.equal(model(*inputs), fresh(*inputs))
    # The graph is rebuilt from the config, not stored.
    assert not any(k.endswith(("mask", "edge_rows", "group_index")) for k in model.state_dict())


# --------------------------------------------------------------------------- parity with the authors' code

_REFERENCE = os.environ.get("POSELIFT_SEMGCN_REFERENCE")
needs_reference = pytest.mark.skipif(
    not _REFERENCE, reason="set POSELIFT_SEMGCN_REFERENCE to a garyzhao/SemGCN checkout"
)

# The reference's 16-joint Human3.6M tree (no neck/nose) and its non-local grouping.
_REF_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14]
_REF_GROUPS = [[2, 3], [5, 6], [1, 4], [0, 7], [8, 9], [14, 15], [11, 12], [10, 13]]


def _load_reference(name: str, namespace: dict | None = None, patches=()) -> types.ModuleType:
    """Execute one reference source file as a module (its imports assume a Python 2 package)."""
    src = (Path(_REFERENCE) / name).read_text()
    for old, new in patches:
        src = src.replace(old, new)
    mod = types.ModuleType("semgcn_reference_" + Path(name).stem)
    mod.__dict__.update(namespace or {})
    exec(compile(src, name, "exec"), mod.__dict__)
    return mod


def _reference_models():
    sgc = _load_reference("models/sem_graph_conv.py")
    gnl = _load_reference("models/graph_non_local.py")
    gcn = _load_reference(
        "models/sem_gcn.py",
        {"SemGraphConv": sgc.SemGraphConv, "GraphNonLocal": gnl.GraphNonLocal, "reduce": functools.reduce},
        patches=[
            ("from models.sem_graph_conv import SemGraphConv", ""),
            ("from models.graph_non_local import GraphNonLocal", ""),
            ("self.nonlocal", "self.nonlocal_"),  # a keyword in Python 3
        ],
    )
    graph = _load_reference("common/graph_utils.py")
    edges = [(j, p) for j, p in enumerate(_REF_PARENTS) if p >= 0]
    adj = graph.adj_mx_from_edges(16, edges, sparse=False)
    return sgc, gcn, adj


@needs_reference
def test_reference_adjacency_and_semgraphconv_parity():
    sgc, _, adj = _reference_models()
    assert torch.equal(adj > 0, adjacency_from_parents(_REF_PARENTS))
    torch.manual_seed(0)
    ref = sgc.SemGraphConv(5, 7, adj.double()).double()
    with torch.no_grad():
        ref.e.copy_(torch.randn_like(ref.e))
    ours = SemGraphConv(5, 7, adjacency_from_parents(_REF_PARENTS)).double()
    ours.load_state_dict(ref.state_dict())
    x = _randn(3, 16, 5, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-12, atol=1e-12)


@needs_reference
@pytest.mark.parametrize("non_local", [False, True])
def test_reference_semgcn_parity(non_local):
    _, gcn, adj = _reference_models()
    torch.manual_seed(0)
    ref = gcn.SemGCN(adj.double(), 32, num_layers=2, nodes_group=_REF_GROUPS if non_local else None).double()
    randomise_bn(ref)  # also wakes the non-local blocks (their BN starts at zero)
    n_ref = _n_params(ref)
    ours = SemGCNLifter(
        SemGCNConfig(parents=_REF_PARENTS, hid_dim=32, num_layers=2, non_local=non_local, joint_groups=_REF_GROUPS)
    ).double()
    ours.load_state_dict(convert_reference_state_dict(ref.state_dict()))
    assert _n_params(ours) == n_ref
    x = _randn(4, 16, 2, dtype=torch.float64)
    for mode in ("eval", "train"):
        getattr(ref, mode)()
        getattr(ours, mode)()
        with torch.no_grad():
            torch.testing.assert_close(ours(x[:, None])[:, 0], ref(x), rtol=1e-10, atol=1e-10)
    # Default widths, for the record: 16-joint reference sizes vs ours.
    assert _n_params(gcn.SemGCN(adj, 128, num_layers=4)) == _n_params(
        SemGCNLifter(SemGCNConfig(parents=_REF_PARENTS))
    )


@needs_reference
def test_reference_linear_model_parity():
    lin = _load_reference("models/linear_model.py")
    torch.manual_seed(0)
    ref = lin.LinearModel(32, 48, linear_size=64)
    randomise_bn(ref)
    ours = FCBaselineLifter(BaselineConfig(num_joints_in=16, num_joints_out=16, linear_size=64))
    ours.load_state_dict(ref.state_dict())
    ref.eval()
    ours.eval()
    x = _randn(5, 16, 2)
    with torch.no_grad():
        torch.testing.assert_close(ours(x[:, None])[:, 0].reshape(5, 48), ref(x.reshape(5, 32)))
