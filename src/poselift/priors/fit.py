"""Fit BPC and JMC priors on labelled 3D poses.

BPC: each of the 15 bone ratios gets a 1-D Gaussian (mean, population std).
The labelled subjects are few (PoseReg uses S1 alone), so before taking
ratios every bone length of every frame is multiplied by its own factor
~ N(1, ``length_jitter``), as PoseReg does: the priors then tolerate body
proportions a little different from the labelled people's. For fixed
lengths this widens each ratio's std to about ``ratio * jitter * sqrt(2)``.

JMC: each free bone's unit vectors get a 3-D Gaussian (``components=1``) or a
Gaussian mixture fitted by EM (``components>1``; own implementation, seeded
k-means++ start, at most ``EM_MAX_SAMPLES`` random samples per bone). With
``group_mirrored`` the left bones' vectors are mirrored into the right
convention and pooled with their partners', so each pair
shares one density (twice the data, and symmetric by construction).
Covariances get ``cov_reg`` added to their diagonal: some free bones are
nearly rigid (the hips are exactly opposite each other around the pelvis in
Human3.6M), and the floor keeps them invertible and their log-likelihood
from becoming a near-hard constraint (1e-4 is a ~0.6 degree std floor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np

from poselift.errors import PoseliftError
from poselift.priors.bone_ratios import RATIO_NAMES, bone_lengths, ratios_from_lengths
from poselift.priors.free_bones import FREE_BONE_NAMES, MIRROR_PAIRS, free_bone_vectors, mirror_free_bone_vectors
from poselift.priors.model import PosePriors

MIN_RATIO_STD = 1e-4  # floor so a constant ratio (e.g. rigid synthetic bodies without jitter) stays a density
EM_MAX_SAMPLES = 50000
_CHUNK = 65536  # frames per free-bone batch: bounds the (N, 16, 3, 3) frame tensor


def fit_ratio_gaussians(lengths: np.ndarray, length_jitter: float, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-ratio Gaussian from bone lengths.

    Args:
        lengths: (N, 16) bone lengths (any unit).
        length_jitter: std of the per-bone, per-frame length factor ~ N(1, jitter); 0 disables it.
        rng: source of the factors.

    Returns:
        (mean (15,), std (15,), the jittered ratios (N, 15) they were fitted on).
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    if length_jitter > 0:
        lengths = lengths * rng.normal(1.0, length_jitter, size=lengths.shape)
    ratios = ratios_from_lengths(lengths)
    return ratios.mean(0), np.maximum(ratios.std(0), MIN_RATIO_STD), ratios


def _log_gauss(x: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """(N, 3) points, (K, 3) means, (K, 3, 3) covariances -> (N, K) log-densities."""
    chol = np.linalg.cholesky(cov)
    chol_inv = np.linalg.inv(chol)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)
    # One BLAS product per component: much faster than a batched einsum over (N, K, d).
    maha = np.stack([(((x - mu[k]) @ chol_inv[k].T) ** 2).sum(1) for k in range(len(mu))], axis=1)
    return -0.5 * maha - 0.5 * logdet - 0.5 * x.shape[1] * math.log(2 * math.pi)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding then a few Lloyd steps: (k, d) starting means well spread over the data."""
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        idx = rng.integers(len(x)) if total <= 0 else rng.choice(len(x), p=d2 / total)
        centres.append(x[idx])
        d2 = np.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    c = np.array(centres)
    for _ in range(10):
        label = ((x[:, None] - c[None]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            if np.any(label == j):
                c[j] = x[label == j].mean(0)
    return c


def fit_gaussian_mixture(x: np.ndarray, components: int, *, cov_reg: float = 1e-4, seed: int = 0,
                         max_iter: int = 300, tol: float = 1e-6, max_samples: int | None = EM_MAX_SAMPLES
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum-likelihood Gaussian (mixture) by EM.

    Args:
        x: (N, d) samples.
        components: K >= 1; K = 1 is the closed-form mean and (population) covariance.
        cov_reg: added to every covariance's diagonal (at each M-step).
        seed: seeds the k-means++ start.
        max_iter, tol: EM stops when the mean log-likelihood gains less than ``tol``.
        max_samples: EM (K > 1) runs on a seeded random subset of at most this many samples;
            a smooth 3-D density needs no more, and EM's cost is linear in N per iteration.

    Returns:
        weights (K,), means (K, d), covariances (K, d, d).
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    if n < max(2, components):
        raise PoseliftError(f"need at least {max(2, components)} samples to fit {components} component(s), got {n}")
    eye = np.eye(d) * cov_reg
    global_cov = np.cov(x, rowvar=False, bias=True).reshape(d, d) + eye
    if components == 1:
        return np.ones(1), x.mean(0)[None], global_cov[None]
    rng = np.random.default_rng(seed)
    if max_samples is not None and n > max_samples:
        x = x[rng.choice(n, max_samples, replace=False)]
        n = max_samples
    mu = _kmeans_pp(x, components, rng)
    cov = np.repeat(global_cov[None], components, axis=0)
    w = np.full(components, 1.0 / components)
    prev = -np.inf
    for _ in range(max_iter):
        logp = _log_gauss(x, mu, cov) + np.log(np.maximum(w, 1e-300))
        ll = _logsumexp(logp, axis=1)
        resp = np.exp(logp - ll[:, None])
        nk = resp.sum(0)
        safe_nk = np.maximum(nk, 1e-300)
        w = nk / n
        mu = (resp.T @ x) / safe_nk[:, None]
        cov = np.stack([((x - mu[k]) * resp[:, k:k + 1]).T @ (x - mu[k]) for k in range(components)])
        cov = cov / safe_nk[:, None, None] + eye
        starved = nk < 1e-6 * n
        if np.any(starved):
            # A component that explains (almost) nothing restarts at the worst-explained sample.
            mu[starved], cov[starved], w[starved] = x[ll.argmin()], global_cov, 1.0 / n
            w /= w.sum()
            prev = -np.inf
            continue
        mean_ll = ll.mean()
        if mean_ll - prev < tol:
            break
        prev = mean_ll
    return w, mu, cov


def _free_bone_vectors_chunked(poses: np.ndarray) -> np.ndarray:
    return np.concatenate([free_bone_vectors(poses[i:i + _CHUNK]) for i in range(0, len(poses), _CHUNK)], axis=0)


def fit_priors(poses: np.ndarray, *, length_jitter: float = 0.05, components: int = 1, group_mirrored: bool = True,
               seed: int = 0, cov_reg: float = 1e-4, subjects: Sequence[str] = (),
               return_samples: bool = False):
    """Fit :class:`PosePriors` on labelled poses.

    Args:
        poses: (N, 17, 3) Human3.6M-17 positions in metres (any global rotation/translation).
        length_jitter: std of the bone-length factors used for BPC (PoseReg: 0.05).
        components: Gaussians per free bone (1 = PoseReg's single Gaussian).
        group_mirrored: pool left and right free bones through mirroring.
        seed: seeds the jitter and EM starts.
        cov_reg: diagonal added to every free-bone covariance.
        subjects: recorded in ``meta``.
        return_samples: also return ``(ratios (N, 15), vectors (N, 16, 3))`` the fit used
            (jittered ratios; vectors in the priors' convention, mirrored when grouped) for plots.

    Returns:
        PosePriors, or ``(PosePriors, ratios, vectors)`` with ``return_samples``.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (17, 3):
        raise PoseliftError(f"poses must have shape (N, 17, 3) (Human3.6M-17, metres), got {poses.shape}")
    if not np.all(np.isfinite(poses)):
        raise PoseliftError("poses contain NaN or infinite coordinates")
    if components < 1:
        raise PoseliftError(f"components must be >= 1, got {components}")
    if length_jitter < 0:
        raise PoseliftError(f"length_jitter must be >= 0, got {length_jitter}")
    n = len(poses)
    if n < max(2, components):
        raise PoseliftError(f"need at least {max(2, components)} poses to fit priors, got {n}")
    rng = np.random.default_rng(seed)

    lengths = bone_lengths(poses)
    ratio_mean, ratio_std, ratios = fit_ratio_gaussians(lengths, length_jitter, rng)

    vectors = _free_bone_vectors_chunked(poses)
    if group_mirrored:
        vectors = mirror_free_bone_vectors(vectors)
    groups = [(r, l) for r, l in MIRROR_PAIRS] if group_mirrored else []
    grouped = {j for g in groups for j in g}
    groups += [(j,) for j in range(len(FREE_BONE_NAMES)) if j not in grouped]
    weights = np.zeros((len(FREE_BONE_NAMES), components))
    means = np.zeros((len(FREE_BONE_NAMES), components, 3))
    covs = np.zeros((len(FREE_BONE_NAMES), components, 3, 3))
    for g in groups:
        data = np.concatenate([vectors[:, j] for j in g], axis=0)
        data = data[np.linalg.norm(data, axis=1) > 0.5]  # degenerate frames give ~zero vectors
        if len(data) < max(2, components):
            raise PoseliftError(f"free bone {FREE_BONE_NAMES[g[0]]}: only {len(data)} non-degenerate samples")
        w, mu, cov = fit_gaussian_mixture(data, components, cov_reg=cov_reg, seed=seed + g[0])
        order = np.argsort(-w, kind="stable")  # heaviest component first: reproducible layout
        for j in g:
            weights[j], means[j], covs[j] = w[order], mu[order], cov[order]

    meta = {
        "subjects": list(subjects), "frames": int(n), "jitter": float(length_jitter), "components": int(components),
        "group_mirrored": bool(group_mirrored), "cov_reg": float(cov_reg), "seed": int(seed),
        "ratio_names": list(RATIO_NAMES), "free_bone_names": list(FREE_BONE_NAMES),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    priors = PosePriors(ratio_mean=ratio_mean, ratio_std=ratio_std, fb_weights=weights, fb_means=means,
                        fb_covs=covs, bone_length_mean=lengths.mean(0), meta=meta)
    if return_samples:
        return priors, ratios, vectors
    return priors
