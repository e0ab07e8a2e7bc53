"""Weak losses for unlabelled 3D predictions: bone symmetry, pose-prior likelihoods and multi-view consistency.

With few labelled poses, a lifter trained on reprojection alone learns
skeletons that project well but are asymmetric, oddly proportioned or bent
the wrong way. Amadi & Agam (ICIP 2022, Sensors 2023; see docs/posture.md)
regularise the unlabelled branch with priors fitted on the labelled poses and,
where several synchronised cameras see the same instant, with agreement
between the views. The forms below follow the authors' code
(lawrenceamadi/PoseReg, ``run_pr.py``) where it fixes a choice:

- BSE: mean ``|len(right) - len(left)|`` over the 6 symmetric pairs.
- BPC and JMC: ``mean(-w * log(p + eps))`` with ``w = 0.1`` and ``eps = 1``.
  PoseReg multiplies each log term by ``round(pi**-2, 1) = 0.1`` (its
  ``loglihood_wgts`` for 1-D ratio densities and single free-bone densities)
  and adds ``log_epsilon = 1`` to the likelihood before the log; its optional
  log-likelihood normalisations are off in the published runs. With ``eps = 1``
  the term is ``<= 0``, largest (0) for implausible values and lowest at the
  prior's mode, and it saturates far from the mode instead of exploding; both
  constants are arguments. ``log(p + eps)`` is evaluated as
  ``logaddexp(log p, log eps)`` from the priors' log-likelihoods, so it stays
  finite and differentiable where ``p`` underflows.
- Multi-view terms compare the first view (the anchor) with each other view,
  PoseReg's "anchor-to-each-positive" (``--mce-type -2.1``): the pose term is
  the mean L2 distance per joint in world space, the posture term the mean L1
  distance between free-bone unit vectors scaled by the mean labelled length
  of each bone.

Weights: like every poselift loss, each module has a ``weight`` attribute
(default 1.0) and returns ``weight * loss``, so with the default it returns the
raw loss and the trainer applies its configured coefficient (the authors' runs:
BSE 0.133, BPC 0.067, JMC 0.067, pose-MvP 0.1, posture-MvP 0.03; those already
assume the inner ``w = 0.1`` of BPC and JMC).

Poses are (..., 17, 3) in Human3.6M-17 order, metres, root-relative (pelvis at
the origin); any leading dimensions, typically (B, T).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from poselift.geometry.quaternion import qrot
from poselift.priors.bone_ratios import BONES, SYMMETRIC_BONE_PAIRS, bone_lengths, bone_ratios
from poselift.priors.free_bones import FREE_BONES, free_bone_vectors

__all__ = ["BoneProportionLoss", "BoneSymmetryLoss", "JointMobilityLoss", "MultiViewPoseLoss",
           "MultiViewPostureLoss", "free_bone_to_bone_index", "neg_log_likelihood_plus_eps"]

# PoseReg's per-term factor round(pi**-2, 1) and its likelihood epsilon (run_pr.py: log_epsilon).
POSEREG_LOG_WEIGHT = 0.1
POSEREG_LIKELIHOOD_EPS = 1.0


def _check_pose(poses: torch.Tensor, what: str = "poses") -> None:
    if poses.dim() < 2 or poses.shape[-2:] != (17, 3):
        raise ValueError(f"{what} must be (..., 17, 3) Human3.6M-17 joints, got {tuple(poses.shape)}")


def neg_log_likelihood_plus_eps(log_likelihood: torch.Tensor, eps: float, weight: float) -> torch.Tensor:
    """``-weight * log(exp(log_likelihood) + eps)`` elementwise, stable for any log-likelihood (eps > 0)."""
    return -weight * torch.logaddexp(log_likelihood, log_likelihood.new_tensor(math.log(eps)))


class BoneSymmetryLoss(nn.Module):
    """BSE: mean over the 6 symmetric bone pairs (and all poses) of ``|len(right) - len(left)|``, metres.

    Args (forward):
        poses: (..., 17, 3).
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight
        pairs = torch.tensor(SYMMETRIC_BONE_PAIRS, dtype=torch.long)
        self.register_buffer("right", pairs[:, 0], persistent=False)
        self.register_buffer("left", pairs[:, 1], persistent=False)

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        _check_pose(poses)
        lengths = bone_lengths(poses)  # (..., 16)
        return self.weight * (lengths[..., self.right] - lengths[..., self.left]).abs().mean()


class _PriorLikelihoodLoss(nn.Module):
    """``mean(-w * log(p + eps))`` of a per-pose quantity under fitted priors (shared by BPC and JMC).

    Args:
        priors: a fitted :class:`poselift.priors.model.PosePriors`.
        log_weight: the factor ``w`` on each log term (PoseReg: 0.1).
        eps: added to the density before the log (PoseReg: 1.0); must be > 0.
    Args (forward):
        poses: (..., 17, 3).
    """

    def __init__(self, priors, log_weight: float = POSEREG_LOG_WEIGHT, eps: float = POSEREG_LIKELIHOOD_EPS,
                 weight: float = 1.0) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.priors, self.log_weight, self.eps, self.weight = priors, log_weight, eps, weight

    def log_likelihood(self, poses: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        _check_pose(poses)
        return self.weight * neg_log_likelihood_plus_eps(self.log_likelihood(poses), self.eps, self.log_weight).mean()


class BoneProportionLoss(_PriorLikelihoodLoss):
    """BPC: ``mean(-w * log(p(r) + eps))`` over the 15 bone-length ratios ``r`` of every pose.

    ``p`` is the 1-D Gaussian density of each ratio fitted on labelled poses
    (``priors.ratio_log_likelihood``); see the module docstring for ``w`` and ``eps``.

    Arguments as :class:`_PriorLikelihoodLoss`.
    """

    def log_likelihood(self, poses: torch.Tensor) -> torch.Tensor:
        return self.priors.ratio_log_likelihood(bone_ratios(poses))  # (..., 15)


class JointMobilityLoss(_PriorLikelihoodLoss):
    """JMC: ``mean(-w * log(p(u) + eps))`` over the 16 free-bone unit vectors ``u`` of every pose.

    ``p`` is the density of each free bone's orientation in its local frame
    fitted on labelled poses (``priors.free_bone_log_likelihood``); PoseReg's
    single-bone ("rank 1") terms. See the module docstring for ``w`` and ``eps``.

    Arguments as :class:`_PriorLikelihoodLoss`.
    """

    def log_likelihood(self, poses: torch.Tensor) -> torch.Tensor:
        return self.priors.free_bone_log_likelihood(free_bone_vectors(poses))  # (..., 16)


def _per_view(x: torch.Tensor, views: int, like: torch.Tensor) -> torch.Tensor:
    """Per-view (V, k) or per-view-and-sample (V, B, k) camera values -> broadcasting against ``like`` (V, B, ..., k').

    Per-sample cameras arise when a batch mixes subjects (each with its own rig).
    """
    lead = tuple(x.shape[1:-1])
    return x.to(like).reshape(views, *lead, *([1] * (like.dim() - 2 - len(lead))), x.shape[-1])


def _check_cameras(x: torch.Tensor | None, name: str, k: int, poses: torch.Tensor) -> None:
    views = poses.shape[0]
    ok = x is not None and x.dim() in (2, 3) and x.shape[0] == views and x.shape[-1] == k and (
        x.dim() == 2 or (poses.dim() > 3 and x.shape[1] == poses.shape[1]))
    if not ok:
        raise ValueError(f"{name} must be ({views}, {k}) or ({views}, B, {k}) with B = poses.shape[1], "
                         f"got {None if x is None else tuple(x.shape)}")


class MultiViewPoseLoss(nn.Module):
    """Pose MvP: the same instant seen by V cameras must give the same pose in world space.

    Each view's prediction is taken to world space with its camera's
    camera-to-world rotation (``X_world = qrot(q, X_cam) + t``, poselift's and
    Human3.6M's convention, see :func:`poselift.geometry.camera.camera_to_world`),
    then the first view is compared with each other view: mean over views
    ``1..V-1``, joints and poses of the L2 distance per joint (metres).

    Without trajectories the root-relative poses are only rotated (translations
    cancel), so the loss measures disagreement in posture and facing. With
    trajectories the absolute world positions are compared, as PoseReg does
    with ``-mce-ta``: a wrong depth in one view then costs too.

    Args (forward):
        poses: (V, ..., 17, 3) root-relative predictions, each in its camera's frame.
        orientations: (V, 4) camera-to-world unit quaternions (w, x, y, z), or (V, B, 4) when
            each of the B samples has its own cameras (a batch mixing subjects).
        trajectories: optional (V, ..., 1, 3) root positions in each camera's frame.
        translations: (V, 3) or (V, B, 3) camera centres in world space, metres; required with ``trajectories``.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, poses: torch.Tensor, orientations: torch.Tensor, trajectories: torch.Tensor | None = None,
                translations: torch.Tensor | None = None) -> torch.Tensor:
        _check_pose(poses, "poses (V, ..., 17, 3)")
        views = poses.shape[0]
        if views < 2 or poses.dim() < 3:
            raise ValueError(f"poses must be (V, ..., 17, 3) with V >= 2 views, got {tuple(poses.shape)}")
        _check_cameras(orientations, "orientations", 4, poses)
        world = poses
        if trajectories is not None:
            _check_cameras(translations, "with trajectories, translations", 3, poses)
            expected = tuple(poses.shape[:-2]) + (1, 3)
            if tuple(trajectories.shape) != expected:
                raise ValueError(f"trajectories must be {expected}, got {tuple(trajectories.shape)}")
            world = poses + trajectories
        world = qrot(_per_view(orientations, views, world), world)
        if trajectories is not None:
            world = world + _per_view(translations, views, world)
        dist = torch.linalg.vector_norm(world[:1] - world[1:], dim=-1)  # (V-1, ..., 17)
        return self.weight * dist.mean()


class MultiViewPostureLoss(nn.Module):
    """Posture MvP: the views' free-bone orientations must agree; needs no camera parameters.

    Free-bone unit vectors live in body-fixed local frames, so they are the
    same in every camera. Each is scaled by the mean labelled length of its
    bone (so long bones count more, in metres), and the first view is compared
    with each other view by the L1 norm of the difference, averaged over views
    ``1..V-1``, the 16 free bones and all poses (PoseReg ``--mce-type -2``,
    ``--posture-loss-norm-type 1``).

    Args:
        mean_bone_length: (16,) mean labelled bone lengths, metres, in
            :data:`poselift.priors.bone_ratios.BONES` order (``PosePriors.bone_length_mean``).
    Args (forward):
        poses: (V, ..., 17, 3), V >= 2 views of the same instants.
    """

    def __init__(self, mean_bone_length, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight
        lengths = torch.as_tensor(mean_bone_length, dtype=torch.float32).detach().cpu()
        if lengths.shape != (len(BONES),):
            raise ValueError(f"mean_bone_length must be ({len(BONES)},) in BONES order, got {tuple(lengths.shape)}")
        self.register_buffer("length", lengths[free_bone_to_bone_index()].reshape(-1, 1), persistent=False)

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        _check_pose(poses, "poses (V, ..., 17, 3)")
        if poses.shape[0] < 2 or poses.dim() < 3:
            raise ValueError(f"poses must be (V, ..., 17, 3) with V >= 2 views, got {tuple(poses.shape)}")
        scaled = free_bone_vectors(poses) * self.length.to(poses)  # (V, ..., 16, 3)
        return self.weight * (scaled[:1] - scaled[1:]).abs().sum(dim=-1).mean()


def free_bone_to_bone_index() -> list[int]:
    """For each of the 16 free bones, the index in ``BONES`` of the bone joining its pivot and free joint."""
    index = {frozenset((child, parent)): i for i, (_, child, parent) in enumerate(BONES)}
    out = []
    for fb in FREE_BONES:
        key = frozenset((fb.pivot, fb.free))
        if key not in index:
            raise ValueError(f"free bone {fb.name}: joints {fb.pivot}-{fb.free} are not a bone of BONES")
        out.append(index[key])
    return out
