"""Video probing, reading, H.264 writing and GIF writing (poselift.io.video)."""

import os

import numpy as np
import pytest
from PIL import Image

from poselift.errors import OutputError, VideoError
from poselift.io.video import VideoWriter, probe_video, read_frames, write_gif

SQUARE = 12  # side of the moving white square, pixels


def square_frame(i: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Black frame with a white SQUARE x SQUARE square whose left edge is at x = 4 + 4 i, top at y = 18."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    x0 = 4 + 4 * i
    frame[18 : 18 + SQUARE, x0 : x0 + SQUARE] = 255
    return frame


def expected_center(i: int) -> tuple[float, float]:
    return 4 + 4 * i + (SQUARE - 1) / 2, 18 + (SQUARE - 1) / 2


def make_video(path, n=12, width=64, height=48, fps=10.0, **kw):
    with VideoWriter(path, fps=fps, **kw) as w:
        for i in range(n):
            w.write(square_frame(i, width, height))
    return path


def bright_centroid(frame: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(frame.mean(axis=2) > 128)
    return float(xs.mean()), float(ys.mean())


def test_write_probe_read_round_trip(tmp_path):
    path = make_video(tmp_path / "clip.mp4")
    meta = probe_video(path)
    assert (meta.width, meta.height, meta.num_frames, meta.name) == (64, 48, 12, "clip.mp4")
    assert meta.fps == pytest.approx(10.0)

    frames = list(read_frames(path))
    assert len(frames) == 12
    for i, frame in enumerate(frames):
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        cx, cy = bright_centroid(frame)
        ex, ey = expected_center(i)
        assert abs(cx - ex) < 0.5 and abs(cy - ey) < 0.5, (i, cx, cy)
        x0 = 4 + 4 * i
        assert frame[20:28, x0 + 2 : x0 + 10].min() > 225  # inside the square: white
        assert frame[:10].max() < 30  # rows above the square: black
    # Grey stays grey: R, G and B agree after the YUV round trip (catches a BGR/RGB mix-up only
    # together with the colour test below).
    with VideoWriter(tmp_path / "color.mp4", fps=5) as w:
        for _ in range(2):
            f = np.zeros((32, 32, 3), np.uint8)
            f[:, :16] = (220, 30, 30)  # red on the left
            f[:, 16:] = (30, 30, 220)  # blue on the right
            w.write(f)
    got = next(read_frames(tmp_path / "color.mp4"))
    assert np.abs(got[8:24, 2:12].mean(axis=(0, 1)) - (220, 30, 30)).max() < 15
    assert np.abs(got[8:24, 20:30].mean(axis=(0, 1)) - (30, 30, 220)).max() < 15


def test_read_range_matches_full_read(tmp_path):
    path = make_video(tmp_path / "clip.mp4")
    full = list(read_frames(path))
    part = list(read_frames(path, start=3, stop=7))
    assert len(part) == 4
    for a, b in zip(part, full[3:7]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(VideoError, match="clip.mp4.*ended after 12 frames"):
        list(read_frames(path, start=10, stop=20))


def test_odd_size_is_padded_to_even_and_fractional_fps_kept(tmp_path):
    path = make_video(tmp_path / "odd.mp4", n=6, width=65, height=49, fps=12.5)
    meta = probe_video(path)
    assert (meta.width, meta.height, meta.num_frames) == (66, 50, 6)
    assert meta.fps == pytest.approx(12.5)
    for i, frame in enumerate(read_frames(path)):
        cx, cy = bright_centroid(frame)
        ex, ey = expected_center(i)
        assert abs(cx - ex) < 0.5 and abs(cy - ey) < 0.5
        assert frame[:, 65].max() < 30 and frame[49].max() < 30  # the padding is black


def test_fps_override(tmp_path):
    path = make_video(tmp_path / "clip.mp4", n=3)
    assert probe_video(path, fps=25).fps == 25.0
    with pytest.raises(VideoError, match="clip.mp4"):
        probe_video(path, fps=0)


def test_missing_empty_and_random_files(tmp_path):
    with pytest.raises(VideoError, match="not found.*nothere.mp4"):
        probe_video(tmp_path / "nothere.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4"):
        probe_video(tmp_path / "empty.mp4")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="cannot open .*noise.mp4"):
        probe_video(tmp_path / "noise.mp4")
    with pytest.raises(VideoError, match="noise.mp4"):
        next(read_frames(tmp_path / "noise.mp4"))
    with pytest.raises(VideoError, match="is a directory|not a file"):
        probe_video(tmp_path)


def test_truncated_videos(tmp_path):
    data = make_video(tmp_path / "full.mp4", n=60).read_bytes()
    moov, mdat = data.find(b"moov"), data.find(b"mdat")
    assert 0 < moov < mdat  # faststart: the index comes first

    # Cut inside the frame data: the header still lists 60 frames.
    (tmp_path / "half.mp4").write_bytes(data[: mdat + (len(data) - mdat) // 2])
    with pytest.raises(VideoError, match="half.mp4 is truncated or corrupt: its header lists 60 frames"):
        probe_video(tmp_path / "half.mp4")

    # Cut right after the index: a valid container with no decodable frame.
    (tmp_path / "nodata.mp4").write_bytes(data[: mdat + 8])
    with pytest.raises(VideoError, match="nodata.mp4 has no decodable video frame"):
        probe_video(tmp_path / "nodata.mp4")

    # Cut inside the index: no stream can be read at all.
    (tmp_path / "noindex.mp4").write_bytes(data[: moov + 40])
    with pytest.raises(VideoError, match="noindex.mp4 contains no readable video stream"):
        probe_video(tmp_path / "noindex.mp4")


def test_exception_in_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(tmp_path / "out.mp4", fps=10) as w:
            for i in range(5):
                w.write(square_frame(i))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_no_frames_and_wrong_sizes(tmp_path):
    with pytest.raises(OutputError, match="no frames.*out.mp4"):
        with VideoWriter(tmp_path / "out.mp4", fps=10):
            pass
    with pytest.raises(ValueError, match="differs"):
        with VideoWriter(tmp_path / "out.mp4", fps=10) as w:
            w.write(square_frame(0))
            w.write(square_frame(0, width=32))
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(tmp_path / "out.mp4", fps=10) as w:
            w.write(square_frame(0).astype(np.float32))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="file/sub/out.mp4: .*file is a file, not a folder"):
        with VideoWriter(blocker / "sub" / "out.mp4", fps=10) as w:
            w.write(square_frame(0))
    with pytest.raises(OutputError, match="file/out.gif: .*file is a file, not a folder"):
        write_gif(blocker / "out.gif", [square_frame(0)], fps=10)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_output_dir(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="locked/out.mp4: folder .*locked is not writable"):
            with VideoWriter(locked / "out.mp4", fps=10) as w:
                w.write(square_frame(0))
    finally:
        locked.chmod(0o700)


def test_gif_downscales_caps_frame_rate_and_loops(tmp_path):
    frames = [np.kron(square_frame(i % 12), np.ones((10, 10, 1), np.uint8)) for i in range(30)]  # 640x480
    path = write_gif(tmp_path / "a.gif", frames, fps=30, max_width=480)
    assert [p.name for p in tmp_path.iterdir()] == ["a.gif"]
    with Image.open(path) as gif:
        assert gif.size == (480, 360)
        assert gif.n_frames == 15  # 30 fps capped at 15: every second frame
        assert gif.info["loop"] == 0
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
        # 1/15 s frames in GIF's 10 ms units: 70 and 60 ms mixed so that 15 frames last 1 s.
        assert set(durations) == {60, 70} and sum(durations) == 1000
        gif.seek(1)  # the second GIF frame is input frame 2
        rgb = np.asarray(gif.convert("RGB"))
    cx, cy = bright_centroid(rgb)
    ex, ey = expected_center(2)
    # Input pixel centre (ex + 0.5) * 10 maps to (ex + 0.5) * 7.5 - 0.5 at 3/4 scale.
    assert abs(cx - ((ex + 0.5) * 7.5 - 0.5)) < 1.0 and abs(cy - ((ey + 0.5) * 7.5 - 0.5)) < 1.0
