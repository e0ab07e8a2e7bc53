"""Training windows and evaluation padding for temporal models (VideoPose3D's generators).

A temporal model with receptive field ``2 * pad + 1`` needs ``pad`` extra input
frames on each side of the frames it predicts (shifted by ``causal_shift``
for causal models). Near sequence ends the missing frames are copies of the
first/last frame ("edge" padding), exactly as VideoPose3D does.

:class:`ChunkedBatches` cuts sequences into chunks of ``chunk_length`` output
frames (1 for the strided model), optionally adds a horizontally flipped copy
of every chunk, and yields shuffled batches. Sequences are edge-padded once up
front so a whole batch is one fancy-indexing gather, not a Python loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


def pad_sequence(keypoints: np.ndarray, pad: int, causal_shift: int = 0) -> np.ndarray:
    """Edge-pad (T, J, C) to (T + 2 * pad, J, C) for whole-sequence evaluation."""
    return np.pad(keypoints, ((pad + causal_shift, pad - causal_shift), (0, 0), (0, 0)), mode="edge")


def chunk_starts(num_frames: int, chunk_length: int) -> np.ndarray:
    """First output frame of each chunk covering ``num_frames``; a last partial chunk is centred
    (both ends padded), as VideoPose3D does."""
    n_chunks = (num_frames + chunk_length - 1) // chunk_length
    offset = (n_chunks * chunk_length - num_frames) // 2
    return np.arange(n_chunks) * chunk_length - offset


def flip_keypoints(x: np.ndarray, left: list[int], right: list[int]) -> np.ndarray:
    """Mirror (..., J, C) horizontally: negate x and swap left/right joints (returns a copy)."""
    out = x.copy()
    out[..., 0] *= -1
    out[..., left + right, :] = out[..., right + left, :]
    return out


def flip_intrinsics(intrinsics: np.ndarray) -> np.ndarray:
    """Intrinsics (..., 9) of the mirrored image: principal point x and tangential p1 change sign."""
    out = intrinsics.copy()
    out[..., 2] *= -1
    out[..., 7] *= -1
    return out


@dataclass
class Batch:
    inputs_2d: np.ndarray  # (B, chunk_length + 2 * pad, J_2d, 2)
    targets_3d: np.ndarray | None  # (B, chunk_length, J_3d, 3)
    intrinsics: np.ndarray | None  # (B, 9)


class ChunkedBatches:
    """Shuffled training batches of fixed-length chunks (see module docstring).

    Args:
        keypoints_2d: per sequence (T_i, J_2d, 2).
        positions_3d: per sequence (T_i, J_3d, 3), or None for unlabelled data.
        intrinsics: per sequence (9,), or None.
        chunk_length: output frames per example.
        pad, causal_shift: from the model's receptive field.
        augment: add a flipped copy of every chunk (kps_* for 2D, joints_* for 3D).
        endless: ``epoch()`` continues where the last one stopped and wraps around
            (VideoPose3D's unlabelled stream in semi-supervised training).
    """

    def __init__(self, batch_size: int, keypoints_2d: list[np.ndarray], positions_3d: list[np.ndarray] | None,
                 intrinsics: list[np.ndarray] | None, chunk_length: int = 1, pad: int = 0, causal_shift: int = 0,
                 shuffle: bool = True, seed: int = 1234, augment: bool = False,
                 kps_left: list[int] | None = None, kps_right: list[int] | None = None,
                 joints_left: list[int] | None = None, joints_right: list[int] | None = None,
                 endless: bool = False) -> None:
        if positions_3d is not None and len(positions_3d) != len(keypoints_2d):
            raise ValueError("positions_3d and keypoints_2d differ in number of sequences")
        self.batch_size, self.chunk, self.pad, self.shift = batch_size, chunk_length, pad, causal_shift
        self.shuffle, self.augment, self.endless = shuffle, augment, endless
        self.kps_left, self.kps_right = list(kps_left or []), list(kps_right or [])
        self.joints_left, self.joints_right = list(joints_left or []), list(joints_right or [])
        self.random = np.random.RandomState(seed)

        # Chunks centred on each sequence, as VideoPose3D: a last partial chunk is padded at both ends.
        pairs = []
        for i, k in enumerate(keypoints_2d):
            starts = chunk_starts(k.shape[0], chunk_length)
            for flip in ((False, True) if augment else (False,)):
                pairs.append(np.stack([np.full(len(starts), i), starts, np.full(len(starts), int(flip))], axis=1))
        self.pairs = np.concatenate(pairs).astype(np.int64)

        # One edge-padded array per stream; `lead` frames of padding before each sequence.
        self._lead_2d = pad + causal_shift + chunk_length
        self._all_2d, self._off_2d = self._pack(keypoints_2d, self._lead_2d, pad - causal_shift + chunk_length)
        self._all_3d = self._off_3d = None
        if positions_3d is not None:
            self._all_3d, self._off_3d = self._pack(positions_3d, chunk_length, chunk_length)
        self._cams = None if intrinsics is None else np.stack(intrinsics).astype(np.float32)
        self._state: tuple[int, np.ndarray] | None = None

    @staticmethod
    def _pack(seqs: list[np.ndarray], lead: int, tail: int) -> tuple[np.ndarray, np.ndarray]:
        padded = [np.pad(s, ((lead, tail), (0, 0), (0, 0)), mode="edge") for s in seqs]
        offsets = np.cumsum([0] + [p.shape[0] for p in padded[:-1]])
        return np.concatenate(padded).astype(np.float32), offsets

    def set_keypoints(self, keypoints_2d: list[np.ndarray]) -> None:
        """Replace the 2D input of every sequence (same lengths), e.g. with a fresh noise draw each epoch."""
        lengths = np.diff(np.append(self._off_2d, self._all_2d.shape[0])) - self._lead_2d - (
            self.pad - self.shift + self.chunk)
        if len(keypoints_2d) != len(lengths) or any(k.shape[0] != n for k, n in zip(keypoints_2d, lengths)):
            raise ValueError("set_keypoints needs one array per sequence with the original lengths")
        self._all_2d, _ = self._pack(keypoints_2d, self._lead_2d, self.pad - self.shift + self.chunk)

    @property
    def num_batches(self) -> int:
        return (len(self.pairs) + self.batch_size - 1) // self.batch_size

    @property
    def num_frames(self) -> int:
        """Output frames per epoch (flipped copies included)."""
        return len(self.pairs) * self.chunk

    def get_random_state(self) -> tuple:
        return self.random.get_state()

    def set_random_state(self, state: tuple) -> None:
        self.random.set_state(state)

    def _gather(self, chunk_pairs: np.ndarray) -> Batch:
        seq, start, flip = chunk_pairs[:, 0], chunk_pairs[:, 1], chunk_pairs[:, 2].astype(bool)
        win_2d = self.chunk + 2 * self.pad
        idx = (self._off_2d[seq] + self._lead_2d + start - self.pad - self.shift)[:, None] + np.arange(win_2d)
        x2d = self._all_2d[idx]
        x3d = None
        if self._all_3d is not None:
            idx3 = (self._off_3d[seq] + self.chunk + start)[:, None] + np.arange(self.chunk)
            x3d = self._all_3d[idx3]
        cams = None if self._cams is None else self._cams[seq].copy()
        if flip.any():
            x2d[flip] = flip_keypoints(x2d[flip], self.kps_left, self.kps_right)
            if x3d is not None:
                x3d[flip] = flip_keypoints(x3d[flip], self.joints_left, self.joints_right)
            if cams is not None:
                cams[flip] = flip_intrinsics(cams[flip])
        return Batch(x2d, x3d, cams)

    def epoch(self) -> Iterator[Batch]:
        """Batches for one pass (or, when endless, forever, resuming where it stopped)."""
        while True:
            if self._state is None:
                order = self.random.permutation(len(self.pairs)) if self.shuffle else np.arange(len(self.pairs))
                start_batch = 0
            else:
                start_batch, order = self._state
            for b in range(start_batch, self.num_batches):
                chunk = self.pairs[order[b * self.batch_size:(b + 1) * self.batch_size]]
                if self.endless:
                    self._state = (b + 1, order)
                yield self._gather(chunk)
            self._state = None
            if not self.endless:
                return
