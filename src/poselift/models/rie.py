"""RIE lifter: Relative Information Encoding (Shan et al., ACM MM 2021).

Why a second lifter: VideoPose3D sees absolute 2D coordinates only, so a global
shift of the person in the image, or a detector that jitters, moves every input
feature. RIE adds two *relative* views of the same keypoints, and lets body parts
be encoded separately so that one badly detected limb disturbs fewer features:

- **positional encoding**: each frame's keypoints minus that frame's root
  (joint 0, the pelvis) -- invariant to any per-frame translation;
- **temporal encoding**: each frame's keypoints minus the same joint in the
  centre frame of the window -- invariant to a translation that is constant
  over the window.

The absolute keypoints are still fed as well (as in the reference code), so the
model as a whole is *not* translation invariant; only the two encodings are.

Architecture, for one window of ``receptive_field`` frames centred on the
output frame (widths ``w_0, w_1, ...``, receptive field ``prod(w)``):

1. five groups (torso and four limbs, :data:`REFERENCE_GROUPS`); each has a
   *local encoder*, a strided temporal-convolution stack over the group's
   ``[absolute, positional, temporal]`` coordinates (LeakyReLU 0.2, BN, dropout,
   residual blocks as in VideoPose3D) ending in a ``latent_dim`` feature;
2. a *global encoder*, a residual MLP on the absolute 2D pose of the centre
   frame, giving one ``latent_dim`` feature;
3. the *feature fusion module*: one residual MLP per group that maps the
   local features of the *other* groups to a fused ``latent_dim`` feature;
4. one *decoder* MLP per group mapping ``[local_g, fused_g, global]``
   (``3 * latent_dim``) to the group's joints in 3D; the groups are scattered
   back into joint order.

The temporal encoding is relative to each output frame's own window centre, so
first-layer activations cannot be shared between neighbouring output frames
(the subtracted centre differs, and a nonlinearity follows). A whole sequence
(B, T) is therefore cut into its ``T - receptive_field + 1`` windows and each
window runs the strided network once, which is what the reference does both in
training and in evaluation. A dilated "whole sequence in one pass" variant as in
VideoPose3D would compute a different function.

Multi-stage training (reference ``run.py`` / README), see :func:`set_stage`:
stage 1 trains encoders and decoders with the fusion module bypassed; stage 2
freezes the encoders and trains the fusion module and the decoders (the
reference starts them afresh, :meth:`RIELifter.reset_decoders`); stage 3
fine-tunes everything at half the learning rate (0.0005 vs 0.001).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from poselift.errors import CheckpointError
from poselift.models.temporal_conv import block_pads

# Human3.6M-17 indices (poselift.skeleton.H36M_17), in the reference's module order.
# The reference calls the groups Torso, LArm, RArm, LLeg, RLeg; its "left"/"right"
# are swapped with respect to H36M_17's names, which we use.
REFERENCE_GROUPS: list[list[int]] = [
    [0, 7, 8, 9, 10],  # torso: pelvis, spine, thorax, neck_nose, head      (reference Torso)
    [14, 15, 16],  # right arm: right shoulder, elbow, wrist                 (reference LArm)
    [11, 12, 13],  # left arm: left shoulder, elbow, wrist                   (reference RArm)
    [1, 2, 3],  # right leg: right hip, knee, ankle                           (reference LLeg)
    [4, 5, 6],  # left leg: left hip, knee, ankle                             (reference RLeg)
]
REFERENCE_GROUP_NAMES: list[str] = ["torso", "right_arm", "left_arm", "right_leg", "left_leg"]
_REFERENCE_MODULE_NAMES = ["Torso", "LArm", "RArm", "LLeg", "RLeg"]

#: Learning-rate multiplier per stage: the reference trains stages 1 and 2 at
#: 0.001 and fine-tunes stage 3 at 0.0005 (README), all with AdamW(amsgrad=True).
STAGE_LR_SCALE: dict[int, float] = {1: 1.0, 2: 1.0, 3: 0.5}

_NEGATIVE_SLOPE = 0.2  # LeakyReLU slope used everywhere in the reference


@dataclass
class RIEConfig:
    """Architecture of an RIE lifter (a JSON-serialisable record).

    Defaults are the reference's (``run.py`` arguments): 243 frames, 256 conv
    channels, 256 latent features (the README uses 512 for CPN detections),
    1024-wide MLPs, dropout 0.2 in the convolutions and 0.25 in the MLPs.
    ``groups`` must partition ``range(num_joints)``; joint 0 is the root used by
    the positional encoding.
    """

    num_joints: int = 17
    filter_widths: list[int] = field(default_factory=lambda: [3, 3, 3, 3, 3])
    channels: int = 256
    latent_dim: int = 256
    mlp_channels: int = 1024
    dropout: float = 0.2
    mlp_dropout: float = 0.25
    groups: list[list[int]] = field(default_factory=lambda: [list(g) for g in REFERENCE_GROUPS])
    group_names: list[str] = field(default_factory=lambda: list(REFERENCE_GROUP_NAMES))

    def __post_init__(self) -> None:
        self.filter_widths = [int(w) for w in self.filter_widths]
        self.groups = [[int(j) for j in g] for g in self.groups]
        self.group_names = [str(n) for n in self.group_names]
        if not self.filter_widths or any(w < 1 or w % 2 == 0 for w in self.filter_widths):
            raise ValueError(f"filter_widths must be odd positive integers, got {self.filter_widths}")
        for name in ("num_joints", "channels", "latent_dim", "mlp_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        flat = sorted(j for g in self.groups for j in g)
        if len(self.groups) < 2 or any(not g for g in self.groups) or flat != list(range(self.num_joints)):
            raise ValueError(
                f"groups must split joints 0..{self.num_joints - 1} into at least two non-empty groups, "
                f"each joint exactly once; got {self.groups}"
            )
        if len(self.group_names) != len(self.groups):
            raise ValueError(f"group_names has {len(self.group_names)} names for {len(self.groups)} groups")

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * sum(block_pads(self.filter_widths))

    def to_dict(self) -> dict:
        return asdict(self)


def encode_windows(windows: torch.Tensor) -> torch.Tensor:
    """The three input views of each window: (N, F, J, 2) -> (N, F, 3, J, 2).

    Index 0 of dim 2 is the absolute keypoints, 1 the positional encoding
    (minus the frame's joint 0), 2 the temporal encoding (minus the same joint
    in the centre frame ``F // 2``).
    """
    positional = windows - windows[:, :, :1]
    centre = windows.shape[1] // 2
    temporal = windows - windows[:, centre : centre + 1]
    return torch.stack((windows, positional, temporal), dim=2)


class _ResidualLinear(nn.Module):
    """x + drop(act(BN(fc2(drop(act(BN(fc1(x)))))))), width-preserving."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.bn1 = nn.BatchNorm1d(width)
        self.fc2 = nn.Linear(width, width)
        self.bn2 = nn.BatchNorm1d(width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(F.leaky_relu(self.bn1(self.fc1(x)), _NEGATIVE_SLOPE))
        y = self.drop(F.leaky_relu(self.bn2(self.fc2(y)), _NEGATIVE_SLOPE))
        return x + y


class ResidualMLP(nn.Module):
    """(N, in) -> (N, out): linear -> BN -> LeakyReLU -> dropout, residual blocks, linear.

    The global encoder (2 blocks), the fusion blocks and the decoders (1 block
    each) are all this shape in the reference.
    """

    def __init__(self, in_features: int, out_features: int, width: int, num_blocks: int, dropout: float) -> None:
        super().__init__()
        self.fc_in = nn.Linear(in_features, width)
        self.bn_in = nn.BatchNorm1d(width)
        self.blocks = nn.ModuleList(_ResidualLinear(width, dropout) for _ in range(num_blocks))
        self.fc_out = nn.Linear(width, out_features)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.leaky_relu(self.bn_in(self.fc_in(x)), _NEGATIVE_SLOPE))
        for block in self.blocks:
            h = block(h)
        return self.fc_out(h)


class GroupTemporalEncoder(nn.Module):
    """One body part's window (N, C_in, F = receptive field) -> (N, latent_dim).

    Strided convolutions (stride = kernel width) so a window of exactly the
    receptive field collapses to one time step; parameter names match
    :class:`~poselift.models.temporal_conv.TemporalConvLifterStrided` (and the
    reference's ``TemporalBlock``), with ``shrink`` producing latent features.
    """

    def __init__(self, in_channels: int, config: RIEConfig) -> None:
        super().__init__()
        c, fw = config.channels, config.filter_widths
        self.filter_widths = list(fw)
        self.expand_conv = nn.Conv1d(in_channels, c, fw[0], stride=fw[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(c, momentum=0.1)
        convs: list[nn.Module] = []
        for w in fw[1:]:
            convs.append(nn.Conv1d(c, c, w, stride=w, bias=False))
            convs.append(nn.Conv1d(c, c, 1, bias=False))
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(nn.BatchNorm1d(c, momentum=0.1) for _ in range(2 * (len(fw) - 1)))
        self.shrink = nn.Conv1d(c, config.latent_dim, 1)
        self.drop = nn.Dropout(config.dropout)

    def set_bn_momentum(self, momentum: float) -> None:
        self.expand_bn.momentum = momentum
        for bn in self.layers_bn:
            bn.momentum = momentum

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.leaky_relu(self.expand_bn(self.expand_conv(h)), _NEGATIVE_SLOPE))
        for i, w in enumerate(self.filter_widths[1:]):
            # The residual keeps the centre step of every group of `w` that the strided conv merges.
            residual = h[:, :, w // 2 :: w]
            h = self.drop(F.leaky_relu(self.layers_bn[2 * i](self.layers_conv[2 * i](h)), _NEGATIVE_SLOPE))
            h = residual + self.drop(
                F.leaky_relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](h)), _NEGATIVE_SLOPE)
            )
        return self.shrink(h)[:, :, 0]


class RIELifter(nn.Module):
    """RIE lifter: (B, T, J, 2) 2D keypoints -> (B, T - receptive_field + 1, J, 3) root-relative 3D.

    Output frame ``t`` is the pose of input frame ``t + (receptive_field - 1) // 2``,
    predicted from the window of ``receptive_field`` frames centred on it.
    ``use_fusion`` (stored in the state dict, so a saved stage-1 model reloads
    without fusion) says whether the fusion module runs; when off, the decoders
    see zeros in place of the fused features, which is the reference's stage-1
    model exactly (its decoders simply lack those input columns).
    """

    def __init__(self, config: RIEConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or RIEConfig()
        latent, g_count = config.latent_dim, len(config.groups)
        self.local_encoders = nn.ModuleList(
            GroupTemporalEncoder(3 * 2 * len(g), config) for g in config.groups
        )
        self.global_encoder = ResidualMLP(config.num_joints * 2, latent, config.mlp_channels, 2, config.mlp_dropout)
        self.fusion = nn.ModuleList(
            ResidualMLP((g_count - 1) * latent, latent, config.mlp_channels, 1, config.mlp_dropout)
            for _ in config.groups
        )
        self.decoders = nn.ModuleList(
            ResidualMLP(3 * latent, 3 * len(g), config.mlp_channels, 1, config.mlp_dropout) for g in config.groups
        )
        order = [j for g in config.groups for j in g]
        # Decoder outputs come concatenated in group order; this gathers them back into joint order.
        self.register_buffer("joint_order", torch.tensor([order.index(j) for j in range(config.num_joints)]),
                             persistent=False)
        self.register_buffer("fusion_enabled", torch.tensor(True))

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    @property
    def use_fusion(self) -> bool:
        return bool(self.fusion_enabled)

    @use_fusion.setter
    def use_fusion(self, value: bool) -> None:
        self.fusion_enabled.fill_(bool(value))

    def set_bn_momentum(self, momentum: float) -> None:
        """BN momentum of the local encoders (the reference decays only these; the MLPs keep 0.1)."""
        for enc in self.local_encoders:
            enc.set_bn_momentum(momentum)

    def reset_decoders(self) -> None:
        """Re-initialise the decoders, as the reference's stage 2 does.

        The reference's decoders widen from 2 to 3 latent features between stages
        1 and 2, so its stage 2 loads only the encoders and starts the decoders
        from scratch. Call this once when moving from stage 1 to stage 2 to
        reproduce that; :func:`set_stage` never changes weights.
        """
        for m in self.decoders.modules():
            if isinstance(m, (nn.Linear, nn.BatchNorm1d)):
                m.reset_parameters()

    def forward(self, x: torch.Tensor, *, max_windows: int = 4096) -> torch.Tensor:
        """(B, T, J, 2) -> (B, T - receptive_field + 1, J, 3).

        In eval mode the windows are processed ``max_windows`` at a time to bound
        memory; in training mode all at once, so BatchNorm sees the whole batch.
        """
        rf, j = self.receptive_field, self.config.num_joints
        if x.dim() != 4 or x.shape[2] != j or x.shape[3] != 2:
            raise ValueError(f"RIE lifter: expected input (B, T, {j}, 2), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        if t < rf:
            raise ValueError(f"RIE lifter: input has {t} frames, fewer than the receptive field {rf}")
        t_out = t - rf + 1
        step = t_out if self.training else max(1, max_windows // max(b, 1))
        outputs = []
        for start in range(0, t_out, step):
            n = min(step, t_out - start)
            # (B, n, J, 2, rf) view -> (B * n, rf, J, 2): one row per output frame.
            windows = x[:, start : start + n + rf - 1].unfold(1, rf, 1).permute(0, 1, 4, 2, 3)
            outputs.append(self.forward_windows(windows.reshape(b * n, rf, j, 2)).reshape(b, n, j, 3))
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)

    def forward_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """(N, receptive_field, J, 2) windows -> (N, J, 3), the pose of each window's centre frame."""
        n, rf = windows.shape[:2]
        if rf != self.receptive_field:
            raise ValueError(f"RIE lifter: windows must have {self.receptive_field} frames, got {rf}")
        views = encode_windows(windows)  # (N, F, 3, J, 2)
        local = []
        for joints, encoder in zip(self.config.groups, self.local_encoders):
            # Channels ordered [view][joint][x, y], as in the reference.
            h = views[:, :, :, joints].reshape(n, rf, -1).transpose(1, 2)
            local.append(encoder(h))
        global_feat = self.global_encoder(windows[:, rf // 2].reshape(n, -1))
        if self.use_fusion:
            fused = [
                block(torch.cat(local[:g] + local[g + 1 :], dim=1)) for g, block in enumerate(self.fusion)
            ]
        else:
            fused = [torch.zeros_like(global_feat)] * len(local)
        parts = [
            decoder(torch.cat((local[g], fused[g], global_feat), dim=1)).reshape(n, -1, 3)
            for g, decoder in enumerate(self.decoders)
        ]
        return torch.cat(parts, dim=1)[:, self.joint_order]


def _component_parameters(model: RIELifter) -> dict[str, list[nn.Parameter]]:
    return {
        "local_encoders": list(model.local_encoders.parameters()),
        "global_encoder": list(model.global_encoder.parameters()),
        "fusion": list(model.fusion.parameters()),
        "decoders": list(model.decoders.parameters()),
    }


_STAGE_TRAINABLE = {
    1: ("local_encoders", "global_encoder", "decoders"),
    2: ("fusion", "decoders"),
    3: ("local_encoders", "global_encoder", "fusion", "decoders"),
}


def set_stage(model: RIELifter, stage: int) -> list[dict]:
    """Put ``model`` in training stage 1, 2 or 3 and return its optimizer param groups.

    Sets ``requires_grad`` and ``model.use_fusion``; never changes weights (see
    :meth:`RIELifter.reset_decoders` for the reference's stage-2 restart).

    - stage 1: fusion off; local + global encoders and decoders trained;
    - stage 2: fusion on; encoders frozen; fusion module and decoders trained
      (the reference freezes exactly the encoders, ``run.py``'s first 167
      parameters for 3,3,3,3,3);
    - stage 3: fusion on; everything trained at ``lr_scale`` 0.5.

    Each group is ``{"name": component, "params": [...], "lr_scale": s}``; the
    trainer sets ``lr = base_lr * lr_scale`` (torch optimizers keep extra keys).
    Frozen encoders still update their BatchNorm running statistics in train
    mode, as in the reference.
    """
    if stage not in _STAGE_TRAINABLE:
        raise ValueError(f"RIE training stage must be 1, 2 or 3, got {stage!r}")
    trainable = _STAGE_TRAINABLE[stage]
    groups = []
    for name, params in _component_parameters(model).items():
        for p in params:
            p.requires_grad_(name in trainable)
        if name in trainable:
            groups.append({"name": name, "params": params, "lr_scale": STAGE_LR_SCALE[stage]})
    model.use_fusion = stage != 1
    return groups


# --------------------------------------------------------------------------- reference weights

_REF_MLP_RENAMES = [
    (r"\.fc_1\.", ".fc_in."),
    (r"\.bn_1\.", ".bn_in."),
    (r"\.fc_2\.", ".fc_out."),
    (r"\.layers\.(\d+)\.w1\.", r".blocks.\1.fc1."),
    (r"\.layers\.(\d+)\.batch_norm1\.", r".blocks.\1.bn1."),
    (r"\.layers\.(\d+)\.w2\.", r".blocks.\1.fc2."),
    (r"\.layers\.(\d+)\.batch_norm2\.", r".blocks.\1.bn2."),
]


def reference_key(key: str) -> str:
    """Our state-dict name for a parameter of the reference ``RIEModel`` (Pose3D-RIE ``common/model.py``)."""
    top, _, rest = key.partition(".")
    for g, ref in enumerate(_REFERENCE_MODULE_NAMES):
        if top == f"LocalLayer_{ref}":
            return f"local_encoders.{g}.{rest}"  # conv stacks share the inner names
        if top == f"Integration_{ref}":
            top = f"decoders.{g}"
    if top == "GlobalInfo":
        top = "global_encoder"
    elif top == "FuseBlocks":
        index, _, rest = rest.partition(".")
        top = f"fusion.{index}"
    if not re.match(r"(global_encoder|fusion\.\d+|decoders\.\d+)$", top):
        raise CheckpointError(f"RIE reference state dict: unexpected key {key!r}")
    name = f"{top}.{rest}"
    for pattern, repl in _REF_MLP_RENAMES:
        name = re.sub(pattern, repl, name)
    return name


def load_reference_state_dict(model: RIELifter, state: dict[str, torch.Tensor]) -> None:
    """Load a reference ``RIEModel`` state dict (its checkpoint's ``model_pos``) into ``model``.

    A stage-1 state (no ``FuseBlocks``) has decoders with 2 latent inputs: they
    are widened with zero columns for the fused feature, fusion is switched off
    and the fusion weights are left as they are. Shapes must match the config.
    """
    if model.config.groups != REFERENCE_GROUPS:
        raise CheckpointError("RIE reference weights need RIEConfig.groups == REFERENCE_GROUPS (the reference's order)")
    has_fusion = any(k.startswith("FuseBlocks.") for k in state)
    ours = model.state_dict()
    latent = model.config.latent_dim
    mapped = {}
    for key, value in state.items():
        name = reference_key(key)
        if name not in ours:
            raise CheckpointError(f"RIE reference state dict: {key!r} has no counterpart ({name!r}) in this model")
        if not has_fusion and re.fullmatch(r"decoders\.\d+\.fc_in\.weight", name):
            # [local, global] columns -> [local, fused (zero), global].
            value = torch.cat((value[:, :latent], torch.zeros_like(value[:, :latent]), value[:, latent:]), dim=1)
        if value.shape != ours[name].shape:
            raise CheckpointError(
                f"RIE reference state dict: {key!r} has shape {tuple(value.shape)}, "
                f"this config expects {tuple(ours[name].shape)}"
            )
        mapped[name] = value
    optional = ("fusion_enabled",) if has_fusion else ("fusion_enabled", "fusion.")
    missing = [k for k in ours if k not in mapped and not k.startswith(optional)]
    if missing:
        raise CheckpointError(f"RIE reference state dict lacks {len(missing)} tensors, e.g. {missing[:3]}")
    with torch.no_grad():
        for name, value in mapped.items():
            ours[name].copy_(value)
    model.use_fusion = has_fusion
