"""Prior fitting (BPC ratios, JMC Gaussians and EM mixtures), likelihoods, the file format and the CLI."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch
from model_helpers import h36m_pose_without_legs

from poselift.errors import DataFormatError
from poselift.priors.bone_ratios import BONE_NAMES, BONE_RATIOS, BONES, bone_lengths
from poselift.priors.fit import fit_gaussian_mixture, fit_priors, fit_ratio_gaussians
from poselift.priors.free_bones import FREE_BONE_NAMES, free_bone_frames, free_bone_vectors, mirror_free_bone_vectors
from poselift.priors.model import PosePriors
from poselift.skeleton import H36M_17

J = {n: i for i, n in enumerate(H36M_17.joint_names)}
FB = {n: i for i, n in enumerate(FREE_BONE_NAMES)}
RATIO = {r[0]: i for i, r in enumerate(BONE_RATIOS)}


def base_pose() -> np.ndarray:
    """Facing +z, y up, right side at -x, metres."""
    p = h36m_pose_without_legs()
    for side, sx in (("right", -1.0), ("left", 1.0)):
        p[J[f"{side}_knee"]] = (0.1 * sx, 0.55, 0.05)
        p[J[f"{side}_ankle"]] = (0.1 * sx, 0.12, -0.05)
    return p


def pose_with_lengths(lengths: np.ndarray) -> np.ndarray:
    """(N, 16) bone lengths -> (N, 17, 3) poses with base_pose()'s bone directions."""
    base = base_pose()
    out = np.zeros((len(lengths), 17, 3))
    placed = {J["pelvis"]}
    while len(placed) < 17:
        for b, (_, child, parent) in enumerate(BONES):
            if parent in placed and child not in placed:
                d = base[child] - base[parent]
                out[:, child] = out[:, parent] + d / np.linalg.norm(d) * lengths[:, b:b + 1]
                placed.add(child)
    return out


def concentrated_unit_vectors(mu: np.ndarray, sigmas: tuple[float, float], n: int, rng) -> np.ndarray:
    """normalize(mu + s1 g1 e1 + s2 g2 e2), e1, e2 an orthonormal basis of mu's tangent plane."""
    e1 = np.cross(mu, [0.0, 0.0, 1.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(mu, e1)
    g = rng.normal(size=(n, 2))
    v = mu + sigmas[0] * g[:, :1] * e1 + sigmas[1] * g[:, 1:] * e2
    return v / np.linalg.norm(v, axis=1, keepdims=True), e1, e2


# ---- BPC ---------------------------------------------------------------------------------------

def test_ratio_fit_recovers_known_gaussian_without_jitter():
    rng = np.random.default_rng(0)
    n = 2000
    lengths = np.tile(bone_lengths(base_pose()), (n, 1))
    q = rng.normal(0.9, 0.03, size=n)  # shin = q * thigh, so right_leg/right_thigh ~ N(0.9, 0.03) exactly
    lengths[:, BONE_NAMES.index("right_leg")] = q * lengths[:, BONE_NAMES.index("right_thigh")]
    priors = fit_priors(pose_with_lengths(lengths), length_jitter=0.0)
    r = RATIO["right_leg/right_thigh"]
    # 4 standard errors: mean 0.03/sqrt(n), std ~ 0.03/sqrt(2n).
    assert priors.ratio_mean[r] == pytest.approx(0.9, abs=4 * 0.03 / math.sqrt(n))
    assert priors.ratio_std[r] == pytest.approx(0.03, abs=4 * 0.03 / math.sqrt(2 * n))
    # A ratio that never varies gets the std floor, not zero.
    assert priors.ratio_std[RATIO["right_hip/right_thigh"]] == pytest.approx(1e-4)


def test_ratio_jitter_widens_each_ratio_as_derived():
    # Fixed lengths, factors f ~ N(1, s) per bone and frame: r = r0 fa / fb has
    # E[r] ~ r0 (1 + s^2 + 3 s^4) and std ~ r0 s sqrt(2 + 11 s^2) (delta method to 4th order).
    s, n = 0.05, 20000
    base = bone_lengths(base_pose())
    mean, std, ratios = fit_ratio_gaussians(np.tile(base, (n, 1)), s, np.random.default_rng(1))
    r0 = base[[b for _, b, _ in BONE_RATIOS]] / base[[b for _, _, b in BONE_RATIOS]]
    np.testing.assert_allclose(mean, r0 * (1 + s**2 + 3 * s**4), rtol=4 * 0.0712 / math.sqrt(n))
    np.testing.assert_allclose(std, r0 * s * math.sqrt(2 + 11 * s**2), rtol=0.03)
    assert ratios.shape == (n, 15)


def test_ratio_log_likelihood_is_gaussian_and_differentiable(tmp_path):
    priors = fit_priors(pose_with_lengths(np.tile(bone_lengths(base_pose()), (50, 1))), length_jitter=0.05)
    x = torch.tensor(priors.ratio_mean + 2 * priors.ratio_std, requires_grad=True)
    ll = priors.ratio_log_likelihood(x)
    expected = -2.0 - np.log(priors.ratio_std) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(ll.detach().numpy(), expected, rtol=1e-12)
    ll.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -2.0 / priors.ratio_std, rtol=1e-12)


# ---- JMC ---------------------------------------------------------------------------------------

def test_free_bone_fit_recovers_a_known_concentrated_gaussian_grouped():
    rng = np.random.default_rng(2)
    n = 3000
    mu = np.array([0.3, -0.8, 0.5]) / np.linalg.norm([0.3, -0.8, 0.5])
    s1, s2 = 0.06, 0.03
    v_right, e1, e2 = concentrated_unit_vectors(mu, (s1, s2), n, rng)
    v_left, _, _ = concentrated_unit_vectors(mu, (s1, s2), n, rng)
    # Build poses whose forearm vectors are exactly these: wrist = elbow + 0.25 R^T v (R depends not on the wrist).
    poses = np.tile(base_pose(), (n, 1, 1))
    frames = free_bone_frames(torch.from_numpy(poses)).numpy()
    for name, v in (("right_forearm", v_right), ("left_forearm", mirror_free_bone_vectors(
            np.repeat(v_left[:, None], 16, axis=1))[:, FB["left_forearm"]])):
        b = FB[name]
        elbow = poses[:, J[name.replace("forearm", "elbow")]]
        poses[:, J[name.replace("forearm", "wrist")]] = elbow + 0.25 * np.einsum("nji,nj->ni", frames[:, b], v)
    reg = 1e-4
    priors = fit_priors(poses, cov_reg=reg)
    rf, lf = FB["right_forearm"], FB["left_forearm"]
    np.testing.assert_array_equal(priors.fb_means[lf], priors.fb_means[rf])  # one shared density
    m, c = priors.fb_means[rf, 0], priors.fb_covs[rf, 0]
    # E[v] = mu E[1/sqrt(1+|t|^2)] ~ mu (1 - (s1^2+s2^2)/2); 5 standard errors s1/sqrt(2n) per component.
    np.testing.assert_allclose(m, mu * (1 - (s1**2 + s2**2) / 2), atol=5 * s1 / math.sqrt(2 * n))
    # Tangent variances ~ s^2 (1 - 3 s^2 - s_other^2) + reg; 10% covers 4 standard errors sqrt(2/2n) + bias.
    assert e1 @ c @ e1 == pytest.approx(s1**2 * (1 - 3 * s1**2 - s2**2) + reg, rel=0.1)
    assert e2 @ c @ e2 == pytest.approx(s2**2 * (1 - 3 * s2**2 - s1**2) + reg, rel=0.1)
    assert abs(e1 @ c @ e2) < 0.1 * s1 * s2
    assert mu @ c @ mu < reg + 2e-5  # radial variance ~ (s1^4 + s2^4)/2: the data lie on the sphere
    # The density scores the same vectors the same from either side.
    vecs = free_bone_vectors(poses[:5])
    ll = priors.free_bone_log_likelihood(vecs)
    assert np.all(np.isfinite(ll)) and ll.shape == (5, 16)


def test_em_recovers_two_well_separated_clusters():
    rng = np.random.default_rng(3)
    n = 3000
    a, _, _ = concentrated_unit_vectors(np.array([1.0, 0.0, 0.0]), (0.05, 0.05), int(0.3 * n), rng)
    b, _, _ = concentrated_unit_vectors(np.array([0.0, -0.6, 0.8]), (0.08, 0.04), n - len(a), rng)
    x = rng.permutation(np.concatenate([a, b]))
    w, mu, cov = fit_gaussian_mixture(x, 2, cov_reg=1e-6, seed=0)
    order = np.argsort(w)
    w, mu, cov = w[order], mu[order], cov[order]
    # Well separated, so EM's responsibilities are ~0/1 and its answer is the per-cluster sample statistics.
    np.testing.assert_allclose(w, [0.3, 0.7], atol=1e-6)
    np.testing.assert_allclose(mu[0], a.mean(0), atol=1e-8)
    np.testing.assert_allclose(mu[1], b.mean(0), atol=1e-8)
    np.testing.assert_allclose(cov[0], np.cov(a, rowvar=False, bias=True) + 1e-6 * np.eye(3), atol=1e-8)
    np.testing.assert_allclose(cov[1], np.cov(b, rowvar=False, bias=True) + 1e-6 * np.eye(3), atol=1e-8)


def test_mixture_log_likelihood_matches_a_hand_computed_density():
    rng = np.random.default_rng(4)
    k = 2
    weights = np.tile([0.25, 0.75], (16, 1))
    means = rng.normal(size=(16, k, 3))
    a = rng.normal(size=(16, k, 3, 3))
    covs = a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(3)
    priors = PosePriors(ratio_mean=np.ones(15), ratio_std=np.ones(15), fb_weights=weights, fb_means=means,
                        fb_covs=covs, bone_length_mean=np.ones(16), meta={"group_mirrored": True})
    x = rng.normal(size=(4, 16, 3))
    got = priors.free_bone_log_likelihood(torch.from_numpy(x)).numpy()
    xm = mirror_free_bone_vectors(x)  # grouped priors mirror the left bones before scoring
    for i in range(4):
        for j in range(16):
            dens = 0.0
            for c in range(k):
                d = xm[i, j] - means[j, c]
                dens += weights[j, c] * math.exp(-0.5 * d @ np.linalg.inv(covs[j, c]) @ d) / math.sqrt(
                    (2 * math.pi) ** 3 * np.linalg.det(covs[j, c]))
            assert got[i, j] == pytest.approx(math.log(dens), rel=1e-10)


def test_free_bone_log_likelihood_gradients_finite_on_degenerate_poses():
    priors = fit_priors(np.tile(base_pose(), (20, 1, 1)) + np.random.default_rng(5).normal(0, 0.01, (20, 17, 3)))
    poses = torch.zeros(2, 17, 3, dtype=torch.float32)
    poses[1] = torch.from_numpy(base_pose()).float()
    poses[1, J["right_knee"]] = poses[1, J["right_hip"]]
    poses.requires_grad_(True)
    from poselift.priors.bone_ratios import bone_ratios

    loss = -(priors.free_bone_log_likelihood(free_bone_vectors(poses)).mean()
             + priors.ratio_log_likelihood(bone_ratios(poses)).mean())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(poses.grad).all()


# ---- file format -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted() -> PosePriors:
    rng = np.random.default_rng(6)
    poses = np.tile(base_pose(), (300, 1, 1)) + rng.normal(0, 0.03, (300, 17, 3))
    return fit_priors(poses, components=2, subjects=["S1"])


def test_save_load_round_trip_is_exact(fitted, tmp_path):
    path = fitted.save(tmp_path / "priors.safetensors")
    back = PosePriors.load(path)
    for name in ("ratio_mean", "ratio_std", "fb_weights", "fb_means", "fb_covs", "bone_length_mean"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fitted, name))
    assert back.meta == fitted.meta and back.meta["subjects"] == ["S1"] and back.meta["components"] == 2
    v = torch.from_numpy(free_bone_vectors(base_pose()[None]))
    assert torch.equal(back.free_bone_log_likelihood(v), fitted.free_bone_log_likelihood(v))
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header (JSON), no pickle anywhere
    assert not list(tmp_path.glob(".*.tmp"))


def test_corrupt_or_wrong_files_raise_data_format_error(fitted, tmp_path):
    from safetensors.numpy import save_file

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(DataFormatError, match="garbage.safetensors"):
        PosePriors.load(garbage)
    good = fitted.save(tmp_path / "good.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DataFormatError, match="truncated.safetensors"):
        PosePriors.load(truncated)
    other = tmp_path / "weights.safetensors"
    save_file({"w": np.zeros(3)}, str(other), metadata={"format": "pt"})
    with pytest.raises(DataFormatError, match="'format'"):
        PosePriors.load(other)
    arrays = {k: getattr(fitted, k) for k in ("ratio_mean", "ratio_std", "fb_weights", "fb_means", "fb_covs",
                                              "bone_length_mean")}
    header = {"format": "poselift.pose_priors", "version": "1", "meta": "{}"}
    missing = tmp_path / "missing.safetensors"
    save_file({k: v for k, v in arrays.items() if k != "fb_covs"}, str(missing), metadata=header)
    with pytest.raises(DataFormatError, match="missing.safetensors.*'fb_covs'"):
        PosePriors.load(missing)
    bad_cov = tmp_path / "bad_cov.safetensors"
    save_file({**arrays, "fb_covs": -arrays["fb_covs"]}, str(bad_cov), metadata=header)
    with pytest.raises(DataFormatError, match="'fb_covs'.*positive definite"):
        PosePriors.load(bad_cov)
    bad_shape = tmp_path / "bad_shape.safetensors"
    save_file({**arrays, "ratio_std": arrays["ratio_std"][:14].copy()}, str(bad_shape), metadata=header)
    with pytest.raises(DataFormatError, match="'ratio_std'.*shape"):
        PosePriors.load(bad_shape)
    bad_meta = tmp_path / "bad_meta.safetensors"
    save_file(arrays, str(bad_meta), metadata={**header, "meta": "{oops"})
    with pytest.raises(DataFormatError, match="'meta'"):
        PosePriors.load(bad_meta)


# ---- CLI and plots -----------------------------------------------------------------------------

def test_cli_fit_and_show_on_synthetic_data(tmp_path, capsys):
    from poselift.cli import priors_cmd
    from poselift.data.synthetic import SyntheticConfig, generate_synthetic_dataset
    from poselift.data.vp3d_format import load_positions_3d

    generate_synthetic_dataset(tmp_path / "data", SyntheticConfig(subjects=("S1", "S2"), seconds_per_action=0.5,
                                                                   cameras_per_subject=2), progress=False)
    parser = argparse.ArgumentParser(prog="poselift")
    priors_cmd.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "priors" / "s1.safetensors"
    args = parser.parse_args(["priors", "fit", "--data-dir", str(tmp_path / "data"), "--dataset", "synthetic",
                              "--subjects", "S1", "--out", str(out), "--components", "2", "--jitter", "0.05",
                              "--plots", str(tmp_path / "plots")])
    assert args.func(args) == 0
    positions, _ = load_positions_3d(tmp_path / "data" / "data_3d_synthetic.npz")
    frames = sum(len(a) for a in positions["S1"].values())  # one camera's copy of each action
    priors = PosePriors.load(out)
    assert priors.meta["frames"] == frames and priors.meta["subjects"] == ["S1"] and priors.components == 2
    # Camera-space poses give the same ratios as the world-space ones the file holds.
    world = np.concatenate(list(positions["S1"].values()))
    np.testing.assert_allclose(priors.bone_length_mean, bone_lengths(world.astype(np.float64)).mean(0), rtol=1e-5)
    for png in ("bone_ratio_priors.png", "free_bone_priors.png"):
        data = (tmp_path / "plots" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000
    printed = capsys.readouterr().out
    assert f"{frames} frames" in printed and "right_leg/right_thigh" in printed
    args = parser.parse_args(["priors", "show", str(out)])
    assert args.func(args) == 0
    assert "forearm (R+L)" in capsys.readouterr().out
