"""Detector-like 2D noise: each component's statistics match its parameters; seeded; misses flagged and filled."""

from __future__ import annotations

import numpy as np
import pytest

from poselift.data.keypoint_noise import (
    COCO_17_OKS_WEIGHTS,
    NoiseModel,
    apply_noise,
    event_onset_probability,
    person_size,
)

T, J, SIZE = 4000, 17, 400.0
OFF = dict(jitter=0.0, drift=0.0, bias=0.0, outlier_prob=0.0, miss_prob=0.0)


def _static(size=SIZE, frames=T, seed=0):
    """(frames, J, 2) a fixed pose whose bounding box is exactly ``size`` px tall (and narrower)."""
    rng = np.random.default_rng(seed)
    pose = np.column_stack((rng.uniform(450, 450 + 0.4 * size, J), rng.uniform(300, 300 + size, J)))
    pose[0, 1], pose[1, 1] = 300, 300 + size
    return np.repeat(pose[None], frames, axis=0)


def _only(**kw) -> NoiseModel:
    return NoiseModel(**{**OFF, **kw})


def test_person_size_is_the_larger_bounding_box_side():
    kps = _static(250.0, 3)
    np.testing.assert_allclose(person_size(kps), 250.0)
    lying = kps[..., ::-1]  # transposed: width is now the larger side
    np.testing.assert_allclose(person_size(lying), 250.0)
    np.testing.assert_allclose(person_size(np.zeros((2, 3, 2)), floor=10.0), 10.0)


def test_jitter_std_matches_and_scales_with_person_size():
    for size in (200.0, 500.0):
        clean = _static(size)
        noisy, conf = apply_noise(clean, _only(jitter=0.01), 1)
        err = noisy - clean
        assert err.std() == pytest.approx(0.01 * size, rel=0.1)
        assert abs(err.mean()) < 0.05 * err.std()
        assert np.all(conf == 1)
        lag1 = np.corrcoef(err[1:].ravel(), err[:-1].ravel())[0, 1]
        assert abs(lag1) < 0.05, "jitter should be white"


def test_drift_is_smooth_with_the_requested_std():
    clean = _static()
    noisy, _ = apply_noise(clean, _only(drift=0.02, drift_timescale_s=0.2), 2, fps=50)
    err = noisy - clean
    assert err.std() == pytest.approx(0.02 * SIZE, rel=0.1)
    lag1 = np.corrcoef(err[1:].ravel(), err[:-1].ravel())[0, 1]
    assert lag1 > 0.95, "drift should be temporally correlated"
    # Gaussian kernel of sigma s frames: the output's autocorrelation at lag k is exp(-k^2 / (4 s^2)).
    lag10 = np.corrcoef(err[10:].ravel(), err[:-10].ravel())[0, 1]
    assert lag10 == pytest.approx(np.exp(-100 / (4 * 10.0**2)), abs=0.1)


def test_bias_is_constant_per_joint_with_the_requested_std():
    clean = _static(frames=50)
    offsets = []
    for seed in range(60):
        noisy, _ = apply_noise(clean, _only(bias=0.015), seed)
        err = noisy - clean
        np.testing.assert_allclose(err, np.broadcast_to(err[0], err.shape), atol=1e-3)  # constant over time
        offsets.append(err[0])
    offsets = np.asarray(offsets)
    assert offsets.std() == pytest.approx(0.015 * SIZE, rel=0.1)
    assert np.abs(offsets[0] - offsets[1]).max() > 0.1, "each sequence draws its own bias"


def test_joint_weights_scale_errors_per_joint():
    clean = _static()
    noisy, _ = apply_noise(clean, _only(jitter=0.01, joint_weights=COCO_17_OKS_WEIGHTS), 3)
    std = (noisy - clean).std(axis=(0, 2))
    np.testing.assert_allclose(std, 0.01 * SIZE * np.asarray(COCO_17_OKS_WEIGHTS), rtol=0.1)
    assert np.mean(COCO_17_OKS_WEIGHTS) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="joint_weights has 17 values for 5 joints"):
        apply_noise(clean[:, :5], _only(jitter=0.01, joint_weights=COCO_17_OKS_WEIGHTS), 0)


def test_outlier_rate_duration_and_distance():
    model = _only(outlier_prob=0.02, outlier_frames=(1, 4), outlier_distance=(0.1, 0.3))
    clean = _static(frames=10000)
    noisy, conf = apply_noise(clean, model, 4)
    dist = np.linalg.norm(noisy - clean, axis=-1)
    hit = dist > 1e-3
    assert hit.mean() == pytest.approx(0.02, rel=0.15)
    assert dist[hit].min() >= 0.1 * SIZE - 1e-3 and dist.max() <= 0.3 * SIZE + 1e-3
    assert np.all(conf == 1), "outliers are not flagged: a detector does not know"
    # Events last several frames: an outlier frame is usually followed by another one.
    assert (hit[1:] & hit[:-1]).sum() / hit.sum() > 0.4


def test_missed_joints_rate_flag_and_interpolation():
    # A pose moving on a straight line at constant speed: linear interpolation restores it exactly.
    frames = 10000
    clean = _static(frames=frames) + np.linspace(0, 300, frames)[:, None, None] * np.array([1.0, 0.2])
    model = _only(miss_prob=0.05, miss_frames=(1, 6))
    noisy, conf = apply_noise(clean, model, 5)
    missed = conf == 0
    assert set(np.unique(conf)) == {0.0, 1.0} and conf.dtype == np.float32
    assert missed.mean() == pytest.approx(0.05, rel=0.15)
    assert np.isfinite(noisy).all()
    np.testing.assert_allclose(noisy, clean, atol=2e-2)  # filled by interpolation along the line


def test_missed_joints_hold_the_last_valid_value():
    clean = _static(frames=3000) + np.arange(3000)[:, None, None] * 0.5
    noisy, conf = apply_noise(clean, _only(miss_prob=0.05, miss_frames=(2, 5), fill="hold"), 6)
    missed = conf == 0
    assert missed.any()
    for t, j in zip(*np.nonzero(missed)):
        valid_before = np.nonzero(~missed[:t, j])[0]
        source = valid_before[-1] if valid_before.size else np.nonzero(~missed[:, j])[0][0]
        np.testing.assert_allclose(noisy[t, j], clean[source, j], atol=1e-3)


def test_seeded_and_components_have_their_own_streams():
    clean = _static(frames=300)
    a = apply_noise(clean, NoiseModel(), 11)
    b = apply_noise(clean, NoiseModel(), np.random.default_rng(11))
    c = apply_noise(clean, NoiseModel(), 12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.abs(a[0] - c[0]).max() > 1.0
    # Without outliers and misses, the jitter/drift/bias draws are the same ones.
    smooth = apply_noise(clean, NoiseModel(outlier_prob=0, miss_prob=0), 11)[0]
    unaffected = (a[1] == 1) & (np.linalg.norm(a[0] - smooth, axis=-1) < 1e-3)
    assert unaffected.mean() > 0.9


def test_defaults_are_a_few_percent_of_person_height():
    clean = _static(frames=5000)
    noisy, conf = apply_noise(clean, NoiseModel(), 0)
    err = np.linalg.norm(noisy - clean, axis=-1) / SIZE
    assert 0.01 < np.median(err) < 0.03
    assert 0.002 < (conf == 0).mean() < 0.03


def test_clipped_to_the_image_and_input_checks():
    clean = _static(frames=500)
    clean[:, 0] = [2.0, 3.0]  # a joint at the image corner
    noisy, _ = apply_noise(clean, NoiseModel(jitter=0.05), 0, image_size=(1000, 1000))
    assert noisy.min() >= 0 and noisy.max() <= 1000
    with pytest.raises(ValueError, match=r"\(T, J, 2\)"):
        apply_noise(np.zeros((10, 17, 3)), NoiseModel(), 0)
    with pytest.raises(ValueError, match="NaN"):
        apply_noise(np.full((10, 17, 2), np.nan), NoiseModel(), 0)
    with pytest.raises(ValueError, match="outlier_prob"):
        NoiseModel(outlier_prob=1.5)
    with pytest.raises(ValueError, match="fill"):
        NoiseModel(fill="zeros")


def test_event_onset_probability():
    assert event_onset_probability(0.0, (1, 5)) == 0.0
    assert event_onset_probability(0.1, (1, 1)) == pytest.approx(0.1)
    # Fixed duration 3: uncovered = (1 - q)^3.
    q = event_onset_probability(0.2, (3, 3))
    assert 1 - (1 - q) ** 3 == pytest.approx(0.2)
