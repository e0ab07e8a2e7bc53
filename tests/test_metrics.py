"""Procrustes alignment and the evaluation protocols (poselift.geometry.procrustes, poselift.metrics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poselift.geometry import procrustes_align
from poselift.metrics import mpjpe, mpjve, n_mpjpe, p_mpjpe


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _vp3d_p_mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """VideoPose3D's loss.p_mpjpe, re-typed from the paper's reference code: (N, J, 3) numpy."""
    mu_x = np.mean(target, axis=1, keepdims=True)
    mu_y = np.mean(predicted, axis=1, keepdims=True)
    x0 = target - mu_x
    y0 = predicted - mu_y
    norm_x = np.sqrt(np.sum(x0**2, axis=(1, 2), keepdims=True))
    norm_y = np.sqrt(np.sum(y0**2, axis=(1, 2), keepdims=True))
    x0 /= norm_x
    y0 /= norm_y
    h = np.matmul(x0.transpose(0, 2, 1), y0)
    u, s, vt = np.linalg.svd(h)
    v = vt.transpose(0, 2, 1)
    r = np.matmul(v, u.transpose(0, 2, 1))
    sign_det_r = np.sign(np.expand_dims(np.linalg.det(r), axis=1))
    v[:, :, -1] *= sign_det_r
    s[:, -1] *= sign_det_r.flatten()
    r = np.matmul(v, u.transpose(0, 2, 1))
    tr = np.expand_dims(np.sum(s, axis=1, keepdims=True), axis=2)
    a = tr * norm_x / norm_y
    t = mu_x - a * np.matmul(mu_y, r)
    aligned = a * np.matmul(predicted, r) + t
    return float(np.mean(np.linalg.norm(aligned - target, axis=-1)))


def _poses(n: int, seed: int, j: int = 17) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, j, 3)) * 0.4


# --------------------------------------------------------------------------- P-MPJPE / Procrustes


def test_p_mpjpe_zero_for_similarity_transform():
    rng = np.random.default_rng(0)
    target = _poses(8, 1)
    pred = np.empty_like(target)
    for i in range(8):
        r, s, t = _random_rotation(rng), rng.uniform(0.2, 5), rng.normal(size=3) * 3
        pred[i] = s * target[i] @ r.T + t
    assert float(mpjpe(torch.from_numpy(pred), torch.from_numpy(target))) > 0.1
    assert float(p_mpjpe(torch.from_numpy(pred), torch.from_numpy(target))) < 1e-10
    aligned = procrustes_align(torch.from_numpy(pred), torch.from_numpy(target))
    np.testing.assert_allclose(aligned.numpy(), target, atol=1e-10)
    # float32 working dtype
    p32 = p_mpjpe(torch.from_numpy(pred).float(), torch.from_numpy(target).float())
    assert p32.dtype == torch.float32 and float(p32) < 1e-5


def test_p_mpjpe_invariant_to_transforming_prediction():
    rng = np.random.default_rng(2)
    target = _poses(6, 3)
    pred = target + rng.normal(size=target.shape) * 0.05
    base = float(p_mpjpe(torch.from_numpy(pred), torch.from_numpy(target)))
    assert base > 1e-3
    for _ in range(3):
        r, s, t = _random_rotation(rng), rng.uniform(0.1, 10), rng.normal(size=3) * 5
        moved = s * pred @ r.T + t
        assert abs(float(p_mpjpe(torch.from_numpy(moved), torch.from_numpy(target))) - base) < 1e-10


def test_reflection_is_not_undone():
    target = _poses(4, 4)
    mirrored = target * np.array([-1.0, 1.0, 1.0])  # a mirror image, det = -1
    err = float(p_mpjpe(torch.from_numpy(mirrored), torch.from_numpy(target)))
    assert err > 0.05
    assert abs(err - _vp3d_p_mpjpe(mirrored.copy(), target.copy())) < 1e-10
    # an unrestricted orthogonal Procrustes (reflections allowed) would give ~0 here
    x0 = target - target.mean(1, keepdims=True)
    y0 = mirrored - mirrored.mean(1, keepdims=True)
    u, s, vt = np.linalg.svd(x0.transpose(0, 2, 1) @ y0)
    r_any = vt.transpose(0, 2, 1) @ u.transpose(0, 2, 1)
    assert np.allclose(np.linalg.det(r_any), -1)
    assert np.abs(y0 @ r_any - x0).max() < 1e-10
    # aligned result is a proper rotation of the prediction: pairwise distances scale uniformly
    aligned = procrustes_align(torch.from_numpy(mirrored), torch.from_numpy(target)).numpy()
    for i in range(4):
        d_in = np.linalg.norm(mirrored[i][:, None] - mirrored[i][None], axis=-1)
        d_out = np.linalg.norm(aligned[i][:, None] - aligned[i][None], axis=-1)
        ratio = d_out[d_in > 0] / d_in[d_in > 0]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
        # orientation (sign of a triple product) is preserved, i.e. still mirrored
        a, b, c = (mirrored[i][1:4] - mirrored[i][0])
        a2, b2, c2 = (aligned[i][1:4] - aligned[i][0])
        assert np.sign(np.dot(np.cross(a, b), c)) == np.sign(np.dot(np.cross(a2, b2), c2))


def test_p_mpjpe_matches_videopose3d_formula():
    target = _poses(32, 5)
    pred = _poses(32, 6) + target * 0.5
    ours = float(p_mpjpe(torch.from_numpy(pred), torch.from_numpy(target)))
    ref = _vp3d_p_mpjpe(pred.copy(), target.copy())
    assert abs(ours - ref) < 1e-10
    # float32 inputs (the evaluation dtype)
    ours32 = float(p_mpjpe(torch.from_numpy(pred).float(), torch.from_numpy(target).float()))
    assert abs(ours32 - ref) < 1e-5
    # batched (B, T, J, 3) equals flattening the poses
    ours4 = float(p_mpjpe(torch.from_numpy(pred).reshape(4, 8, 17, 3), torch.from_numpy(target).reshape(4, 8, 17, 3)))
    assert abs(ours4 - ref) < 1e-10


# --------------------------------------------------------------------------- MPJPE, N-MPJPE, MPJVE


def test_mpjpe_hand_value():
    target = torch.from_numpy(_poses(3, 7))
    pred = target + torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    assert abs(float(mpjpe(pred, target)) - 5.0) < 1e-12
    # half the joints off by 5, half exact -> 2.5
    pred2 = target.clone()
    pred2[:, :8] += torch.tensor([0.0, 3.0, 4.0], dtype=torch.float64)
    expected = 8 * 5.0 / 17
    assert abs(float(mpjpe(pred2, target)) - expected) < 1e-12
    t32 = target.float()
    assert abs(float(mpjpe(t32 + torch.tensor([3.0, 4.0, 0.0]), t32)) - 5.0) < 1e-5


def test_n_mpjpe_scale_invariance_and_closed_form():
    target = torch.from_numpy(_poses(5, 8))
    assert float(n_mpjpe(target * 2.7, target)) < 1e-12
    assert float(mpjpe(target * 2.7, target)) > 0.1
    rng = np.random.default_rng(9)
    pred = target + torch.from_numpy(rng.normal(size=tuple(target.shape))) * 0.1
    p, t = pred.numpy(), target.numpy()
    errs = []
    for i in range(5):
        s = np.sum(p[i] * t[i]) / np.sum(p[i] * p[i])  # least-squares scale per pose
        errs.append(np.linalg.norm(s * p[i] - t[i], axis=-1))
    expected = float(np.mean(errs))
    assert abs(float(n_mpjpe(pred, target)) - expected) < 1e-12
    # VideoPose3D's form: mean over joints of the sums (same ratio)
    norm_pred = np.mean(np.sum(p**2, axis=-1, keepdims=True), axis=-2, keepdims=True)
    norm_tgt = np.mean(np.sum(t * p, axis=-1, keepdims=True), axis=-2, keepdims=True)
    ref = np.mean(np.linalg.norm(norm_tgt / norm_pred * p - t, axis=-1))
    assert abs(float(n_mpjpe(pred, target)) - ref) < 1e-12
    assert float(n_mpjpe(pred, target)) <= float(mpjpe(pred, target)) + 1e-12


def test_mpjve_hand_value():
    # 3 frames, 2 joints. Target static; prediction moves joint 0 by (3, 4, 0) per frame.
    target = torch.zeros(3, 2, 3, dtype=torch.float64)
    pred = torch.zeros(3, 2, 3, dtype=torch.float64)
    pred[1, 0] = torch.tensor([3.0, 4.0, 0.0])
    pred[2, 0] = torch.tensor([6.0, 8.0, 0.0])
    # velocity error: joint 0 -> 5 in both steps, joint 1 -> 0; mean = 2.5
    assert abs(float(mpjve(pred, target)) - 2.5) < 1e-12
    # a constant offset has zero velocity error
    t = torch.from_numpy(_poses(10, 10))
    assert float(mpjve(t + 1.234, t)) < 1e-12
    np_ref = np.mean(np.linalg.norm(np.diff(pred.numpy(), axis=0) - np.diff(target.numpy(), axis=0), axis=-1))
    assert abs(float(mpjve(pred, target)) - np_ref) < 1e-12
    with pytest.raises(ValueError):
        mpjve(pred[:1], target[:1])


@pytest.mark.parametrize("fn", [mpjpe, p_mpjpe, n_mpjpe, mpjve])
def test_shape_mismatch_raises(fn):
    with pytest.raises(ValueError, match="shape"):
        fn(torch.zeros(4, 17, 3), torch.zeros(4, 16, 3))
