"""Time-major convolution operators for CPU inference: direct taps and Winograd F(4, 3).

Activations are ``(frames, channels)``; a valid dilated convolution is a few
matrix products over row-shifted views of one buffer (``out = b + sum_j
h[j*d : j*d + T_out] @ W_j^T``). For 3-tap filters, Winograd F(4, 3) (Lavin &
Gray 2016) computes four outputs from six products instead of twelve, which
halves the multiply-adds of VideoPose3D's dilated layers; rounding grows to a
few times that of the direct product (~1e-6 relative).
"""

from __future__ import annotations

import torch
from torch import nn


# Winograd F(4, 3) (Lavin & Gray 2016, interpolation points 0, +-1, +-2, inf): four outputs of a
# 3-tap filter from six products instead of twelve. y = A^T [(G g) * (B^T d)]; B^T and A^T are applied
# below as explicit sums, G here to the weights.
_WINOGRAD_G = ((1 / 4, 0.0, 0.0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
               (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0.0, 0.0, 1.0))


class GemmConv:
    """A folded conv as matrices for the time-major path.

    ``taps[j]`` is (C_in, C_out) for tap ``j`` (or one stacked (width * C_in, C_out) matrix with
    ``im2col``); 3-tap convs also keep the six Winograd-transformed filters when ``winograd`` is set.
    """

    def __init__(self, conv: nn.Conv1d, im2col: bool = False, winograd: bool = False) -> None:
        w = conv.weight.detach()
        self.width = w.shape[2]
        self.dilation = conv.dilation[0]
        self.span = (self.width - 1) * self.dilation
        self.bias = conv.bias.detach()
        self.im2col = im2col and self.width > 1
        if self.im2col:
            # one (width * C_in, C_out) matrix; row j * C_in + c holds tap j, input channel c
            self.taps = [w.permute(2, 1, 0).reshape(-1, w.shape[0]).contiguous()]
        else:
            self.taps = [w[:, :, j].t().contiguous() for j in range(self.width)]
        self.winograd = None
        if winograd and self.width == 3 and not self.im2col:
            g = torch.tensor(_WINOGRAD_G, dtype=torch.float64, device=w.device)
            taps = w.to(torch.float64).permute(2, 1, 0)  # (3, C_in, C_out)
            self.winograd = torch.einsum("nk,kio->nio", g, taps).to(w.dtype).contiguous()

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        """Valid convolution over time-major ``h`` (T, C_in) -> (T - span, C_out)."""
        n = h.shape[0] - self.span
        d = self.dilation
        if self.winograd is not None:
            rows = n // (4 * d) * 4 * d  # outputs in whole Winograd tiles
            # The transforms are memory-bound: worth it only for large enough products (measured on CPU).
            if rows >= 256 and rows * self.winograd.shape[1] * self.winograd.shape[2] >= 1 << 24:
                return self._winograd(h)
        if self.im2col:
            x = torch.cat([h[j * d : j * d + n] for j in range(self.width)], dim=1)
            return torch.addmm(self.bias, x, self.taps[0])
        out = torch.addmm(self.bias, h[:n], self.taps[0])
        for j in range(1, self.width):
            out.addmm_(h[j * d : j * d + n], self.taps[j])
        return out

    def _winograd(self, h: torch.Tensor) -> torch.Tensor:
        """Dilated 3-tap conv by Winograd F(4, 3): output rows come in tiles of 4 * dilation.

        Tile q, offset r < d holds outputs t = 4dq + k d + r (k = 0..3), which need inputs
        t0 + k d for k = 0..5 (t0 = 4dq + r): six strided views of ``h``, no copies. Rows
        past the last whole tile use the direct taps.
        """
        h = h.contiguous()
        d = self.dilation
        c_in = h.shape[1]
        n = h.shape[0] - 2 * d
        q = n // (4 * d)
        out = torch.empty(n, self.bias.shape[0], dtype=h.dtype, device=h.device)
        base = h.storage_offset()
        d0, d1, d2, d3, d4, d5 = (
            h.as_strided((q, d, c_in), (4 * d * c_in, c_in, 1), base + k * d * c_in) for k in range(6)
        )
        u = torch.empty(6, q, d, c_in, dtype=h.dtype, device=h.device)
        torch.add(d4, d0, alpha=4, out=u[0]).add_(d2, alpha=-5)
        t1, t2 = torch.add(d4, d2, alpha=-4), torch.add(d3, d1, alpha=-4)
        torch.add(t1, t2, out=u[1])
        torch.sub(t1, t2, out=u[2])
        torch.sub(d4, d2, out=t1)
        torch.sub(d3, d1, out=t2).mul_(2)
        torch.add(t1, t2, out=u[3])
        torch.sub(t1, t2, out=u[4])
        torch.add(d5, d1, alpha=4, out=u[5]).add_(d3, alpha=-5)
        del t1, t2
        m = torch.bmm(u.view(6, q * d, c_in), self.winograd).view(6, q, d, -1)
        del u
        m[1].add_(self.bias)  # every output row takes m[1] with weight 1: the bias rides along
        y = out[: 4 * d * q].view(q, 4, d, -1)
        s12, d12 = m[1] + m[2], m[1] - m[2]
        s34, d34 = m[3] + m[4], m[3] - m[4]
        torch.add(m[0], s12, out=y[:, 0]).add_(s34)
        torch.add(d12, d34, alpha=2, out=y[:, 1])
        torch.add(s12, s34, alpha=4, out=y[:, 2])
        torch.add(d12, d34, alpha=8, out=y[:, 3]).add_(m[5])
        r0 = 4 * d * q
        if r0 < n:
            rest = out[r0:]
            torch.addmm(self.bias, h[r0:n], self.taps[0], out=rest)
            for j in (1, 2):
                rest.addmm_(h[r0 + j * d : n + j * d], self.taps[j])
        return out

    def constant(self, c: torch.Tensor) -> torch.Tensor:
        """The conv of a constant signal: rows of ``c`` (k, C_in) are each repeated over the window."""
        if self.im2col:
            return torch.addmm(self.bias, c.repeat(1, self.width), self.taps[0])
        out = torch.addmm(self.bias, c, self.taps[0])
        for j in range(1, self.width):
            out.addmm_(c, self.taps[j])
        return out


