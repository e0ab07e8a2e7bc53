"""Read and write video files for the video pipeline.

Reading goes through OpenCV (``cv2.VideoCapture``), which decodes nearly every
container and codec people record with. OpenCV's header frame count is not
trustworthy (it is an estimate for some containers, and a truncated MP4 whose
index sits at the front still claims every frame), so :func:`probe_video`
checks it against the packets ffmpeg can actually demux and counts by decoding
when they disagree.

Writing goes through the ffmpeg binary shipped in the ``imageio-ffmpeg`` wheel,
because OpenCV's writer cannot produce H.264 (``libx264``) with ``yuv420p``
pixels: the only combination every browser plays. Output is written to a
temporary file beside the target and renamed on success, so a crash never
leaves a half-written video behind.

All frames are ``(H, W, 3)`` uint8 **RGB**.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

import cv2
import imageio_ffmpeg
import numpy as np
from PIL import Image

from poselift.atomic import atomic_write
from poselift.errors import OutputError, VideoError
from poselift.infer.types import VideoMeta

__all__ = ["GifWriter", "VideoWriter", "probe_video", "read_frames", "write_gif"]

# Codecs that take x264-style rate control options (-crf, -preset).
_CRF_CODECS = ("libx264", "libx265")


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"video file not found: {path}")
    if not path.is_file():
        raise VideoError(f"video path is not a file: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"video file is empty (0 bytes): {path}")


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        _, errors = _scan_packets(path)
        if "matches no streams" in errors:
            raise VideoError(f"{path} contains no readable video stream (audio only, or a damaged header)")
        reason = f" (ffmpeg: {_main_error(errors)})" if errors else ""
        raise VideoError(f"cannot open {path} as a video: not a video file, or corrupt or truncated{reason}")
    return cap


def _scan_packets(path: Path) -> tuple[int | None, str]:
    """Count the video packets ffmpeg can demux, without decoding them.

    Returns ``(count, errors)``: ``count`` is None when ffmpeg could not read
    the file at all; ``errors`` holds ffmpeg's error lines (e.g. "partial
    file" for a truncated MP4), stripped of their ``[demuxer @ 0x...]`` prefix.
    """
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error",
        "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null",
        "-progress", "pipe:1", "-nostats", "-",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=600)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, str(err)
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip() for line in proc.stderr.splitlines()]
    errors = "\n".join(line for line in lines if line)
    counts = re.findall(r"^frame=(\d+)\s*$", proc.stdout, flags=re.MULTILINE)
    if proc.returncode != 0 or not counts:
        return None, errors
    return int(counts[-1]), errors


def _main_error(errors: str) -> str:
    """The most telling of ffmpeg's error lines: the demuxer's verdict if there is one."""
    lines = errors.splitlines()
    for line in lines:
        if "partial file" in line or "moov atom" in line:
            return line
    return lines[0] if lines else ""


def _count_by_decoding(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        # grab() decodes but skips the colour conversion of read(): the count is
        # exactly the number of frames read_frames will yield.
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def probe_video(path: str | Path, fps: float | None = None) -> VideoMeta:
    """Size, frame rate and frame count of a video file.

    Args:
        path: the video file.
        fps: frame rate to use instead of the file's (needed when the header
            has none, e.g. some screen recordings and raw streams).

    Returns:
        :class:`VideoMeta`; width and height are those of the decoded frames
        (after the rotation phones store in metadata is applied).

    Raises:
        VideoError: the file is missing, empty, not a video, truncated or
            corrupt, has no decodable frame, or has no valid frame rate and no
            ``fps`` was given.
    """
    path = Path(path)
    _check_file(path)
    cap = _open(path)
    try:
        ok, first = cap.read()
        if not ok or first is None:
            raise VideoError(f"{path} has no decodable video frame (empty or corrupt video stream)")
        header_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        header_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()
    height, width = first.shape[:2]

    packets, errors = _scan_packets(path)
    if errors:
        # Demuxing complained (e.g. "partial file"): neither the header nor the
        # packet count can be trusted, only what decodes.
        decoded = _count_by_decoding(path)
        if header_count > 0 and decoded < header_count:
            raise VideoError(
                f"{path} is truncated or corrupt: its header lists {header_count} frames but only "
                f"{decoded} can be decoded (ffmpeg: {_main_error(errors)})"
            )
        num_frames = decoded
    elif packets:
        num_frames = packets
    elif header_count > 0:
        num_frames = header_count
    else:
        num_frames = _count_by_decoding(path)
    if num_frames <= 0:
        raise VideoError(f"{path} has no decodable video frame (empty or corrupt video stream)")

    if fps is not None:
        if not (math.isfinite(fps) and fps > 0):
            raise VideoError(f"frame rate override for {path} must be a positive number, got {fps}")
        rate = float(fps)
    elif math.isfinite(header_fps) and 0 < header_fps <= 1000:
        rate = header_fps
    else:
        raise VideoError(
            f"{path} has no valid frame rate in its header (got {header_fps}); give the frame rate explicitly"
        )
    return VideoMeta(width=int(width), height=int(height), fps=rate, num_frames=int(num_frames), name=path.name)


def read_frames(path: str | Path, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yield frames ``start`` .. ``stop - 1`` as (H, W, 3) uint8 RGB arrays.

    ``stop=None`` reads to the end of the file. When ``stop`` is given and the
    video ends before it, :class:`VideoError` is raised after the last frame,
    so a caller that asks for ``probe_video(path).num_frames`` frames either
    gets them all or an error, never silently fewer.
    """
    path = Path(path)
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"invalid frame range start={start} stop={stop}")
    _check_file(path)
    cap = _open(path)
    try:
        # Skip by decoding rather than seeking: OpenCV's frame seek lands on the
        # wrong frame for some codecs and containers (open GOPs, edit lists).
        for index in range(start):
            if not cap.grab():
                raise VideoError(f"{path} has only {index} frames; cannot start reading at frame {start}")
        index = start
        while stop is None or index < stop:
            ok, frame = cap.read()
            if not ok or frame is None:
                if stop is not None:
                    raise VideoError(f"{path} ended after {index} frames; expected at least {stop}")
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _output_error(path: Path, err: OSError) -> OutputError:
    """One-line reason why ``path`` cannot be written."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return OutputError(f"cannot write {path}: {ancestor} is a file, not a folder")
    return OutputError(f"cannot write {path}: folder {path.parent} is not writable ({err.strerror or err})")


def _make_temp(path: Path) -> Path:
    """An empty temporary file beside ``path`` (same suffix so ffmpeg picks the same container)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as err:
        raise _output_error(path, err) from None
    os.close(fd)
    return Path(tmp)


class VideoWriter:
    """Encode RGB frames to an H.264 MP4 (or another container chosen by the suffix).

    Use as a context manager::

        with VideoWriter("out.mp4", fps=30) as w:
            for frame in frames:      # (H, W, 3) uint8 RGB
                w.write(frame)

    Frames of odd width or height are padded (black, right and bottom) to even
    size, which ``yuv420p`` requires. The file appears only when the ``with``
    block exits cleanly; on an exception the partial output is deleted.

    Args:
        path: output file (``.mp4`` recommended; ``.mov``/``.mkv`` also work).
        fps: frame rate.
        size: (width, height) of the frames; None: taken from the first frame.
        codec: ffmpeg encoder name.
        crf: x264/x265 quality, 0 (lossless) .. 51 (worst); 18-23 looks good.
        preset: x264/x265 speed preset ("ultrafast" .. "veryslow").

    Raises:
        OutputError: the output folder cannot be written, ffmpeg fails, or no
            frame was written.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        size: tuple[int, int] | None = None,
        codec: str = "libx264",
        crf: int = 20,
        preset: str = "veryfast",
    ) -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {crf}")
        self.path = Path(path)
        self.fps = float(fps)
        self.size = (int(size[0]), int(size[1])) if size is not None else None
        self.codec = codec
        self.crf = int(crf)
        self.preset = preset
        self.frames_written = 0
        self._tmp: Path | None = None
        self._gen = None  # the imageio-ffmpeg generator, started on the first frame

    def __enter__(self) -> "VideoWriter":
        self._tmp = _make_temp(self.path)
        return self

    def _start(self, width: int, height: int) -> None:
        assert self._tmp is not None
        params = []
        if width % 2 or height % 2:
            params += ["-vf", f"pad={width + width % 2}:{height + height % 2}:0:0:black"]
        if self.codec in _CRF_CODECS:
            params += ["-crf", str(self.crf), "-preset", self.preset]
        if self.path.suffix.lower() in (".mp4", ".mov", ".m4v"):
            params += ["-movflags", "+faststart"]  # index first: browsers start playing before the download ends
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp),
            (width, height),
            fps=self.fps,
            codec=self.codec,
            pix_fmt_out="yuv420p",
            quality=None,
            macro_block_size=1,  # we pad to even ourselves; imageio would rescale to a multiple of 16
            ffmpeg_log_level="error",
            output_params=params,
        )
        self._gen.send(None)

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        if self._tmp is None:
            raise RuntimeError("VideoWriter.write() called outside its 'with' block")
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
        height, width = frame.shape[:2]
        if self.size is None:
            self.size = (width, height)
        if (width, height) != self.size:
            raise ValueError(f"frame size {width}x{height} differs from the video size {self.size[0]}x{self.size[1]}")
        if self._gen is None:
            self._start(width, height)
        try:
            self._gen.send(np.ascontiguousarray(frame))
        except OSError as err:
            raise OutputError(f"ffmpeg failed while writing {self.path}: {str(err).splitlines()[0]}") from None
        self.frames_written += 1

    def _close_encoder(self) -> None:
        if self._gen is not None:
            gen, self._gen = self._gen, None
            gen.close()  # flushes and waits for ffmpeg to finish the file

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tmp, self._tmp = self._tmp, None
        if tmp is None:
            return
        try:
            self._close_encoder()
            if exc_type is not None:
                return
            if self.frames_written == 0:
                raise OutputError(f"no frames were written to {self.path}")
            if tmp.stat().st_size == 0:
                raise OutputError(f"ffmpeg failed to encode {self.path} (codec {self.codec})")
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------
# GIF
# ---------------------------------------------------------------------------


class GifWriter:
    """Collect frames for an animated GIF, downscaled and decimated as they arrive.

    GIFs are for short previews: frames wider than ``max_width`` are scaled
    down, and frames are skipped so the GIF runs at no more than ``max_fps``
    (GIF frame delays are in 1/100 s and browsers clamp short ones, so high
    rates only make files bigger). Kept frames are palettised at once so memory
    stays at one byte per pixel. The file is written atomically on ``close()``
    and loops forever.

    Note that Pillow merges consecutive identical frames into one longer frame.
    """

    def __init__(self, path: str | Path, fps: float, max_width: int = 480, max_fps: float = 15.0) -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps}")
        self.path = Path(path)
        self.step = max(1, math.ceil(fps / max_fps - 1e-9))
        self.duration_ms = 1000.0 * self.step / fps
        self.max_width = int(max_width)
        self._frames: list[Image.Image] = []
        self._seen = 0

    def add(self, frame: np.ndarray) -> None:
        """Offer one (H, W, 3) uint8 RGB frame; only every ``step``-th is kept."""
        index, self._seen = self._seen, self._seen + 1
        if index % self.step:
            return
        height, width = frame.shape[:2]
        if width > self.max_width:
            new_h = max(1, round(height * self.max_width / width))
            frame = cv2.resize(frame, (self.max_width, new_h), interpolation=cv2.INTER_AREA)
        image = Image.fromarray(np.ascontiguousarray(frame), mode="RGB")
        self._frames.append(image.convert("P", palette=Image.Palette.ADAPTIVE, colors=256))

    def close(self) -> Path:
        if not self._frames:
            raise OutputError(f"no frames were written to {self.path}")
        first, rest = self._frames[0], self._frames[1:]
        # GIF delays are whole 1/100 s: alternate e.g. 70 and 60 ms so the
        # playback time stays right (1/15 s frames would all round to 60 ms).
        ends = np.round(np.arange(len(self._frames) + 1) * self.duration_ms / 10.0) * 10
        durations = [int(d) for d in np.diff(ends)]

        def save(tmp: str) -> None:
            first.save(
                tmp, format="GIF", save_all=True, append_images=rest,
                duration=durations, loop=0, disposal=1,
            )  # fmt: skip

        try:
            return atomic_write(self.path, save)
        except OSError as err:
            raise _output_error(self.path, err) from None


def write_gif(
    path: str | Path, frames: Iterable[np.ndarray], fps: float, max_width: int = 480, max_fps: float = 15.0
) -> Path:
    """Write (H, W, 3) uint8 RGB frames to a looping GIF; see :class:`GifWriter`."""
    gif = GifWriter(path, fps, max_width=max_width, max_fps=max_fps)
    for frame in frames:
        gif.add(frame)
    return gif.close()
