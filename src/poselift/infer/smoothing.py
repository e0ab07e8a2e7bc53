"""Temporal smoothing of keypoint sequences: offline (Gaussian) and causal (One Euro).

The temporal lifter already smooths the pose; what jitters is what is solved per
frame (the root trajectory, depth above all) and, for single-frame lifters, the
pose itself. Offline, a Gaussian kernel with edge reflection has no lag. In a
stream only the past is known: the One Euro filter (Casiez et al., CHI 2012)
adapts its cut-off to speed, so slow motion is smoothed hard and fast motion
lags little.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["OneEuroFilter", "gaussian_smooth", "one_euro_smooth"]


def gaussian_smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Smooth (T, ...) along time with a Gaussian of ``sigma_frames`` (0: unchanged). Edges are reflected."""
    x = np.asarray(x)
    if sigma_frames <= 0 or x.shape[0] < 2:
        return x.copy()
    radius = max(1, int(math.ceil(3 * sigma_frames)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    k /= k.sum()
    flat = x.reshape(x.shape[0], -1).astype(np.float64)
    padded = np.pad(flat, ((radius, radius), (0, 0)), mode="reflect" if x.shape[0] > radius else "edge")
    out = np.stack([np.convolve(padded[:, i], k, mode="valid") for i in range(flat.shape[1])], axis=1)
    return out.reshape(x.shape).astype(x.dtype)


class OneEuroFilter:
    """Causal One Euro filter over arrays of any shape, fed one frame at a time.

    Args:
        fps: frame rate. min_cutoff: cut-off in Hz at rest (lower: smoother).
        beta: how fast the cut-off rises with speed (higher: less lag).
        d_cutoff: cut-off for the speed estimate, Hz.
    """

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 0.3, d_cutoff: float = 1.0) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.dt, self.min_cutoff, self.beta, self.d_cutoff = 1.0 / fps, min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / self.dt)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) / self.dt
        a_d = self._alpha(self.d_cutoff)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self._dx))
        self._x = a * x + (1 - a) * self._x
        return self._x.copy()


def one_euro_smooth(x: np.ndarray, fps: float, **kwargs) -> np.ndarray:
    """Run :class:`OneEuroFilter` over (T, ...) frames in order (causal)."""
    f = OneEuroFilter(fps, **kwargs)
    return np.stack([f(frame) for frame in np.asarray(x)]).astype(np.asarray(x).dtype)
