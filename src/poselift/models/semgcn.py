"""Semantic graph convolutional lifter and refiner (SemGCN, Zhao et al., CVPR 2019).

A pose is a graph: one node per joint, edges along the bones plus a self-loop per
joint. A semantic graph convolution (:class:`SemGraphConv`) transforms each node's
features with one matrix for the node itself and one for its neighbours, and mixes
them with *learned* edge weights: every edge of the mask gets a free scalar and each
row is softmax-normalised over the node's edges only, so non-neighbours get exactly
zero weight and a node's weights sum to 1. The network is an input graph conv to
``hid_dim`` channels, ``num_layers`` residual blocks of two graph convs (each with
BatchNorm over channels and ReLU), and an output graph conv to 3 coordinates.

Optional non-local layers (:class:`_GraphNonLocal`) let every joint attend to all
body parts: keys and values are max-pooled over fixed groups of joints (the
reference pairs knee+ankle, hip+hip, elbow+wrist, ...), queries stay per joint.

Two heads share the trunk:

- :class:`SemGCNLifter`: 2D (B, T, J, 2) -> root-relative 3D (B, T, J, 3);
- :class:`SemGCNRefiner`: a first-stage 3D estimate (B, T, J, 3), optionally with
  the 2D concatenated per joint (5 features), -> refined 3D = input + predicted
  residual (the second stage after an FC lifter, as in the SE-ResNet + FC + SemGCN
  pipeline). Its output layer starts at zero, so an untrained refiner is the identity.

Both are single-frame models (receptive field 1): frames are independent samples.
Joint order and the default graph are Human3.6M-17 (:data:`poselift.skeleton.H36M_17`);
other trees can be passed as ``parents``. :func:`convert_reference_state_dict`
renames the keys of checkpoints from the authors' code to this module's.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from poselift.skeleton import H36M_17

#: Joint groups of the non-local layers for H36M_17: the reference's 16-joint grouping
#: (knee+ankle x2, both hips, pelvis+spine, thorax+head, elbow+wrist x2, both shoulders)
#: with the neck/nose joint, which the reference drops, added to the thorax+head group.
H36M_17_JOINT_GROUPS: tuple[tuple[int, ...], ...] = (
    (2, 3), (5, 6), (1, 4), (0, 7), (8, 9, 10), (15, 16), (12, 13), (11, 14),
)


def adjacency_from_parents(parents: list[int] | tuple[int, ...]) -> torch.Tensor:
    """(J, J) bool mask: True on bones (both directions) and on the diagonal."""
    j = len(parents)
    adj = torch.eye(j, dtype=torch.bool)
    for child, parent in enumerate(parents):
        if parent >= 0:
            adj[child, parent] = adj[parent, child] = True
    return adj


class SemGraphConv(nn.Module):
    """Semantic graph convolution on (..., J, in_features) -> (..., J, out_features).

    ``out_i = A_ii * (x_i W_0) + sum_{k != i} A_ik * (x_k W_1) + bias`` where
    ``A = softmax_row(masked edge logits)``: one learned logit per True entry of the
    mask (row-major order, like the reference's ``e``), minus infinity elsewhere.

    Parameters: ``W`` (2, in, out), ``e`` (1, number of mask entries), ``bias`` (out,).
    """

    def __init__(self, in_features: int, out_features: int, adjacency: torch.Tensor, bias: bool = True) -> None:
        super().__init__()
        adjacency = torch.as_tensor(adjacency).bool()
        if adjacency.dim() != 2 or adjacency.shape[0] != adjacency.shape[1]:
            raise ValueError(f"adjacency must be a square (J, J) mask, got {tuple(adjacency.shape)}")
        if not bool(adjacency.diagonal().all()):
            # Without self-loops a row could be empty and the softmax undefined.
            raise ValueError("adjacency must contain every self-loop (a True diagonal)")
        self.in_features = in_features
        self.out_features = out_features
        rows, cols = adjacency.nonzero(as_tuple=True)
        # The graph comes from the config, so it is not saved with the weights.
        self.register_buffer("mask", adjacency, persistent=False)
        self.register_buffer("edge_rows", rows, persistent=False)
        self.register_buffer("edge_cols", cols, persistent=False)
        self.W = nn.Parameter(torch.empty(2, in_features, out_features))
        nn.init.xavier_uniform_(self.W, gain=1.414)
        # Equal logits: each node starts by averaging itself and its neighbours.
        self.e = nn.Parameter(torch.ones(1, rows.numel()))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features))
            bound = 1.0 / math.sqrt(out_features)
            nn.init.uniform_(self.bias, -bound, bound)
        else:
            self.register_parameter("bias", None)

    def normalised_adjacency(self) -> torch.Tensor:
        """(J, J) edge weights: rows sum to 1, exactly 0 off the mask."""
        j = self.mask.shape[0]
        logits = torch.full((j, j), float("-inf"), dtype=self.e.dtype, device=self.e.device)
        logits = logits.index_put((self.edge_rows, self.edge_cols), self.e[0])
        return F.softmax(logits, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., J, in_features) -> (..., J, out_features)."""
        adj = self.normalised_adjacency()
        self_weight = adj.diagonal()
        neighbour_adj = adj - torch.diag_embed(self_weight)
        # one product for both transforms, then the neighbour mix as a (J, J) contraction
        h_self, h_neigh = (x @ torch.cat((self.W[0], self.W[1]), dim=1)).split(self.out_features, dim=-1)
        out = self_weight.unsqueeze(-1) * h_self + torch.einsum("ij,...jc->...ic", neighbour_adj, h_neigh)
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, edges={self.e.shape[1]}"


class _GraphConv(nn.Module):
    """SemGraphConv -> BatchNorm over channels -> ReLU -> optional dropout, on (N, J, C)."""

    def __init__(self, adjacency: torch.Tensor, in_dim: int, out_dim: int, p_dropout: float | None) -> None:
        super().__init__()
        self.gconv = SemGraphConv(in_dim, out_dim, adjacency)
        self.bn = nn.BatchNorm1d(out_dim)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p_dropout) if p_dropout is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Statistics over batch and joints: BatchNorm1d on (N * J, C) rows, no transposed copies.
        h = self.gconv(x)
        x = self.bn(h.reshape(-1, h.shape[-1])).reshape(h.shape)
        x = self.relu(x)
        return self.dropout(x) if self.dropout is not None else x


class _ResGraphConv(nn.Module):
    """x + gconv2(gconv1(x)), (N, J, C) -> (N, J, C)."""

    def __init__(self, adjacency: torch.Tensor, dim: int, hid_dim: int, p_dropout: float | None) -> None:
        super().__init__()
        self.gconv1 = _GraphConv(adjacency, dim, hid_dim, p_dropout)
        self.gconv2 = _GraphConv(adjacency, hid_dim, dim, p_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gconv2(self.gconv1(x))


class _GraphNonLocal(nn.Module):
    """Non-local block over joints with group-pooled keys, (N, J, C) -> (N, J, C).

    ``z_i = x_i + BN(W y_i)``, ``y_i = sum_g f_ig v_g / G`` with
    ``f_ig = relu(w_q . theta(x_i) + w_k . phi_g)``, where ``phi_g`` and ``v_g`` are the
    channel-wise maxima of ``phi(x)`` and ``g(x)`` over the joints of group ``g`` and G is
    the number of groups (the reference's "concatenation" pairwise function). The BN's
    scale and shift start at zero, so a fresh block is the identity.
    """

    def __init__(self, dim: int, groups: list[list[int]] | tuple[tuple[int, ...], ...]) -> None:
        super().__init__()
        inter = dim // 2
        if inter < 1:
            raise ValueError(f"non-local layers need hid_dim >= 2, got {dim}")
        self.inter_dim = inter
        size = max(len(g) for g in groups)
        # Pad short groups by repeating their first joint: the maximum is unchanged.
        index = torch.tensor([list(g) + [g[0]] * (size - len(g)) for g in groups], dtype=torch.long)
        self.register_buffer("group_index", index, persistent=False)
        self.g = nn.Linear(dim, inter)
        self.theta = nn.Linear(dim, inter)
        self.phi = nn.Linear(dim, inter)
        # One weight vector over [theta_i, phi_g]: the first half scores queries, the second keys.
        self.concat_project = nn.Linear(2 * inter, 1, bias=False)
        self.W = nn.Linear(inter, dim)
        self.W_bn = nn.BatchNorm1d(dim)
        for layer in (self.g, self.theta, self.phi, self.W):
            nn.init.kaiming_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.kaiming_normal_(self.concat_project.weight)
        nn.init.zeros_(self.W_bn.weight)
        nn.init.zeros_(self.W_bn.bias)

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        """(N, J, C) -> (N, G, C): channel-wise max over each group's joints."""
        return h[:, self.group_index].amax(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = self._pool(self.g(x))
        keys = self._pool(self.phi(x))
        w_query, w_key = self.concat_project.weight[0].split(self.inter_dim)
        # relu(w . [theta_i, phi_g]) splits into a query term plus a key term: no (N, J, G, 2C) tensor.
        scores = F.relu((self.theta(x) @ w_query).unsqueeze(2) + (keys @ w_key).unsqueeze(1))
        y = (scores / scores.shape[2]) @ values
        w = self.W(y)
        return x + self.W_bn(w.reshape(-1, w.shape[-1])).reshape(w.shape)


@dataclass
class SemGCNConfig:
    """Architecture of a SemGCN lifter (a JSON-serialisable record).

    ``parents`` defines the graph (and J); ``joint_groups`` the non-local pooling
    (a partition of the joints; defaults to :data:`H36M_17_JOINT_GROUPS` for the
    H36M_17 tree). ``in_features`` is the per-joint input size: 2 for a lifter.
    """

    parents: list[int] = field(default_factory=lambda: list(H36M_17.parents))
    in_features: int = 2
    hid_dim: int = 128
    num_layers: int = 4
    non_local: bool = False
    joint_groups: list[list[int]] | None = None
    p_dropout: float | None = None

    def __post_init__(self) -> None:
        self.parents = [int(p) for p in self.parents]
        j = self.num_joints
        for child, parent in enumerate(self.parents):
            if parent < -1 or parent >= j or parent == child:
                raise ValueError(f"parents[{child}] = {parent} is not a valid parent index for {j} joints")
        if self.hid_dim < 1 or self.num_layers < 0 or self.in_features < 1:
            raise ValueError(
                f"hid_dim and in_features must be >= 1 and num_layers >= 0, got "
                f"{self.hid_dim}, {self.in_features}, {self.num_layers}"
            )
        if self.p_dropout is not None and not 0.0 <= self.p_dropout < 1.0:
            raise ValueError(f"p_dropout must be None or in [0, 1), got {self.p_dropout}")
        if self.joint_groups is not None:
            self.joint_groups = [[int(i) for i in g] for g in self.joint_groups]
            flat = sorted(i for g in self.joint_groups for i in g)
            if flat != list(range(j)) or any(not g for g in self.joint_groups):
                raise ValueError(
                    f"joint_groups must split joints 0..{j - 1} into non-empty groups, each joint once; "
                    f"got {self.joint_groups}"
                )
        elif self.non_local and self.parents != list(H36M_17.parents):
            raise ValueError("non_local with a skeleton other than H36M_17 needs explicit joint_groups")

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def receptive_field(self) -> int:
        return 1

    def groups(self) -> list[list[int]]:
        """The non-local joint groups in effect."""
        if self.joint_groups is not None:
            return self.joint_groups
        return [list(g) for g in H36M_17_JOINT_GROUPS]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SemGCNRefinerConfig(SemGCNConfig):
    """A SemGCN refiner: ``in_features`` 3 (3D only) or 5 (3D and 2D per joint)."""

    in_features: int = 5
    zero_init_output: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.in_features not in (3, 5):
            raise ValueError(f"a refiner takes 3 (3D) or 5 (3D + 2D) features per joint, got {self.in_features}")


class _SemGCNTrunk(nn.Module):
    """Input graph conv, residual blocks (interleaved with non-local layers), output graph conv."""

    def __init__(self, config: SemGCNConfig) -> None:
        super().__init__()
        self.config = config
        adjacency = adjacency_from_parents(config.parents)
        hid, p = config.hid_dim, config.p_dropout
        layers_in: list[nn.Module] = [_GraphConv(adjacency, config.in_features, hid, p)]
        layers: list[nn.Module] = []
        groups = config.groups() if config.non_local else None
        if groups is not None:
            layers_in.append(_GraphNonLocal(hid, groups))
        for _ in range(config.num_layers):
            layers.append(_ResGraphConv(adjacency, hid, hid, p))
            if groups is not None:
                layers.append(_GraphNonLocal(hid, groups))
        self.gconv_input = nn.Sequential(*layers_in)
        self.gconv_layers = nn.Sequential(*layers)
        self.gconv_output = SemGraphConv(hid, 3, adjacency)

    @property
    def receptive_field(self) -> int:
        return 1

    def _check(self, x: torch.Tensor, features: int, what: str) -> None:
        j = self.config.num_joints
        if x.dim() != 4 or x.shape[-2] != j or x.shape[-1] != features:
            raise ValueError(f"expected {what} (B, T, {j}, {features}), got {tuple(x.shape)}")

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J, C_in) -> (B, T, J, 3); frames are independent samples."""
        b, t, j, c = x.shape
        h = self.gconv_layers(self.gconv_input(x.reshape(b * t, j, c)))
        return self.gconv_output(h).reshape(b, t, j, 3)


class SemGCNLifter(_SemGCNTrunk):
    """SemGCN lifter: (B, T, J, in_features) 2D poses -> (B, T, J, 3) root-relative 3D."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, self.config.in_features, "input")
        return self._run(x)


class SemGCNRefiner(_SemGCNTrunk):
    """Second-stage refiner: 3D (B, T, J, 3) [+ 2D (B, T, J, 2)] -> 3D + residual (B, T, J, 3)."""

    def __init__(self, config: SemGCNRefinerConfig) -> None:
        if not isinstance(config, SemGCNRefinerConfig):
            raise TypeError(f"SemGCNRefiner takes a SemGCNRefinerConfig, got {type(config).__name__}")
        super().__init__(config)
        if config.zero_init_output:
            # The residual starts at zero: training begins from the first stage's estimate.
            nn.init.zeros_(self.gconv_output.W)
            nn.init.zeros_(self.gconv_output.bias)

    @property
    def uses_2d(self) -> bool:
        return self.config.in_features == 5

    def forward(self, pose3d: torch.Tensor, pose2d: torch.Tensor | None = None) -> torch.Tensor:
        """Refine ``pose3d`` (B, T, J, 3); ``pose2d`` (B, T, J, 2) is required iff in_features is 5."""
        self._check(pose3d, 3, "pose3d")
        if self.uses_2d:
            if pose2d is None:
                raise ValueError("this refiner was configured with in_features=5 and needs pose2d (B, T, J, 2)")
            self._check(pose2d, 2, "pose2d")
            if pose2d.shape[:2] != pose3d.shape[:2]:
                raise ValueError(f"pose2d {tuple(pose2d.shape)} and pose3d {tuple(pose3d.shape)} differ in (B, T)")
            x = torch.cat([pose3d, pose2d], dim=-1)
        elif pose2d is not None:
            raise ValueError("this refiner was configured with in_features=3 (3D only); pass no pose2d")
        else:
            x = pose3d
        return pose3d + self._run(x)


_REFERENCE_RENAMES = (
    # The reference wraps each non-local block in a module with a `nonlocal` attribute and
    # max-pools g and phi inside Sequentials; here the block is the module itself.
    (re.compile(r"\.nonlocal_?\."), "."),
    (re.compile(r"\.(g|phi)\.0\."), r".\1."),
    (re.compile(r"\.concat_project\.0\."), ".concat_project."),
    (re.compile(r"\.W\.0\."), ".W."),
    (re.compile(r"\.W\.1\."), ".W_bn."),
)


def convert_reference_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a reference SemGCN (garyzhao/SemGCN) state dict for :class:`SemGCNLifter`.

    The reference uses 1x1 convolutions where this module uses linear layers, so
    their trailing singleton dimensions are dropped. The reference's Human3.6M
    models have 16 joints (no neck/nose): build the lifter with that tree's
    ``parents`` and ``joint_groups``.
    """
    out = {}
    for key, value in state_dict.items():
        for pattern, repl in _REFERENCE_RENAMES:
            key = pattern.sub(repl, key)
        if re.search(r"\.(g|theta|phi|W|concat_project)\.weight$", key) and value.dim() > 2:
            value = value.reshape(value.shape[0], value.shape[1])
        out[key] = value
    return out
