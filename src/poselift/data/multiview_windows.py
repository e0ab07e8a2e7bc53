"""Unlabelled training windows that show the same instant from every camera (for multi-view consistency).

Multi-view consistency losses (PosturePose's MvP&P) compare the predictions of
several synchronised cameras for the same instant, so a batch must hold, for
each sampled chunk, the window of every camera of that subject and action.
:class:`MultiViewBatches` groups sequences that share subject and action (their
cameras; equal lengths), samples (group, start) chunks in shuffled order and
yields (V, B, window, J, 2) inputs with the cameras' intrinsics and extrinsics.

No flip augmentation: mirroring one image is a reflection of that camera's
frame, which breaks the world-space agreement the pose term measures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from poselift.data.windows import chunk_starts

__all__ = ["MultiViewBatch", "MultiViewBatches"]


@dataclass
class MultiViewBatch:
    inputs_2d: np.ndarray  # (V, B, chunk_length + 2 * pad, J, 2)
    intrinsics: np.ndarray  # (V, B, 9)
    orientations: np.ndarray  # (V, B, 4) camera -> world quaternions
    translations: np.ndarray  # (V, B, 3) camera centres in world, metres


class MultiViewBatches:
    """Endless shuffled multi-view batches over groups of synchronised sequences.

    Args:
        batch_size: chunks per view in a batch (a batch holds ``V * batch_size`` windows).
        groups: per group (one subject and action), V arrays (T, J, 2) of normalised 2D, one per camera,
            all of the same length T (groups may have different T; V is the same for all groups).
        intrinsics: per group (V, 9); orientations: per group (V, 4); translations: per group (V, 3).
        chunk_length, pad, causal_shift: as :class:`poselift.data.windows.ChunkedBatches`.
    """

    def __init__(self, batch_size: int, groups: list[list[np.ndarray]], intrinsics: list[np.ndarray],
                 orientations: list[np.ndarray], translations: list[np.ndarray], chunk_length: int = 1,
                 pad: int = 0, causal_shift: int = 0, seed: int = 1234) -> None:
        if not groups:
            raise ValueError("multi-view batches need at least one group of synchronised sequences")
        views = {len(g) for g in groups}
        if len(views) != 1 or views.pop() < 2:
            raise ValueError("every group needs the same number (>= 2) of camera views")
        for g in groups:
            if len({v.shape[0] for v in g}) != 1:
                raise ValueError("the views of a group must have the same number of frames (synchronised)")
        self.batch_size, self.chunk, self.pad, self.shift = batch_size, chunk_length, pad, causal_shift
        self.num_views = len(groups[0])
        self.random = np.random.RandomState(seed)
        pairs = []
        for i, g in enumerate(groups):
            starts = chunk_starts(g[0].shape[0], chunk_length)
            pairs.append(np.stack([np.full(len(starts), i), starts], axis=1))
        self.pairs = np.concatenate(pairs).astype(np.int64)
        self._lead = pad + causal_shift + chunk_length
        tail = pad - causal_shift + chunk_length
        padded = [np.stack([np.pad(v, ((self._lead, tail), (0, 0), (0, 0)), mode="edge") for v in g]) for g in groups]
        lengths = [p.shape[1] for p in padded]
        self._offsets = np.cumsum([0] + lengths[:-1])
        self._all = np.concatenate(padded, axis=1).astype(np.float32)  # (V, sum of padded T, J, 2)
        self._intr = np.stack(intrinsics).astype(np.float32)  # (G, V, 9)
        self._orient = np.stack(orientations).astype(np.float32)  # (G, V, 4)
        self._trans = np.stack(translations).astype(np.float32)  # (G, V, 3)
        self._state: tuple[int, np.ndarray] | None = None

    @property
    def num_batches(self) -> int:
        return (len(self.pairs) + self.batch_size - 1) // self.batch_size

    def get_random_state(self) -> tuple:
        return self.random.get_state()

    def set_random_state(self, state: tuple) -> None:
        self.random.set_state(state)

    def _gather(self, chunk_pairs: np.ndarray) -> MultiViewBatch:
        group, start = chunk_pairs[:, 0], chunk_pairs[:, 1]
        win = self.chunk + 2 * self.pad
        idx = (self._offsets[group] + self._lead + start - self.pad - self.shift)[:, None] + np.arange(win)
        x = self._all[:, idx]  # (V, B, win, J, 2)
        return MultiViewBatch(x, self._intr[group].transpose(1, 0, 2), self._orient[group].transpose(1, 0, 2),
                              self._trans[group].transpose(1, 0, 2))

    def epoch(self) -> Iterator[MultiViewBatch]:
        """Batches forever, continuing where the previous call stopped (the unlabelled stream)."""
        while True:
            if self._state is None:
                order, start_batch = self.random.permutation(len(self.pairs)), 0
            else:
                start_batch, order = self._state
            for b in range(start_batch, self.num_batches):
                self._state = (b + 1, order)
                yield self._gather(self.pairs[order[b * self.batch_size:(b + 1) * self.batch_size]])
            self._state = None
