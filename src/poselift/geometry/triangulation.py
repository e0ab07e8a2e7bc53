"""Triangulation of 2D observations from several calibrated views.

The linear (DLT) solution stacks, for every view c that saw a point, the two
equations ``x P_c3 - P_c1 = 0`` and ``y P_c3 - P_c2 = 0`` and takes the null
vector of that (2C, 4) system by SVD. Each view's rows are multiplied by its
weight (the detector's confidence), so an unsure view pulls less and a
zero-weight view does not take part at all. With ``P = K [R | t]`` the residual
of a row is ``weight * depth * pixel error``, which keeps the algebraic error
meaningful without further normalisation (everything is float64).

2D detectors sometimes put a joint on the wrong limb or the wrong person in one
view; the DLT then drags the point towards it. :func:`triangulate_robust` drops
such views the way Pose2Sim does: while the worst reprojection error of the
views in use exceeds a threshold and more than two views remain, it removes
the view whose removal leaves the smallest worst error, and re-triangulates.

Everything is vectorised over points; views are the leading axis:
``points_2d`` (C, N, 2), ``projections`` (C, 3, 4), ``weights`` (C, N).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RobustTriangulation", "reprojection_errors", "triangulate_dlt", "triangulate_robust"]


def _check(points_2d: np.ndarray, projections: np.ndarray,
           weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pts = np.asarray(points_2d, dtype=np.float64)
    P = np.asarray(projections, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 2:
        raise ValueError(f"points_2d must be (C, N, 2), got {pts.shape}")
    if P.shape != (pts.shape[0], 3, 4):
        raise ValueError(f"projections must be ({pts.shape[0]}, 3, 4) for {pts.shape[0]} views, got {P.shape}")
    if weights is None:
        w = np.ones(pts.shape[:2])
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != pts.shape[:2]:
            raise ValueError(f"weights must be (C, N) = {pts.shape[:2]}, got {w.shape}")
    # A view with no usable 2D point (NaN) or a non-positive / NaN weight does not take part.
    w = np.where(np.isfinite(w) & (w > 0) & np.isfinite(pts).all(axis=-1), w, 0.0)
    return pts, P, w


def triangulate_dlt(points_2d: np.ndarray, projections: np.ndarray, weights: np.ndarray | None = None,
                    *, min_views: int = 2) -> np.ndarray:
    """Confidence-weighted linear triangulation of N points seen by C views.

    Args:
        points_2d: (C, N, 2) image coordinates matching ``projections``
            (undistorted pixels with ``K [R | t]``, or normalised coordinates
            with ``[R | t]``); NaN where a view has no observation.
        projections: (C, 3, 4) projection matrices.
        weights: (C, N) non-negative weights (confidences); None: all 1.
            Views with weight 0 (or NaN coordinates) are ignored exactly.
        min_views: fewer views with positive weight give NaN.

    Returns:
        (N, 3) points; NaN where fewer than ``min_views`` views took part or
        the solution lies at infinity.
    """
    pts, P, w = _check(points_2d, projections, weights)
    C, N = w.shape
    out = np.full((N, 3), np.nan)
    ok = (w > 0).sum(axis=0) >= max(min_views, 2)
    if not ok.any():
        return out
    x = np.where(w[:, ok, None] > 0, pts[:, ok], 0.0)  # (C, n, 2); zeroed where unused, no NaN in the SVD
    wk = w[:, ok]
    # Rows x * P3 - P1 and y * P3 - P2 per view, each scaled by the view's weight: (n, 2C, 4).
    rows = x[..., None] * P[:, None, 2:3, :] - P[:, None, :2, :]  # (C, n, 2, 4)
    rows = rows * wk[..., None, None]
    A = rows.transpose(1, 0, 2, 3).reshape(-1, 2 * C, 4)
    _, _, vt = np.linalg.svd(A, full_matrices=False)
    h = vt[:, -1, :]  # (n, 4) homogeneous
    with np.errstate(divide="ignore", invalid="ignore"):
        X = h[:, :3] / h[:, 3:4]
    at_infinity = np.abs(h[:, 3]) < 1e-12 * np.abs(h[:, :3]).max(axis=1)
    X[at_infinity] = np.nan
    out[ok] = X
    return out


def reprojection_errors(points_3d: np.ndarray, points_2d: np.ndarray, projections: np.ndarray) -> np.ndarray:
    """Distance between each view's observation and the projection of the 3D point.

    Args:
        points_3d: (N, 3).
        points_2d: (C, N, 2), in the units of ``projections`` (pixels for ``K [R | t]``).
        projections: (C, 3, 4).

    Returns:
        (C, N) errors; NaN where the 3D or 2D point is NaN, +inf where the point
        is behind the view (depth <= 0) so that such a view is the first to go.
    """
    X = np.asarray(points_3d, dtype=np.float64)
    pts = np.asarray(points_2d, dtype=np.float64)
    P = np.asarray(projections, dtype=np.float64)
    Xh = np.concatenate([X, np.ones((len(X), 1))], axis=1)  # (N, 4)
    proj = np.einsum("cij,nj->cni", P, Xh)  # (C, N, 3)
    depth = proj[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = proj[..., :2] / depth[..., None]
        err = np.linalg.norm(uv - pts, axis=-1)
    err = np.where(depth > 0, err, np.inf)
    err[~np.isfinite(X).all(axis=1)[None, :].repeat(len(P), axis=0)] = np.nan
    err[~np.isfinite(pts).all(axis=-1)] = np.nan
    return err


@dataclass
class RobustTriangulation:
    """What :func:`triangulate_robust` found for N points seen by C views."""

    points: np.ndarray  # (N, 3); NaN where no consistent set of >= min_views views was found
    views_used: np.ndarray  # (C, N) bool: the views the point rests on (all False where NaN)
    # (C, N) reprojection error of the final point in every observing view, rejected ones too; NaN where no point
    errors: np.ndarray

    @property
    def num_views(self) -> np.ndarray:
        """(N,) number of views each point rests on."""
        return self.views_used.sum(axis=0)

    @property
    def mean_error(self) -> np.ndarray:
        """(N,) mean reprojection error over the views used; NaN where no point."""
        e = np.where(self.views_used, self.errors, 0.0).sum(axis=0)
        n = self.num_views
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, e / np.maximum(n, 1), np.nan)


def _worst_used(errors: np.ndarray, used: np.ndarray) -> np.ndarray:
    """(N,) largest error among the used views (inf where an error is NaN, -inf where none is used)."""
    e = np.where(np.isnan(errors), np.inf, errors)
    return np.where(used, e, -np.inf).max(axis=0)


def triangulate_robust(points_2d: np.ndarray, projections: np.ndarray, weights: np.ndarray | None = None,
                       *, max_error: float = 15.0, min_views: int = 2) -> RobustTriangulation:
    """Weighted DLT that drops inconsistent views until every remaining one reprojects within ``max_error``.

    Starting from every view with positive weight, while the worst reprojection
    error of the views in use exceeds ``max_error`` and more than ``min_views``
    remain, the view whose removal gives the smallest worst error is dropped
    and the point re-triangulated (one view per round, as Pose2Sim excludes
    cameras). A point that still exceeds ``max_error`` with ``min_views`` views,
    or that has fewer than ``min_views`` views to begin with, is NaN.

    Args:
        points_2d: (C, N, 2) coordinates in the units of ``projections``.
        projections: (C, 3, 4).
        weights: (C, N) confidences; 0 or NaN: view not used.
        max_error: threshold on each used view's reprojection error (pixels
            for ``K [R | t]`` projections).
        min_views: at least 2.

    Returns:
        :class:`RobustTriangulation` with points (N, 3), views_used (C, N),
        errors (C, N).
    """
    min_views = max(int(min_views), 2)
    pts, P, w = _check(points_2d, projections, weights)
    C, N = w.shape
    used = w > 0
    X = triangulate_dlt(pts, P, w, min_views=min_views)
    err = reprojection_errors(X, pts, P)
    for _ in range(max(C - min_views, 0)):
        todo = np.nonzero((used.sum(axis=0) > min_views) & (_worst_used(err, used) > max_error))[0]
        if len(todo) == 0:
            break
        sub_pts, sub_w, sub_used = pts[:, todo], w[:, todo], used[:, todo]
        best = np.full(len(todo), np.inf)
        best_view = np.full(len(todo), -1)
        best_X = X[todo].copy()
        best_err = err[:, todo].copy()
        for c in range(C):
            trial = sub_used.copy()
            trial[c] = False
            Xc = triangulate_dlt(sub_pts, P, sub_w * trial, min_views=min_views)
            ec = reprojection_errors(Xc, sub_pts, P)
            worst = _worst_used(ec, trial)
            worst[~sub_used[c] | ~np.isfinite(Xc).all(axis=1)] = np.inf
            better = worst < best
            best[better], best_view[better] = worst[better], c
            best_X[better], best_err[:, better] = Xc[better], ec[:, better]
        moved = best_view >= 0
        idx = todo[moved]
        used[best_view[moved], idx] = False
        X[idx], err[:, idx] = best_X[moved], best_err[:, moved]
    failed = (used.sum(axis=0) < min_views) | ~np.isfinite(X).all(axis=1) | (_worst_used(err, used) > max_error)
    X[failed] = np.nan
    used[:, failed] = False
    err[:, failed] = np.nan
    return RobustTriangulation(points=X, views_used=used, errors=err)
