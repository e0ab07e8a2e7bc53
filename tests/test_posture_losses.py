"""Weak posture losses (poselift.losses.posture): BSE, BPC, JMC and the two multi-view consistency terms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_posture_metrics import BASE_POSE, reference_inputs

from poselift.data.synthetic import SyntheticConfig, generate_motion
from poselift.geometry.camera import world_to_camera
from poselift.losses import (BoneProportionLoss, BoneSymmetryLoss, JointMobilityLoss, MultiViewPoseLoss,
                             MultiViewPostureLoss)
from poselift.losses.posture import free_bone_to_bone_index
from poselift.priors.bone_ratios import BONES, RATIO_NAMES, bone_lengths
from poselift.priors.fit import fit_priors
from poselift.priors.free_bones import FREE_BONE_NAMES, FREE_BONES, free_bone_vectors
from poselift.skeleton import H36M_17

J = {name: i for i, name in enumerate(H36M_17.joint_names)}


@pytest.fixture(scope="module")
def poses() -> torch.Tensor:
    """(700, 17, 3) float64 root-relative synthetic poses: 2 subjects x 7 actions x 50 frames."""
    positions, _ = generate_motion(SyntheticConfig(subjects=("S1", "S2"), seconds_per_action=2.0, fps=25,
                                                   cameras_per_subject=1, seed=0))
    p = np.concatenate([clip for acts in positions.values() for clip in acts.values()]).astype(np.float64)
    return torch.from_numpy(p - p[:, :1])


@pytest.fixture(scope="module")
def priors(poses):
    return fit_priors(poses.numpy(), seed=0)


def _move_subtree(p: torch.Tensor, joints: list[int], offset: torch.Tensor) -> torch.Tensor:
    out = p.clone()
    out[..., joints, :] = out[..., joints, :] + offset[..., None, :]
    return out


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)


# --------------------------------------------------------------------------- BSE


def test_bse_zero_on_symmetric_bodies_and_exact_for_a_longer_thigh(poses):
    bse = BoneSymmetryLoss()
    assert bse(poses).item() < 1e-6  # synthetic bodies are left/right symmetric (float32 positions)
    d = 0.05
    knee, hip, ankle = J["right_knee"], J["right_hip"], J["right_ankle"]
    longer = _move_subtree(poses, [knee, ankle], d * _unit(poses[:, knee] - poses[:, hip]))
    # only the thigh pair differs now, by d in every frame: mean over 6 pairs = d / 6
    assert bse(longer).item() == pytest.approx(d / 6, abs=2e-6)
    # a left thigh shorter by d costs the same; leading dims (B, T) are fine
    knee, hip, ankle = J["left_knee"], J["left_hip"], J["left_ankle"]
    shorter = _move_subtree(poses, [knee, ankle], -d * _unit(poses[:, knee] - poses[:, hip]))
    assert bse(shorter.reshape(14, 50, 17, 3)).item() == pytest.approx(d / 6, abs=2e-6)
    assert BoneSymmetryLoss(weight=3.0)(shorter).item() == pytest.approx(3 * d / 6, abs=6e-6)


# --------------------------------------------------------------------------- BPC


def _bpc_by_hand(p: torch.Tensor, priors, w: float = 0.1, eps: float = 1.0) -> float:
    """mean(-w log(N(r; mu, sd) + eps)) with the Gaussian written out, from numpy bone lengths."""
    lengths = np.linalg.norm(p.numpy()[:, [c for _, c, _ in BONES]] - p.numpy()[:, [q for _, _, q in BONES]], axis=-1)
    names = [b[0] for b in BONES]
    num = [names.index(r.split("/")[0]) for r in RATIO_NAMES]
    den = [names.index(r.split("/")[1]) for r in RATIO_NAMES]
    r = lengths[:, num] / lengths[:, den]
    pdf = np.exp(-0.5 * ((r - priors.ratio_mean) / priors.ratio_std) ** 2) / (priors.ratio_std * math.sqrt(2 * math.pi))
    return float(np.mean(-w * np.log(pdf + eps)))


def test_bpc_follows_posereg_form_and_grows_for_a_long_forearm(poses, priors):
    bpc = BoneProportionLoss(priors)
    plausible = bpc(poses).item()
    assert plausible == pytest.approx(_bpc_by_hand(poses, priors), rel=1e-9)
    # a forearm twice the upper arm
    elbow, wrist, shoulder = J["right_elbow"], J["right_wrist"], J["right_shoulder"]
    upper = torch.linalg.vector_norm(poses[:, elbow] - poses[:, shoulder], dim=-1, keepdim=True)
    odd = poses.clone()
    odd[:, wrist] = poses[:, elbow] + 2 * upper * _unit(poses[:, wrist] - poses[:, elbow])
    implausible = bpc(odd).item()
    assert implausible == pytest.approx(_bpc_by_hand(odd, priors), rel=1e-9)
    # that ratio's term goes from about -w log(1 + peak density) to ~0: 1/15 of it shows in the mean
    k = RATIO_NAMES.index("right_forearm/right_bicep")
    term = -0.1 * torch.logaddexp(priors.ratio_log_likelihood(torch.zeros(1, 15, dtype=torch.float64)
                                                              + torch.from_numpy(priors.ratio_mean))[0, k],
                                  torch.tensor(0.0, dtype=torch.float64)).item()
    assert implausible - plausible > 0.5 * abs(term) / 15
    assert implausible > plausible
    # other eps / weights are honoured; a tiny eps gives plain negative log-likelihood (grows far more)
    assert BoneProportionLoss(priors, log_weight=1.0, eps=1e-3)(odd).item() == pytest.approx(
        _bpc_by_hand(odd, priors, 1.0, 1e-3), rel=1e-9)
    with pytest.raises(ValueError, match="eps"):
        BoneProportionLoss(priors, eps=0.0)


# --------------------------------------------------------------------------- JMC


def test_jmc_grows_for_a_knee_and_an_elbow_bent_backwards(poses, priors):
    jmc = JointMobilityLoss(priors)
    vectors = free_bone_vectors(poses)
    log_p = priors.free_bone_log_likelihood(vectors)
    # PoseReg's form by hand from the priors' log-likelihoods: mean(-0.1 log(p + 1))
    assert jmc(poses).item() == pytest.approx((-0.1 * np.log(np.exp(log_p.numpy()) + 1)).mean(), rel=1e-9)

    for upper, mid, lower, bone in (("right_hip", "right_knee", "right_ankle", "right_leg"),
                                    ("left_shoulder", "left_elbow", "left_wrist", "left_forearm")):
        a, b, c = J[upper], J[mid], J[lower]
        axis = _unit(poses[:, b] - poses[:, a])
        shin = poses[:, c] - poses[:, b]
        along = (shin * axis).sum(-1, keepdim=True) * axis
        bend = torch.rad2deg(torch.acos((_unit(shin) * axis).sum(-1).clamp(-1, 1)))
        bent = bend > 20  # frames clearly bent the natural way
        assert bent.sum() > 50
        backwards = poses.clone()
        backwards[:, c] = poses[:, b] + along - (shin - along)  # mirror the lower bone across the upper one
        i = FREE_BONE_NAMES.index(bone)
        before = log_p[bent, i]
        after = priors.free_bone_log_likelihood(free_bone_vectors(backwards[bent]))[:, i]
        assert (after < before - 2).all() and (before - after).mean() > 8, bone
        assert jmc(backwards[bent]).item() > jmc(poses[bent]).item()


# --------------------------------------------------------------------------- multi-view pose


def _quat(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    return np.concatenate(([math.cos(angle / 2)], math.sin(angle / 2) * axis))


CAMERAS = [  # camera-to-world (orientation, centre), as Human3.6M's camera files store them
    (_quat([1.0, 0.2, -0.1], 1.9), np.array([3.0, -2.0, 1.5])),
    (_quat([0.3, -1.0, 0.4], 2.6), np.array([-3.5, 0.5, 1.2])),
    (_quat([-0.2, 0.1, 1.0], -1.1), np.array([0.4, 4.0, 1.8])),
]


def _views(world: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """World poses (..., 17, 3) -> per-view root-relative poses (V, ..., 17, 3), trajectories (V, ..., 1, 3),
    orientations (V, 4), translations (V, 3)."""
    cam = np.stack([world_to_camera(world, q, t) for q, t in CAMERAS])
    return (torch.from_numpy(cam - cam[..., :1, :]), torch.from_numpy(cam[..., :1, :]),
            torch.from_numpy(np.stack([q for q, _ in CAMERAS])), torch.from_numpy(np.stack([t for _, t in CAMERAS])))


@pytest.fixture(scope="module")
def world_clip() -> np.ndarray:
    positions, _ = generate_motion(SyntheticConfig(subjects=("S3",), seconds_per_action=0.2, fps=50,
                                                   cameras_per_subject=1, seed=4))
    return np.stack([clip for clip in positions["S3"].values()]).astype(np.float64)  # (7, 10, 17, 3) world


def test_multiview_pose_zero_for_consistent_views_and_exact_for_a_shift(world_clip):
    loss = MultiViewPoseLoss()
    pose, traj, q, t = _views(world_clip)
    assert pose.shape == (3, 7, 10, 17, 3)
    assert loss(pose, q).item() == pytest.approx(0.0, abs=1e-9)
    assert loss(pose, q, traj, t).item() == pytest.approx(0.0, abs=1e-9)
    # the wrong rotation convention (world-to-camera) would not agree
    assert loss(pose, torch.cat((q[:, :1], -q[:, 1:]), dim=1)).item() > 0.1
    offset = torch.tensor([0.03, -0.04, 0.12], dtype=torch.float64)  # |offset| = 0.13 m
    # view 2 off by 13 cm: one of the V-1 = 2 anchor comparisons sees 13 cm at every joint
    shifted = pose.clone()
    shifted[2] += offset
    assert loss(shifted, q).item() == pytest.approx(0.13 / 2, rel=1e-9)
    # the anchor (view 0) off: both comparisons see it
    shifted = pose.clone()
    shifted[0] += offset
    assert loss(shifted, q).item() == pytest.approx(0.13, rel=1e-9)
    # a trajectory error counts only when trajectories are compared
    moved = traj.clone()
    moved[1] += offset
    assert loss(pose, q, moved, t).item() == pytest.approx(0.13 / 2, rel=1e-9)
    assert loss(pose, q).item() == pytest.approx(0.0, abs=1e-9)
    assert MultiViewPoseLoss(weight=0.1)(shifted, q).item() == pytest.approx(0.013, rel=1e-9)
    with pytest.raises(ValueError, match="translations"):
        loss(pose, q, traj)
    with pytest.raises(ValueError, match="V >= 2"):
        loss(pose[:1], q[:1])


# --------------------------------------------------------------------------- multi-view posture


def _rotate_wrist(p: torch.Tensor, angle: float) -> torch.Tensor:
    """Turn the right wrist about the elbow by ``angle`` (axis perpendicular to the forearm)."""
    out = p.clone()
    e, w = J["right_elbow"], J["right_wrist"]
    bone = p[..., w, :] - p[..., e, :]
    axis = _unit(torch.linalg.cross(bone, torch.tensor([0.2, 0.7, -0.4], dtype=p.dtype).expand_as(bone), dim=-1))
    # Rodrigues with the axis perpendicular to the bone
    rotated = bone * math.cos(angle) + torch.linalg.cross(axis, bone, dim=-1) * math.sin(angle)
    out[..., w, :] = p[..., e, :] + rotated
    return out


MEAN_LENGTH = np.linalg.norm(BASE_POSE[[c for _, c, _ in BONES]] - BASE_POSE[[q for _, _, q in BONES]], axis=-1)

# PoseReg run_pr.py's posture term (--mce-type -2, --posture-loss-norm-type 1, anchor = first view), run on
# posture_reference_views() with MEAN_LENGTH as the labelled mean bone lengths, float32, from a /tmp checkout
# of lawrenceamadi/PoseReg (FreeBoneOrientation as MPBOE_BONE_ALIGN_CONFIG, group_jnts=False, quadruplets).
POSEREG_POSTURE_MVP = 0.06428096443414688


def posture_reference_views() -> np.ndarray:
    """(3, 2, 3, 17, 3): view 0 = reference target poses, view 1 = a rotated, moved copy of the prediction,
    view 2 = a scaled, rotated copy of the target (same posture as view 0)."""
    pred, target = reference_inputs()
    r1 = torch.from_numpy(_quat([0.3, 1.0, -0.2], 2.0))
    r2 = torch.from_numpy(_quat([-1.0, 0.1, 0.5], -0.7))
    from poselift.geometry.quaternion import qrot
    v1 = qrot(r1.expand(*pred.shape[:-1], 4), torch.from_numpy(pred)).numpy() + np.array([0.2, -1.0, 3.0])
    v2 = 0.8 * qrot(r2.expand(*target.shape[:-1], 4), torch.from_numpy(target)).numpy()
    return np.stack([target, v1, v2])


def test_multiview_posture_zero_for_consistent_views_and_positive_otherwise(world_clip):
    loss = MultiViewPostureLoss(MEAN_LENGTH)
    pose, _, _, _ = _views(world_clip)
    scaled = pose.clone()
    scaled[1] *= 1.2  # a bigger body in one view has the same posture
    assert loss(pose).item() == pytest.approx(0.0, abs=1e-9)
    assert loss(scaled).item() == pytest.approx(0.0, abs=1e-9)

    bent = pose.clone()
    bent[2] = _rotate_wrist(pose[2], math.radians(40))
    value = loss(bent).item()
    # only the right forearm differs, in view 2: L * |u0 - u2|_1 / 16 bones / 2 comparisons
    i = FREE_BONE_NAMES.index("right_forearm")
    length = MEAN_LENGTH[free_bone_to_bone_index()[i]]
    u0, u2 = free_bone_vectors(bent[0])[..., i, :], free_bone_vectors(bent[2])[..., i, :]
    # (other bones differ only by the rounding of the camera transforms)
    assert value == pytest.approx(length * (u0 - u2).abs().sum(-1).mean().item() / 16 / 2, abs=1e-9)
    # the L1 distance of unit vectors 40 degrees apart lies between the chord and sqrt(3) chord
    chord = 2 * math.sin(math.radians(20))
    assert length * chord / 32 * (1 - 1e-9) <= value <= math.sqrt(3) * length * chord / 32 * (1 + 1e-9)
    assert MultiViewPostureLoss(torch.from_numpy(MEAN_LENGTH), weight=0.5)(bent).item() == pytest.approx(value / 2)
    with pytest.raises(ValueError, match=r"\(16,\)"):
        MultiViewPostureLoss(MEAN_LENGTH[:15])


def test_free_bones_map_to_bones():
    index = free_bone_to_bone_index()
    assert sorted(index) == list(range(16))
    for fb, b in zip(FREE_BONES, index):
        assert {fb.pivot, fb.free} == {BONES[b][1], BONES[b][2]}


def test_multiview_posture_matches_posereg_reference():
    views = torch.from_numpy(posture_reference_views()).float()
    assert MultiViewPostureLoss(MEAN_LENGTH)(views).item() == pytest.approx(POSEREG_POSTURE_MVP, rel=1e-5)


# --------------------------------------------------------------------------- numerics


def _all_losses(priors):
    lengths = torch.from_numpy(np.asarray(priors.bone_length_mean))
    q = torch.tensor([[1.0, 0, 0, 0], [0.6, 0.8, 0, 0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 0, 0], [1.0, 2.0, 3.0]], dtype=torch.float64)
    return [
        ("bse", lambda p: BoneSymmetryLoss()(p)),
        ("bpc", lambda p: BoneProportionLoss(priors)(p)),
        ("bpc_small_eps", lambda p: BoneProportionLoss(priors, eps=1e-6)(p)),
        ("jmc", lambda p: JointMobilityLoss(priors)(p)),
        ("mvp_pose", lambda p: MultiViewPoseLoss()(torch.stack([p, p]), q)),
        ("mvp_pose_traj", lambda p: MultiViewPoseLoss()(torch.stack([p, p]), q, torch.stack([p[..., :1, :]] * 2), t)),
        ("mvp_posture", lambda p: MultiViewPostureLoss(lengths)(torch.stack([p, p]))),
    ]


@pytest.mark.parametrize("case", ["zeros", "duplicated_joint", "collinear"])
def test_values_and_gradients_finite_for_degenerate_poses(priors, case):
    base = torch.from_numpy(BASE_POSE).expand(2, 3, 17, 3).clone()
    if case == "zeros":
        pose = torch.zeros(2, 3, 17, 3, dtype=torch.float64)
    elif case == "duplicated_joint":
        pose = base.clone()
        pose[..., J["right_elbow"], :] = pose[..., J["right_shoulder"], :]  # zero-length upper arm
        pose[..., J["left_knee"], :] = pose[..., J["left_hip"], :]  # zero-length thigh
    else:
        pose = base.clone()
        pose[..., J["right_wrist"], :] = 2 * pose[..., J["right_elbow"], :] - pose[..., J["right_shoulder"], :]
    for name, fn in _all_losses(priors):
        x = pose.clone().requires_grad_(True)
        value = fn(x)
        (grad,) = torch.autograd.grad(value, x)
        assert torch.isfinite(value), (case, name)
        assert torch.isfinite(grad).all(), (case, name)


def test_float32_batches_and_gradients_flow(poses, priors):
    """The losses run on float32 (B, T, 17, 3) training batches and push a bad pose the right way."""
    batch = poses[:60].float().reshape(2, 30, 17, 3)
    elbow, wrist = J["right_elbow"], J["right_wrist"]
    odd = batch.clone()
    odd[..., wrist, :] = batch[..., elbow, :] + 1.6 * (batch[..., wrist, :] - batch[..., elbow, :])
    x = odd.clone().requires_grad_(True)
    loss = BoneSymmetryLoss()(x) + BoneProportionLoss(priors, eps=1e-3)(x)
    (grad,) = torch.autograd.grad(loss, x)
    assert loss.dtype == torch.float32 and torch.isfinite(grad).all()
    # a small step against the gradient shortens the over-long forearm
    stepped = (x - 0.05 * grad / grad.abs().max()).detach()
    before = bone_lengths(odd)[..., [b[0] for b in BONES].index("right_forearm")]
    after = bone_lengths(stepped)[..., [b[0] for b in BONES].index("right_forearm")]
    assert (after < before).float().mean() > 0.9


def test_multiview_pose_loss_takes_per_sample_cameras():
    """A batch mixing subjects: each sample has its own rig, (V, B, 4) / (V, B, 3); same value as one call each."""
    import torch
    from poselift.geometry.quaternion import qrot
    from poselift.losses.posture import MultiViewPoseLoss

    g = torch.Generator().manual_seed(0)
    v, b, t = 3, 2, 4
    q = torch.nn.functional.normalize(torch.randn(v, b, 4, generator=g), dim=-1)
    trans = torch.randn(v, b, 3, generator=g)
    world = torch.randn(b, t, 17, 3, generator=g, dtype=torch.float32)
    # each view's camera-frame pose: inverse rotation of (world - camera centre)
    qinv = q * torch.tensor([1.0, -1.0, -1.0, -1.0])
    cam = torch.stack([qrot(qinv[i][:, None, None].expand(b, t, 17, 4), world - trans[i][:, None, None])
                       for i in range(v)])  # (V, B, T, 17, 3)
    rel, traj = cam - cam[..., :1, :], cam[..., :1, :]
    loss = MultiViewPoseLoss()
    assert loss(rel, q, traj, trans).item() == pytest.approx(0.0, abs=1e-5)
    shifted = traj.clone()
    shifted[2, 1] += torch.tensor([0.3, 0.0, 0.4])  # 0.5 m off in view 2, sample 1 only
    expected = 0.5 / 2 / 2  # mean over the 2 compared views and the 2 samples
    assert loss(rel, q, shifted, trans).item() == pytest.approx(expected, rel=1e-4)
    per_sample = sum(loss(rel[:, k], q[:, k], shifted[:, k], trans[:, k]).item() for k in range(b)) / b
    assert loss(rel, q, shifted, trans).item() == pytest.approx(per_sample, rel=1e-6)
