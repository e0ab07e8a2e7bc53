"""Pictures of fitted priors, to see at a glance what the losses will reward.

``plot_ratio_priors``: one panel per bone ratio, the fitted Gaussian's density
over the fitting ratios' histogram. ``plot_free_bone_priors``: one panel per
free bone, the log-density of its orientation over the whole sphere as an
equirectangular map (azimuth atan2(y, x) across, elevation asin(z) up, in the
bone's local frame), optionally with the fitting vectors dotted on top. Both
write PNGs atomically with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poselift.atomic import atomic_write
from poselift.priors.bone_ratios import RATIO_NAMES
from poselift.priors.free_bones import FREE_BONE_NAMES
from poselift.priors.model import PosePriors

LOG_DENSITY_RANGE = 12.0  # colour scale spans the top 12 nats of each panel's density
_MAX_DOTS = 2000


def _figure(rows: int, cols: int, size: tuple[float, float]):
    # A bare Figure renders through Agg without touching pyplot's global backend state.
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _save(fig, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))


def plot_ratio_priors(priors: PosePriors, path: str | Path, samples: np.ndarray | None = None) -> Path:
    """Per-ratio Gaussian density curves (3 x 5 panels), over a histogram of ``samples`` (N, 15) if given."""
    fig, axes = _figure(3, 5, (17, 9))
    for r, ax in enumerate(axes.flat):
        mu, sd = float(priors.ratio_mean[r]), float(priors.ratio_std[r])
        lo, hi = mu - 5 * sd, mu + 5 * sd
        if samples is not None:
            col = np.asarray(samples)[:, r]
            col = col[np.isfinite(col)]
            if len(col):
                lo, hi = min(lo, float(np.percentile(col, 0.1))), max(hi, float(np.percentile(col, 99.9)))
                ax.hist(col, bins=60, range=(lo, hi), density=True, color="0.75", label="fitting ratios")
        x = np.linspace(lo, hi, 400)
        ax.plot(x, np.exp(priors.ratio_log_likelihood(x[:, None].repeat(15, 1))[:, r]), color="C0", label="prior")
        ax.set_title(f"{RATIO_NAMES[r]}\nmean {mu:.3f}, std {sd:.3f}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"BPC bone-ratio priors ({priors.meta.get('frames', '?')} frames, "
                 f"length jitter {priors.meta.get('jitter', '?')})")
    return _save(fig, path)


def _sphere_grid(n_az: int = 180, n_el: int = 90) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    az = np.linspace(-np.pi, np.pi, n_az)
    el = np.linspace(-np.pi / 2, np.pi / 2, n_el)
    a, e = np.meshgrid(az, el)
    pts = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1)  # (n_el, n_az, 3)
    return az, el, pts


def plot_free_bone_priors(priors: PosePriors, path: str | Path, vectors: np.ndarray | None = None) -> Path:
    """Per free bone (4 x 4 panels), the log-density of its unit vector over the sphere.

    ``vectors``: optional (N, 16, 3) samples in the same convention as the
    priors' densities (mirrored left bones when ``priors.group_mirrored``; what
    :func:`poselift.priors.fit.fit_priors` returns with ``return_samples``).
    """
    import matplotlib.cm as cm

    fig, axes = _figure(4, 4, (18, 11))
    az, el, pts = _sphere_grid()
    # Evaluate each grid point as every bone's vector at once. The model mirrors left bones'
    # inputs when grouped, so feed it the un-mirrored grid for them: the map is then drawn in
    # the density's own (right-side) convention, like the dots.
    grid = np.repeat(pts[:, :, None, :], len(FREE_BONE_NAMES), axis=2)  # (n_el, n_az, 16, 3)
    if priors.group_mirrored:
        from poselift.priors.free_bones import mirror_free_bone_vectors

        grid = mirror_free_bone_vectors(grid)
    logp = priors.free_bone_log_likelihood(grid)  # (n_el, n_az, 16)
    rng = np.random.default_rng(0)
    for j, ax in enumerate(axes.flat):
        top = float(logp[..., j].max())
        img = ax.imshow(logp[..., j], origin="lower", extent=(-180, 180, -90, 90), aspect="auto",
                        vmin=top - LOG_DENSITY_RANGE, vmax=top, cmap=cm.viridis)
        if vectors is not None:
            v = np.asarray(vectors)[:, j]
            v = v[np.linalg.norm(v, axis=1) > 0.5]
            if len(v) > _MAX_DOTS:
                v = v[rng.choice(len(v), _MAX_DOTS, replace=False)]
            ax.scatter(np.degrees(np.arctan2(v[:, 1], v[:, 0])), np.degrees(np.arcsin(np.clip(v[:, 2], -1, 1))),
                       s=1, c="white", alpha=0.3, linewidths=0)
        sided = FREE_BONE_NAMES[j].startswith(("right_", "left_"))
        ax.set_title(FREE_BONE_NAMES[j] + (" (R+L, right convention)" if priors.group_mirrored and sided else ""),
                     fontsize=9)
        ax.set_xticks([-180, -90, 0, 90, 180])
        ax.set_yticks([-90, 0, 90])
        ax.tick_params(labelsize=7)
        fig.colorbar(img, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    fig.suptitle("JMC free-bone orientation priors: log-density over azimuth atan2(y, x) (deg, across) "
                 "and elevation asin(z) (deg, up) in each bone's frame")
    return _save(fig, path)
