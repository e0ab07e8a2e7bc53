"""Inference-only temporal lifter with batch norm folded into the convolutions.

In eval mode ``BN(conv(x)) = conv'(x)`` with ``W' = W * g / sqrt(v + eps)`` and
``b' = beta - g * mu / sqrt(v + eps)``, which removes one pass over every
activation per layer. Dropout is the identity at inference and is dropped.
Output equals the source model's eval-mode output up to float rounding.

On CPU, whole sequences (batch 1, or inputs of at least twice the receptive
field) do not go through ``conv1d``: activations are kept time-major,
``(frames, channels)``, so the residual slices and filter taps are row ranges
of one buffer, and

- each 3-tap dilated convolution uses Winograd F(4, 3) (six matrix products
  per four output frames instead of twelve; the six input transforms are
  strided views of the same buffer). At 1024 channels those layers run about
  1.7x faster, the whole network about 1.35-1.4x (docs/benchmarks.md). Its
  rounding error is a few times that of the direct product (~1e-6 relative),
  far below anything visible in millimetres; ``winograd=False`` turns it off;
- other convolutions are one matrix product per tap (``addmm`` chain).

Short batched windows (training-style input, ``T < 2 * receptive_field``) and
other devices keep the channel-major ``conv1d`` path.

:func:`poselift.models.predict.predict_sequences` lifts whole sequences as VideoPose3D's
``UnchunkedGenerator`` + ``evaluate`` do (edge padding, optional flip
test-time augmentation) and adds two savings on CPU, with outputs equal to one
forward per edge-padded sequence up to float rounding:

- the padding is not materialised: padded frames are copies of the first/last
  frame, so until the receptive field reaches real frames a layer's outputs over
  them are one repeated row, computed once. Re-inserting the repeated rows costs
  a copy per layer, so a small cost model (GEMM rows saved against rows copied)
  decides per sequence and layer whether to keep them compressed or write them
  out;
- sequences are grouped into one stream per pass (about ``batch_frames`` frames),
  which amortises per-call overhead and keeps Winograd tiles full for short
  sequences. Windows that straddle two sequences produce garbage rows that are
  never read; they are dropped (a copy) only when carrying them would cost more.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from poselift.models.temporal_conv import ReceptiveFieldMixin, TemporalConvLifter, _TemporalConvBase, check_input
from poselift.models.winograd import GemmConv


def _fold(conv: nn.Conv1d, bn: nn.BatchNorm1d) -> nn.Conv1d:
    fused = copy.deepcopy(conv)
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    fused.weight = nn.Parameter(conv.weight.detach() * scale[:, None, None], requires_grad=False)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias = nn.Parameter(bn.bias.detach() + (bias - bn.running_mean) * scale, requires_grad=False)
    return fused


class _Segment:
    """One sequence's activations inside a time-major stream.

    The sequence's (edge-padded) activations are ``lc`` copies of row ``cl``, then rows
    ``[start, start + n)`` of the stream, then ``rc`` copies of row ``cr``. Stream rows
    outside every segment's range are garbage (outputs of windows that straddle two
    sequences): never read back, dropped when the stream is compacted.
    """

    __slots__ = ("lc", "cl", "start", "n", "rc", "cr")

    def __init__(self, lc: int, cl: torch.Tensor | None, start: int, n: int, rc: int, cr: torch.Tensor | None) -> None:
        self.lc, self.cl, self.start, self.n, self.rc, self.cr = lc, cl, start, n, rc, cr


class _Stage:
    """One layer of the engine: a valid op of temporal extent ``span + 1`` and cost estimates per output row."""

    __slots__ = ("span", "op", "op_const", "row_cost", "copy_cost")

    def __init__(self, span: int, op, op_const, row_cost: float, c_in: int) -> None:
        self.span, self.op, self.op_const, self.row_cost = span, op, op_const, row_cost
        # Copying a row of C_in floats (read + write) in multiply-add equivalents: ~8 bytes * C_in at
        # ~10 GB/s against ~200 GFLOP/s of GEMM on the machine this was tuned on (see docs/benchmarks.md).
        self.copy_cost = 160.0 * c_in


class FusedTemporalConvLifter(ReceptiveFieldMixin, nn.Module):
    """Eval-only copy of a :class:`TemporalConvLifter` (or strided one) with BN folded in.

    Always uses dilated convolutions, so it accepts any input length >= the
    receptive field, whichever variant it was built from.

    ``winograd`` (default True; an attribute, may be changed later): on CPU, compute
    the 3-tap dilated convolutions with Winograd F(4, 3) (half the multiply-adds of
    those layers; rounding differences a few times those of the direct product,
    ~1e-6 relative). False keeps direct matrix products.
    """

    def __init__(self, model: _TemporalConvBase, *, winograd: bool = True) -> None:
        super().__init__()
        self.winograd = winograd
        dilated = model if isinstance(model, TemporalConvLifter) else _to_dilated(model)
        self.config = dilated.config
        self.pad = list(dilated.pad)
        self.causal_shift = list(dilated.causal_shift)
        self.expand = _fold(dilated.expand_conv, dilated.expand_bn)
        self.convs = nn.ModuleList(
            _fold(dilated.layers_conv[i], dilated.layers_bn[i]) for i in range(len(dilated.layers_conv))
        )
        self.shrink = copy.deepcopy(dilated.shrink)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        self._gemm_key: tuple | None = None
        self._gemm: tuple | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_gemm_key"] = state["_gemm"] = None  # derived matrices: rebuilt on demand
        return state

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J_in, C_in) -> (B, T - receptive_field + 1, J_out, 3)."""
        check_input(x, self.config)
        cfg = self.config
        b, t = x.shape[0], x.shape[1]
        # Time-major GEMMs on CPU; short batched windows (training-style) stay on batched conv1d.
        engine = x.device.type == "cpu" and not (x.requires_grad and torch.is_grad_enabled())
        if engine and b > 0 and (b == 1 or t >= 2 * self.receptive_field):
            flat = x.reshape(b, t, -1)
            outs = [self._run([(0, flat[i], 0)])[0] for i in range(b)]
            return torch.stack(outs).reshape(b, -1, cfg.num_joints_out, 3)
        return self._forward_conv(x)

    def _forward_conv(self, x: torch.Tensor) -> torch.Tensor:
        """The plain channel-major conv1d formulation (any device)."""
        b = x.shape[0]
        h = torch.relu_(self.expand(x.reshape(b, x.shape[1], -1).transpose(1, 2)))
        for i in range(len(self.pad) - 1):
            pad, shift = self.pad[i + 1], self.causal_shift[i + 1]
            residual = h[:, :, pad + shift : h.shape[2] - pad + shift]
            h = torch.relu_(self.convs[2 * i](h))
            h = torch.relu_(self.convs[2 * i + 1](h)).add_(residual)
        h = self.shrink(h)
        return h.transpose(1, 2).reshape(b, -1, self.config.num_joints_out, 3)

    # ------------------------------------------------------------ GEMM engine

    def _gemms(self) -> tuple:
        """Matrices for the time-major path, rebuilt whenever a parameter changes (load_state_dict, .to())."""
        key = (bool(self.winograd),) + tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in self.parameters())
        if key != self._gemm_key:
            expand = GemmConv(self.expand, im2col=True)
            blocks = [
                (GemmConv(self.convs[2 * i], winograd=bool(self.winograd)), GemmConv(self.convs[2 * i + 1]),
                 self.pad[i + 1], self.causal_shift[i + 1])
                for i in range(len(self.pad) - 1)
            ]
            for conv3, _, pad, _ in blocks:
                if conv3.span != 2 * pad:
                    raise RuntimeError(f"layer span {conv3.span} does not match its padding {pad}")
            self._gemm = (expand, blocks, GemmConv(self.shrink))
            self._gemm_key = key
        return self._gemm

    def _stages(self) -> list[_Stage]:
        expand, blocks, shrink = self._gemms()
        c = self.config.channels
        stages = [_Stage(expand.span, lambda h: expand(h).relu_(), lambda x: expand.constant(x).relu_(),
                         2.0 * expand.taps[0].numel(), expand.taps[0].shape[0] // max(expand.width, 1))]
        for conv3, conv1, pad, shift in blocks:

            def block(h: torch.Tensor, conv3=conv3, conv1=conv1, pad=pad, shift=shift) -> torch.Tensor:
                residual = h[pad + shift : h.shape[0] - pad + shift]
                return conv1(conv3(h).relu_()).relu_().add_(residual)

            def block_const(x: torch.Tensor, conv3=conv3, conv1=conv1) -> torch.Tensor:
                return conv1(conv3.constant(x).relu_()).relu_().add_(x)

            taps3 = sum(t.numel() for t in conv3.taps) * (0.5 if conv3.winograd is not None else 1.0)
            stages.append(_Stage(conv3.span, block, block_const, 2.0 * (taps3 + conv1.taps[0].numel()), c))
        stages.append(_Stage(0, shrink, shrink, 2.0 * shrink.taps[0].numel(), c))
        return stages

    @staticmethod
    def _compress_pays(seg: _Segment, stages: list[_Stage], k: int) -> bool:
        """Whether skipping the constant end rows from stage ``k`` on saves more than the copies it needs.

        Skipped rows must be re-inserted (a copy of the stream) at every later stage that still
        has constant rows; keeping them all from stage ``k`` on costs their GEMM rows instead.
        """
        lc, rc, n = seg.lc, seg.rc, seg.n
        benefit = cost = 0.0
        for j in range(k, len(stages)):
            if not (lc or rc):
                break
            st = stages[j]
            a, b = min(lc, st.span), min(rc, st.span)
            if j > k:
                cost += (a + n + b) * st.copy_cost
            benefit += (lc - a + rc - b) * st.row_cost
            n, lc, rc = a + n + b - st.span, lc - a, rc - b
        return benefit > cost

    def _run(self, inputs: list[tuple[int, torch.Tensor, int]]) -> list[torch.Tensor]:
        """Time-major forward of sequences given as (left_pad, rows (T, C_in), right_pad), edge padding implied.

        Returns per sequence (T + left_pad + right_pad - receptive_field + 1, J_out * 3). All
        sequences run as one stream per layer; see :class:`_Segment`.
        """
        stages = self._stages()
        segs, pieces = [], []
        for lc, x, rc in inputs:
            segs.append(_Segment(lc, x[0], 0, x.shape[0], rc, x[-1]))
            pieces.append(x)
        stream: torch.Tensor | None = None
        for k, st in enumerate(stages):
            span = st.span
            plan = []
            for seg in segs:
                if not (seg.lc or seg.rc) or span == 0:  # a pointwise op maps constant rows to constant rows
                    plan.append((0, 0))
                elif self._compress_pays(seg, stages, k):
                    plan.append((min(seg.lc, span), min(seg.rc, span)))
                else:  # write out all remaining end rows now; no later copies for this segment
                    plan.append((seg.lc, seg.rc))
            relayout = stream is None or any(a or b for a, b in plan)
            if not relayout:
                valid = sum(seg.n for seg in segs)
                garbage = stream.shape[0] - valid
                relayout = garbage * st.row_cost > valid * st.copy_cost
            if relayout:
                parts, pos = [], 0
                for i, (seg, (a, b)) in enumerate(zip(segs, plan)):
                    if a:
                        parts.append(seg.cl.expand(a, -1))
                    parts.append(pieces[i] if stream is None else stream[seg.start : seg.start + seg.n])
                    if b:
                        parts.append(seg.cr.expand(b, -1))
                    seg.start = pos
                    pos += a + seg.n + b
                stream = parts[0] if len(parts) == 1 else torch.cat(parts)
                # `start` now points at the first written end row: the first output row of its windows
            consts, where = [], []
            for seg, (a, b) in zip(segs, plan):
                seg.n = a + seg.n + b - span
                if seg.lc - a:
                    consts.append(seg.cl)
                    where.append((seg, "cl"))
                if seg.rc - b:
                    consts.append(seg.cr)
                    where.append((seg, "cr"))
                seg.lc, seg.rc = seg.lc - a, seg.rc - b
            stream = st.op(stream)
            if consts:  # end rows still constant after this layer: the op applied to the constant row
                for (seg, side), row in zip(where, st.op_const(torch.stack(consts))):
                    setattr(seg, side, row)
        results = []
        for seg in segs:
            m = stream[seg.start : seg.start + seg.n]
            if seg.lc or seg.rc:  # padded by more than the receptive field needs
                m = torch.cat(([seg.cl.expand(seg.lc, -1)] if seg.lc else []) + [m]
                              + ([seg.cr.expand(seg.rc, -1)] if seg.rc else []))
            results.append(m)
        return results

    def predict_padded(self, seqs: list[torch.Tensor], left: int, right: int, batch_frames: int) -> list[torch.Tensor]:
        """Outputs for sequences (T_i, J_in * C_in) edge-padded by ``left``/``right`` frames.

        On CPU: the time-major engine, padding kept compressed, sequences grouped into
        passes of about ``batch_frames`` frames. Elsewhere (not tuned there): one conv1d
        forward per explicitly edge-padded sequence.
        """
        if seqs and seqs[0].device.type != "cpu":
            return [self._predict_padded_conv(x, left, right) for x in seqs]
        order = list(range(len(seqs)))
        results: list[torch.Tensor | None] = [None] * len(seqs)
        group: list[int] = []
        frames = 0

        def flush() -> None:
            for i, out in zip(group, self._run([(left, seqs[i], right) for i in group])):
                results[i] = out

        for i in order:
            n = seqs[i].shape[0] + min(left, self.receptive_field) + min(right, self.receptive_field)
            if group and frames + n > batch_frames:
                flush()
                group, frames = [], 0
            group.append(i)
            frames += n
        if group:
            flush()
        return results  # type: ignore[return-value]

    def _predict_padded_conv(self, x: torch.Tensor, left: int, right: int) -> torch.Tensor:
        idx = torch.arange(-left, x.shape[0] + right, device=x.device).clamp_(0, x.shape[0] - 1)
        xp = x[idx].reshape(1, idx.shape[0], self.config.num_joints_in, self.config.in_features)
        return self._forward_conv(xp).reshape(-1, self.config.num_joints_out * 3)


def _to_dilated(model: _TemporalConvBase) -> TemporalConvLifter:
    dilated = TemporalConvLifter(copy.deepcopy(model.config))
    dilated.load_state_dict(model.state_dict())
    return dilated.eval()


def fuse_for_inference(model: _TemporalConvBase, *, winograd: bool = True) -> FusedTemporalConvLifter:
    """Return a BN-folded, eval-only copy of ``model`` (the original is untouched)."""
    return FusedTemporalConvLifter(model, winograd=winograd)
