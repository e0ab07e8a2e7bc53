import numpy as np
import pytest

from poselift.data.multiview_windows import MultiViewBatches
from poselift.data.windows import pad_sequence


def _groups(rng, lengths=(9, 5), views=3):
    groups = [[rng.standard_normal((n, 4, 2)).astype(np.float32) for _ in range(views)] for n in lengths]
    intr = [rng.standard_normal((views, 9)) for _ in lengths]
    orient = [rng.standard_normal((views, 4)) for _ in lengths]
    trans = [rng.standard_normal((views, 3)) for _ in lengths]
    return groups, intr, orient, trans


def test_every_view_shows_the_same_instant_with_edge_padding():
    rng = np.random.default_rng(0)
    groups, intr, orient, trans = _groups(rng)
    pad = 2
    batches = MultiViewBatches(4, groups, intr, orient, trans, chunk_length=1, pad=pad, seed=3)
    assert batches.num_batches == 4  # 9 + 5 chunks of one frame, 4 per batch
    seen = []
    stream = batches.epoch()
    for _ in range(batches.num_batches):
        b = next(stream)
        v, n, win, j, c = b.inputs_2d.shape
        assert (v, win, j, c) == (3, 2 * pad + 1, 4, 2) and b.intrinsics.shape == (3, n, 9)
        for k in range(n):
            # find which group/frame this chunk is: match view 0 against the padded sequences
            for gi, g in enumerate(groups):
                padded = pad_sequence(g[0], pad)
                for t in range(g[0].shape[0]):
                    if np.array_equal(padded[t:t + win], b.inputs_2d[0, k]):
                        for view in range(3):  # the other views show the same instant of the same group
                            np.testing.assert_array_equal(b.inputs_2d[view, k], pad_sequence(g[view], pad)[t:t + win])
                            np.testing.assert_allclose(b.intrinsics[view, k], intr[gi][view], rtol=1e-6)
                            np.testing.assert_allclose(b.orientations[view, k], orient[gi][view], rtol=1e-6)
                            np.testing.assert_allclose(b.translations[view, k], trans[gi][view], rtol=1e-6)
                        seen.append((gi, t))
    assert sorted(seen) == sorted([(0, t) for t in range(9)] + [(1, t) for t in range(5)])  # each chunk once


def test_groups_must_be_synchronised():
    rng = np.random.default_rng(1)
    groups, intr, orient, trans = _groups(rng)
    groups[1][2] = groups[1][2][:-1]
    with pytest.raises(ValueError, match="same number of frames"):
        MultiViewBatches(4, groups, intr, orient, trans)
    with pytest.raises(ValueError, match=">= 2"):
        MultiViewBatches(4, [[groups[0][0]]], [intr[0][:1]], [orient[0][:1]], [trans[0][:1]])
