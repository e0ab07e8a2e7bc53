import numpy as np
import pytest

from poselift.data.windows import ChunkedBatches, flip_intrinsics, flip_keypoints, pad_sequence


def test_pad_sequence_edge_and_causal_shift():
    x = np.arange(5, dtype=np.float32).reshape(5, 1, 1)
    sym = pad_sequence(x, 2)
    assert sym[:, 0, 0].tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4]
    causal = pad_sequence(x, 2, causal_shift=2)  # all padding in front: frame t sees t-4..t
    assert causal[:, 0, 0].tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 4]


def test_flip_is_an_involution_and_swaps_sides():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 2))
    left, right = [1], [3]
    f = flip_keypoints(x, left, right)
    assert np.allclose(f[:, 1, 0], -x[:, 3, 0]) and np.allclose(f[:, 1, 1], x[:, 3, 1])
    assert np.allclose(f[:, 0, 0], -x[:, 0, 0])
    assert np.allclose(flip_keypoints(f, left, right), x)
    cam = np.arange(9, dtype=np.float32)
    assert flip_intrinsics(cam).tolist() == [0, 1, -2, 3, 4, 5, 6, -7, 8]


def test_single_frame_windows_centre_on_target_frames():
    # Frame values encode the time index, so each window must be t-pad..t+pad clipped to the sequence.
    seqs_2d = [np.arange(n, dtype=np.float32)[:, None, None].repeat(2, axis=2) for n in (4, 6)]
    seqs_3d = [np.arange(n, dtype=np.float32)[:, None, None].repeat(3, axis=2) for n in (4, 6)]
    gen = ChunkedBatches(100, seqs_2d, seqs_3d, None, chunk_length=1, pad=2, shuffle=False)
    (batch,) = list(gen.epoch())
    assert batch.inputs_2d.shape == (10, 5, 1, 2) and batch.targets_3d.shape == (10, 1, 1, 3)
    assert batch.inputs_2d[0, :, 0, 0].tolist() == [0, 0, 0, 1, 2]
    assert batch.inputs_2d[3, :, 0, 0].tolist() == [1, 2, 3, 3, 3]
    assert batch.targets_3d[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5]


def test_chunks_and_augmentation_counts():
    seqs = [np.zeros((n, 3, 2), np.float32) for n in (10, 7)]
    gen = ChunkedBatches(4, seqs, None, None, chunk_length=3, pad=1, augment=True, kps_left=[1], kps_right=[2])
    # ceil(10/3) + ceil(7/3) = 4 + 3 chunks, doubled by flipping
    assert len(gen.pairs) == 14 and gen.num_batches == 4 and gen.num_frames == 42
    shapes = [b.inputs_2d.shape for b in gen.epoch()]
    assert shapes[0] == (4, 5, 3, 2) and shapes[-1] == (2, 5, 3, 2)


def test_flipped_copies_are_mirrored():
    rng = np.random.default_rng(1)
    k2 = [rng.normal(size=(5, 3, 2)).astype(np.float32)]
    k3 = [rng.normal(size=(5, 3, 3)).astype(np.float32)]
    cams = [np.arange(9, dtype=np.float32)]
    gen = ChunkedBatches(100, k2, k3, cams, chunk_length=1, pad=1, shuffle=False, augment=True,
                         kps_left=[1], kps_right=[2], joints_left=[1], joints_right=[2])
    (b,) = list(gen.epoch())
    plain, flipped = b.inputs_2d[:5], b.inputs_2d[5:]
    assert np.allclose(flipped, flip_keypoints(plain, [1], [2]))
    assert np.allclose(b.targets_3d[5:], flip_keypoints(b.targets_3d[:5], [1], [2]))
    assert b.intrinsics[5, 2] == -2 and b.intrinsics[0, 2] == 2


def test_shuffle_is_seeded_and_endless_resumes():
    seqs = [np.arange(20, dtype=np.float32)[:, None, None].repeat(2, axis=2)]
    a = [b.inputs_2d[:, 0, 0, 0].tolist() for b in ChunkedBatches(6, seqs, None, None, seed=7).epoch()]
    b = [b.inputs_2d[:, 0, 0, 0].tolist() for b in ChunkedBatches(6, seqs, None, None, seed=7).epoch()]
    c = [b.inputs_2d[:, 0, 0, 0].tolist() for b in ChunkedBatches(6, seqs, None, None, seed=8).epoch()]
    assert a == b and a != c
    assert sorted(v for batch in a for v in batch) == list(range(20))
    endless = ChunkedBatches(6, seqs, None, None, seed=7, endless=True)
    it = endless.epoch()
    first = [next(it).inputs_2d.shape[0] for _ in range(5)]
    assert first == [6, 6, 6, 2, 6]  # wraps into a new permutation


def test_mismatched_lengths_rejected():
    with pytest.raises(ValueError):
        ChunkedBatches(4, [np.zeros((3, 2, 2))], [], None)


def test_set_keypoints_replaces_the_input_and_checks_lengths():
    rng = np.random.default_rng(0)
    k2d = [rng.standard_normal((n, 3, 2)).astype(np.float32) for n in (7, 4)]
    k3d = [rng.standard_normal((n, 3, 3)).astype(np.float32) for n in (7, 4)]
    batches = ChunkedBatches(64, k2d, k3d, None, 1, pad=2, shuffle=False)
    before = next(batches.epoch())
    batches.set_keypoints([k + 1 for k in k2d])
    after = next(batches.epoch())
    np.testing.assert_allclose(after.inputs_2d, before.inputs_2d + 1)
    np.testing.assert_array_equal(after.targets_3d, before.targets_3d)
    with pytest.raises(ValueError, match="original lengths"):
        batches.set_keypoints([k2d[0], k2d[1][:3]])
