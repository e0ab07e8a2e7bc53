"""Similarity (Procrustes) alignment, the basis of P-MPJPE (Protocol 2)."""

from __future__ import annotations

import torch


def procrustes_align(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Align ``predicted`` to ``target`` with the best rotation, uniform scale and translation.

    Args:
        predicted, target: (..., J, 3) poses.
    Returns:
        (..., J, 3) ``s * predicted @ R + t`` minimising the squared error to ``target``.

    Reflections are excluded (det R = +1) so a mirrored pose is not "fixed" by
    the alignment; the SVD runs in float64 because near-degenerate poses make
    float32 singular vectors unstable.
    """
    dtype = predicted.dtype
    p = predicted.double()
    t = target.double()
    mu_p = p.mean(dim=-2, keepdim=True)
    mu_t = t.mean(dim=-2, keepdim=True)
    p0 = p - mu_p
    t0 = t - mu_t
    norm_p = torch.sqrt((p0**2).sum(dim=(-2, -1), keepdim=True)).clamp_min(1e-12)
    norm_t = torch.sqrt((t0**2).sum(dim=(-2, -1), keepdim=True)).clamp_min(1e-12)
    p0 = p0 / norm_p
    t0 = t0 / norm_t
    h = t0.transpose(-1, -2) @ p0  # (..., 3, 3)
    u, s, vt = torch.linalg.svd(h)
    v = vt.transpose(-1, -2)
    sign = torch.sign(torch.det(v @ u.transpose(-1, -2)))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    v = torch.cat((v[..., :, :2], v[..., :, 2:] * sign[..., None, None]), dim=-1)
    s = torch.cat((s[..., :2], s[..., 2:] * sign[..., None]), dim=-1)
    r = v @ u.transpose(-1, -2)
    scale = s.sum(dim=-1)[..., None, None] * norm_t / norm_p
    aligned = scale * (p @ r) + (mu_t - scale * (mu_p @ r))
    return aligned.to(dtype)
