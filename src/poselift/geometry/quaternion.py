"""Unit quaternions ``(w, x, y, z)``, scalar first, as Human3.6M's camera files store them.

Every function takes torch tensors with any leading batch dimensions.
"""

from __future__ import annotations

import torch


def qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4); broadcasts leading dims."""
    qvec, v = torch.broadcast_tensors(q[..., 1:], v)
    w = q[..., :1]
    uv = torch.linalg.cross(qvec, v, dim=-1)
    uuv = torch.linalg.cross(qvec, uv, dim=-1)
    return v + 2 * (w * uv + uuv)


def qinverse(q: torch.Tensor) -> torch.Tensor:
    """Inverse of unit quaternions (the conjugate) (..., 4)."""
    return torch.cat((q[..., :1], -q[..., 1:]), dim=-1)


def qmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b`` of quaternions (..., 4): rotate by ``b`` first, then ``a``."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) from unit quaternions (..., 4); ``R @ v == qrot(q, v)``."""
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ),
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def rotmat_to_quat(r: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (..., 4) with ``w >= 0`` from rotation matrices (..., 3, 3).

    Uses the largest-diagonal branch per element (Shepperd's method) so the
    square root never sees a near-zero argument.
    """
    m = r.reshape(-1, 3, 3)
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    diag = torch.stack((trace, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]), dim=-1)
    branch = diag.argmax(dim=-1)
    out = torch.empty(m.shape[0], 4, dtype=r.dtype, device=r.device)
    for k in range(4):
        sel = branch == k
        if not sel.any():
            continue
        a = m[sel]
        if k == 0:
            s = torch.sqrt(1 + trace[sel]) * 2
            q = (0.25 * s, (a[:, 2, 1] - a[:, 1, 2]) / s, (a[:, 0, 2] - a[:, 2, 0]) / s, (a[:, 1, 0] - a[:, 0, 1]) / s)
        elif k == 1:
            s = torch.sqrt(1 + a[:, 0, 0] - a[:, 1, 1] - a[:, 2, 2]) * 2
            q = ((a[:, 2, 1] - a[:, 1, 2]) / s, 0.25 * s, (a[:, 0, 1] + a[:, 1, 0]) / s, (a[:, 0, 2] + a[:, 2, 0]) / s)
        elif k == 2:
            s = torch.sqrt(1 + a[:, 1, 1] - a[:, 0, 0] - a[:, 2, 2]) * 2
            q = ((a[:, 0, 2] - a[:, 2, 0]) / s, (a[:, 0, 1] + a[:, 1, 0]) / s, 0.25 * s, (a[:, 1, 2] + a[:, 2, 1]) / s)
        else:
            s = torch.sqrt(1 + a[:, 2, 2] - a[:, 0, 0] - a[:, 1, 1]) * 2
            q = ((a[:, 1, 0] - a[:, 0, 1]) / s, (a[:, 0, 2] + a[:, 2, 0]) / s, (a[:, 1, 2] + a[:, 2, 1]) / s, 0.25 * s)
        out[sel] = torch.stack(q, dim=-1)
    out = torch.where(out[:, :1] < 0, -out, out)
    return out.reshape(*r.shape[:-2], 4)
