"""Detector-like errors for clean 2D keypoints, so lifters trained on mocap see what a real 2D detector gives.

A lifter trained on exact projections of mocap breaks down on real detections
(VideoPose3D trains on CPN/Detectron keypoints for that reason). Real detector
errors are not white noise; :func:`apply_noise` adds, in pixels and scaled by
the person's size in the image (errors grow with the person's image size):

* **jitter**: white Gaussian noise, independent per frame, joint and coordinate;
* **drift**: temporally correlated error: white noise low-pass filtered with a
  Gaussian kernel (``drift_timescale_s``), normalised to the requested std, so
  a joint wanders smoothly over a few frames (blur, loose clothing);
* **bias**: a constant offset per joint for the whole sequence (the detector's
  idea of "hip" or "shoulder" differs from the mocap joint centre);
* **outliers**: a joint jumps to a random nearby location (a neighbouring limb,
  the background) for one or a few frames;
* **misses**: a joint is not detected for one or several frames (occlusion); it
  gets confidence 0 and its coordinates are filled from the neighbouring valid
  frames (linear interpolation, or the last valid value as a causal tracker
  holds it).

Person size ``s`` (per frame) is the larger side of the clean keypoints'
bounding box: the bounding-box height for an upright person, robust to lying
or cartwheeling poses. Magnitudes are fractions of ``s``.

Defaults, for a person ~400 px tall in a 1000 px Human3.6M frame: jitter
0.005 s (2 px), drift 0.008 s (3 px, ~0.2 s correlation time), bias 0.008 s
(3 px) per coordinate. Together ~1.5% of the person's height mean 2D error
(~6 px), plus 0.5% outlier joint-frames and 1% missed joint-frames: the order
of the errors COCO-trained detectors (CPN, Detectron, HRNet) make on
Human3.6M, a few percent of the person's height at most, with occasional
gross errors. With ``joint_weights=COCO_17_OKS_WEIGHTS`` errors scale per
joint like COCO's keypoint annotation spread (OKS sigmas): face points are
precise, hips the least precise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["COCO_17_OKS_SIGMAS", "COCO_17_OKS_WEIGHTS", "NoiseModel", "apply_noise", "event_onset_probability",
           "person_size"]

#: COCO's per-keypoint OKS sigmas (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
COCO_17_OKS_SIGMAS = (0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
                      0.107, 0.107, 0.087, 0.087, 0.089, 0.089)
#: The sigmas normalised to mean 1: per-joint error scales for COCO-17 keypoints.
COCO_17_OKS_WEIGHTS = tuple(float(s) for s in np.asarray(COCO_17_OKS_SIGMAS) / np.mean(COCO_17_OKS_SIGMAS))


@dataclass(frozen=True)
class NoiseModel:
    """Detector error magnitudes; lengths are fractions of the person's size in the image (see module doc)."""

    jitter: float = 0.005  # std per coordinate of white per-frame noise
    drift: float = 0.008  # std per coordinate of the smooth, temporally correlated error
    drift_timescale_s: float = 0.2  # Gaussian low-pass kernel sigma, seconds
    bias: float = 0.008  # std per coordinate of the per-joint constant offset (one draw per sequence)
    outlier_prob: float = 0.005  # expected fraction of joint-frames displaced by an outlier
    outlier_frames: tuple[int, int] = (1, 5)  # an outlier lasts this many frames (uniform, inclusive)
    outlier_distance: tuple[float, float] = (0.05, 0.3)  # outlier displacement (uniform, random direction)
    miss_prob: float = 0.01  # expected fraction of joint-frames not detected
    miss_frames: tuple[int, int] = (1, 15)  # a miss lasts this many frames (uniform, inclusive)
    fill: str = "interpolate"  # missed joints: "interpolate" between valid frames, or "hold" the last valid value
    joint_weights: tuple[float, ...] | None = None  # per-joint scale of jitter, drift and bias (None: all 1)
    min_person_size_px: float = 10.0  # floor for the person size (a collapsed bounding box)

    def __post_init__(self) -> None:
        problems = []
        for name in ("jitter", "drift", "bias", "drift_timescale_s", "min_person_size_px"):
            if not getattr(self, name) >= 0:
                problems.append(f"{name} must be >= 0")
        for name in ("outlier_prob", "miss_prob"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be in [0, 1]")
        for name in ("outlier_frames", "miss_frames"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                problems.append(f"{name} must be (min, max) with 1 <= min <= max")
        lo, hi = self.outlier_distance
        if not 0 <= lo <= hi:
            problems.append("outlier_distance must be (min, max) with 0 <= min <= max")
        if self.fill not in ("interpolate", "hold"):
            problems.append(f"fill must be 'interpolate' or 'hold', got {self.fill!r}")
        if self.joint_weights is not None and any(not w >= 0 for w in self.joint_weights):
            problems.append("joint_weights must be >= 0")
        if problems:
            raise ValueError("invalid NoiseModel: " + "; ".join(problems))


def person_size(keypoints: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """(T,) larger side of each frame's keypoint bounding box, pixels (at least ``floor``)."""
    extent = keypoints.max(axis=1) - keypoints.min(axis=1)  # (T, 2)
    return np.maximum(extent.max(axis=-1), floor)


def event_onset_probability(fraction: float, frames: tuple[int, int]) -> float:
    """Per-frame onset probability of events lasting ``frames`` (uniform) that cover ``fraction`` of all frames.

    Events start independently; a frame is covered when an event started k
    frames before lasts more than k frames, so the uncovered fraction is
    ``prod_k (1 - q P(d > k))``; solved for q by bisection.
    """
    if fraction <= 0:
        return 0.0
    if fraction >= 1:
        return 1.0
    lo_d, hi_d = frames
    durations = np.arange(lo_d, hi_d + 1)
    longer = np.array([(durations > k).mean() for k in range(hi_d)])  # P(d > k), k = 0..hi_d-1
    lo, hi = 0.0, 1.0
    for _ in range(60):
        q = (lo + hi) / 2
        if 1 - np.prod(1 - q * longer) < fraction:
            lo = q
        else:
            hi = q
    return (lo + hi) / 2


def _events(rng: np.random.Generator, shape: tuple[int, int], fraction: float, frames: tuple[int, int],
            payload: np.ndarray | None = None):
    """(T, J) mask of frames covered by random events, and per frame the payload of the most recent covering event.

    Onsets are drawn from ``max_frames - 1`` frames before the sequence on, so
    the covered fraction is the same at the start as anywhere else.
    """
    t, j = shape
    longest = frames[1]
    ext = t + longest - 1
    q = event_onset_probability(fraction, frames)
    onset = rng.random((ext, j)) < q
    duration = rng.integers(frames[0], frames[1] + 1, size=(ext, j))
    covered = np.zeros((t, j), dtype=bool)
    carried = None if payload is None else np.zeros((t, j) + payload.shape[2:], dtype=payload.dtype)
    for k in range(longest - 1, -1, -1):  # oldest first: a more recent event overwrites the payload
        src = slice(longest - 1 - k, longest - 1 - k + t)  # onset k frames before each frame
        sel = onset[src] & (duration[src] > k)
        covered |= sel
        if carried is not None:
            carried[sel] = payload[src][sel]
    return covered, carried


def _low_pass_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_frames: float) -> np.ndarray:
    """Stationary Gaussian noise of unit variance, correlated along axis 0 by a Gaussian kernel (FFT convolution)."""
    t = shape[0]
    if sigma_frames < 0.3:  # the kernel is a delta: plain white noise
        return rng.standard_normal(shape)
    radius = int(np.ceil(4 * sigma_frames))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    kernel /= np.sqrt(np.sum(kernel**2))  # unit output variance for unit-variance white input
    white = rng.standard_normal((t + 2 * radius,) + tuple(shape[1:]))
    n = white.shape[0] + kernel.size - 1
    spectrum = np.fft.rfft(white, n=n, axis=0) * np.fft.rfft(kernel, n=n).reshape((-1,) + (1,) * (len(shape) - 1))
    full = np.fft.irfft(spectrum, n=n, axis=0)
    return full[2 * radius: 2 * radius + t]  # only outputs whose window lies inside the white noise


def _fill_missing(x: np.ndarray, valid: np.ndarray, mode: str) -> np.ndarray:
    """Replace invalid frames of (T, J, 2) ``x`` per joint: linear interpolation or hold, vectorised over joints.

    Before the first valid frame the first valid value is used (the tracker has
    nothing earlier); joints never valid keep their values.
    """
    t = x.shape[0]
    frame = np.arange(t)[:, None]
    prev = np.maximum.accumulate(np.where(valid, frame, -1), axis=0)  # last valid frame <= t, or -1
    nxt = np.minimum.accumulate(np.where(valid, frame, t)[::-1], axis=0)[::-1]  # next valid frame >= t, or t
    has_prev, has_next = prev >= 0, nxt < t
    joint = np.arange(x.shape[1])[None, :]
    p = np.where(has_prev, prev, np.where(has_next, nxt, frame))  # fall back to the next valid, then to itself
    n = np.where(has_next, nxt, p)
    xp, xn = x[p, joint], x[n, joint]
    if mode == "hold":
        return xp
    span = np.where((n > p) & has_prev, n - p, 1)
    w = np.where(has_prev & has_next & (n > p), (frame - p) / span, 0.0)[..., None]
    return xp + w * (xn - xp)


def apply_noise(keypoints, model: NoiseModel | None = None, rng: np.random.Generator | int | None = None, *,
                fps: float = 50.0, image_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like errors on clean 2D keypoints.

    Args:
        keypoints: (T, J, 2) clean pixel coordinates of one sequence (one camera view).
        model: error magnitudes (default :class:`NoiseModel`).
        rng: numpy Generator or seed; the same seed gives the same noise. Each
            error component has its own stream, so turning one off leaves the
            others' draws unchanged.
        fps: frame rate (turns ``drift_timescale_s`` into frames).
        image_size: (width, height): noisy points are clipped into the image, as
            a detector's output is.
    Returns:
        noisy (T, J, 2) float32 pixels (missed joints filled), and confidence
        (T, J) float32: 1 where the joint was detected, 0 where it was missed.
        Outliers keep confidence 1: a detector does not know it is wrong.
    """
    model = model or NoiseModel()
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    clean = np.asarray(keypoints, dtype=np.float64)
    if clean.ndim != 3 or clean.shape[-1] != 2 or clean.shape[0] == 0 or clean.shape[1] == 0:
        raise ValueError(f"keypoints must be a (T, J, 2) array with T, J >= 1, got shape {clean.shape}")
    if not np.isfinite(clean).all():
        raise ValueError("keypoints contain NaN or infinite values")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    t, j, _ = clean.shape
    weights = np.ones(j) if model.joint_weights is None else np.asarray(model.joint_weights, dtype=np.float64)
    if weights.shape != (j,):
        raise ValueError(f"NoiseModel.joint_weights has {weights.size} values for {j} joints")
    r_bias, r_jitter, r_drift, r_outlier, r_miss = rng.spawn(5)

    size = person_size(clean, model.min_person_size_px)[:, None, None]  # (T, 1, 1)
    w = weights[None, :, None]
    offset = model.bias * r_bias.standard_normal((1, j, 2))
    offset = offset + model.jitter * r_jitter.standard_normal((t, j, 2))
    if model.drift > 0:
        offset = offset + model.drift * _low_pass_noise(r_drift, (t, j, 2), model.drift_timescale_s * fps)
    noisy = clean + size * w * offset

    if model.outlier_prob > 0:
        ext = t + model.outlier_frames[1] - 1
        angle = r_outlier.uniform(0, 2 * np.pi, (ext, j))
        radius = r_outlier.uniform(*model.outlier_distance, (ext, j))
        jumps = np.stack((np.cos(angle), np.sin(angle)), axis=-1) * radius[..., None]
        hit, jump = _events(r_outlier, (t, j), model.outlier_prob, model.outlier_frames, jumps)
        noisy = noisy + np.where(hit[..., None], jump * size, 0.0)

    if image_size is not None:
        noisy = np.clip(noisy, 0.0, np.asarray(image_size, dtype=np.float64))

    confidence = np.ones((t, j), dtype=np.float32)
    if model.miss_prob > 0:
        missed, _ = _events(r_miss, (t, j), model.miss_prob, model.miss_frames)
        confidence[missed] = 0.0
        noisy = _fill_missing(noisy, ~missed, model.fill)
    return noisy.astype(np.float32), confidence
