"""Side-by-side result video: the input with its 2D skeleton, and the 3D pose from an orbiting viewpoint.

This is the pipeline's "look at it" output, in the spirit of VideoPose3D's
renderer, but drawn with OpenCV lines instead of matplotlib so a long video
renders at encoding speed rather than at ~20 frames a second.

Layout of every output frame (``panel_height`` pixels high)::

    +---------------------------+-----------------+
    | input frame, scaled       | 3D skeleton     |
    | + COCO-17 skeleton        | (root-relative) |
    | frame counter, tags       | on a ground grid|
    +---------------------------+-----------------+

Left limbs are blue and right limbs red in both panels (see
:mod:`poselift.viz.draw`). The 3D panel shows the pose relative to the pelvis;
the person's travel appears as the ground grid scrolling underneath and a
trail of recent pelvis positions on it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from poselift.errors import ConfigError
from poselift.infer.types import Poses3D
from poselift.io.video import GifWriter, VideoWriter, read_frames
from poselift.skeleton import COCO_17, H36M_17
from poselift.viz.draw import (
    LEFT_COLOR,
    RIGHT_COLOR,
    SHIFT,
    OrbitCamera,
    draw_label,
    draw_skeleton_2d,
    joint_sides,
    mix,
    sided_bones,
    to_fixed,
)

__all__ = ["SideBySideRenderer", "render_video"]

_COCO_BONES = sided_bones(COCO_17, extra=((5, 6), (11, 12)))  # + shoulder and hip bars
_COCO_SIDES = joint_sides(COCO_17)
_H36M_BONES = sided_bones(H36M_17)
_H36M_SIDES = joint_sides(H36M_17)

_BLANK = (36, 36, 36)  # left panel when there is no video frame
_BACKGROUND_3D = (22, 24, 30)
_GRID = (78, 84, 96)
_TRAIL = (150, 150, 150)
_WARN = (255, 150, 0)

_GRID_SPACING = 0.5  # metres between ground grid lines
_GRID_HALF = 2.0  # the grid covers +-2 m around the pelvis
_TRAIL_SECONDS = 2.0


def _even(n: float) -> int:
    n = max(2, int(round(n)))
    return n + n % 2


class SideBySideRenderer:
    """Draws the output frames of :func:`render_video` one at a time.

    Args:
        poses: the pipeline result; ``keypoints_2d`` are in pixels of a
            ``meta.width`` x ``meta.height`` frame.
        azimuth, elevation: viewpoint of the 3D panel in degrees (see
            :class:`poselift.viz.draw.OrbitCamera`: azimuth 0 is the source
            camera's view, 90 a side view).
        panel_height: output height in pixels (rounded up to even).
    """

    def __init__(self, poses: Poses3D, azimuth: float = 70.0, elevation: float = 15.0, panel_height: int = 720):
        if panel_height < 32:
            raise ConfigError(f"panel_height must be at least 32 pixels, got {panel_height}")
        self.poses = poses
        self.num_frames = poses.num_frames
        self.source_size = self._source_size(poses)
        src_w, src_h = self.source_size
        self.height = _even(panel_height)
        self.left_width = _even(src_w * self.height / src_h)
        self.right_width = self.height
        self.width = self.left_width + self.right_width
        # Keypoints in left-panel pixels; x and y scale separately because
        # both sides are rounded to even.
        scale = np.array([self.left_width / src_w, self.height / src_h], dtype=np.float64)
        self._points_2d = np.asarray(poses.keypoints_2d, dtype=np.float64) * scale
        self._scores_2d = np.asarray(poses.scores_2d, dtype=np.float64)

        # Sizes of lines, dots and text follow the panel height (tuned at 720 px).
        unit = self.height / 720.0
        self._thickness = max(1, int(round(3 * unit)))
        self._radius = max(1.5, 5.0 * unit)
        self._text = max(0.3, 0.6 * unit)

        self._relative = np.asarray(poses.root_relative, dtype=np.float64)
        root = np.asarray(poses.keypoints_3d[:, 0], dtype=np.float64)
        self._root = np.where(np.isfinite(root), root, 0.0)
        self._ground_y, head_y = self._body_levels(self._relative)
        height = max(self._ground_y - head_y, 0.5)
        self.camera = OrbitCamera(
            azimuth=float(azimuth),
            elevation=float(elevation),
            width=self.right_width,
            height=self.height,
            target=(0.0, 0.5 * (self._ground_y + head_y), 0.0),
            extent=0.62 * height,
        )
        fps = poses.fps if poses.fps and poses.fps > 0 else 30.0
        self._trail = max(1, int(round(_TRAIL_SECONDS * fps)))
        self._background_3d = self._static_3d_panel(azimuth, elevation)

    @staticmethod
    def _source_size(poses: Poses3D) -> tuple[int, int]:
        if poses.meta.width > 0 and poses.meta.height > 0:
            return int(poses.meta.width), int(poses.meta.height)
        # No frame size known (bare keypoint file): a canvas that holds every keypoint.
        pts = np.asarray(poses.keypoints_2d, dtype=np.float64).reshape(-1, 2)
        pts = pts[np.isfinite(pts).all(axis=1)]
        top = pts.max(axis=0) if len(pts) else np.array([640.0, 480.0])
        return max(16, int(np.ceil(top[0] * 1.05))), max(16, int(np.ceil(top[1] * 1.05)))

    @staticmethod
    def _body_levels(relative: np.ndarray) -> tuple[float, float]:
        """Ground and head heights (y, metres, relative to the pelvis) over the whole video.

        Medians, so a few wild frames do not move the floor; the ground sits a
        little below the lowest joint because ankles are above the floor.
        """
        y = relative[..., 1]
        ok = np.isfinite(y).all(axis=1)
        if not ok.any():
            return 0.95, -0.75
        ground = float(np.median(y[ok].max(axis=1))) + 0.08
        head = float(np.median(y[ok].min(axis=1))) - 0.1
        return ground, head

    def _static_3d_panel(self, azimuth: float, elevation: float) -> np.ndarray:
        panel = np.empty((self.height, self.right_width, 3), dtype=np.uint8)
        panel[:] = _BACKGROUND_3D
        pad = max(4, int(round(10 * self.height / 720)))
        draw_label(panel, f"3D  azimuth {azimuth:g}  elevation {elevation:g}", (pad, pad), self._text, background=None)
        # Legend: a colour swatch and the side's name, bottom left.
        size = max(6, int(round(14 * self.height / 720)))
        y = self.height - pad - size
        x = pad
        for color, name in ((LEFT_COLOR, "left"), (RIGHT_COLOR, "right")):
            cv2.rectangle(panel, (x, y), (x + size, y + size), color, -1)
            w, _ = draw_label(panel, name, (x + size, y - max(2, size // 3)), self._text * 0.9, background=None)
            x += size + w + pad
        return panel

    def _draw_ground(self, panel: np.ndarray, t: int) -> None:
        cam = self.camera
        ticks = np.arange(-_GRID_HALF, _GRID_HALF + 1e-9, _GRID_SPACING)
        # Grid lines stay fixed on the floor while the body moves, so in
        # root-relative coordinates they slide by the root's travel.
        xs = ticks - np.mod(self._root[t, 0], _GRID_SPACING)
        zs = ticks - np.mod(self._root[t, 2], _GRID_SPACING)
        xs, zs = xs[xs >= -_GRID_HALF], zs[zs >= -_GRID_HALF]
        g = self._ground_y
        ends = [((x, g, -_GRID_HALF), (x, g, _GRID_HALF)) for x in xs]
        ends += [((-_GRID_HALF, g, z), (_GRID_HALF, g, z)) for z in zs]
        uv, _ = cam.project(np.array(ends))
        for a, b in uv:
            if np.isfinite(a).all() and np.isfinite(b).all():
                cv2.line(panel, to_fixed(a), to_fixed(b), _GRID, 1, cv2.LINE_AA, SHIFT)
        # Trail: where the pelvis was over the last seconds, on the floor.
        start = max(0, t - self._trail)
        past = self._root[start : t + 1] - self._root[t]
        past[:, 1] = g
        uv, _ = cam.project(past)
        uv = uv[np.isfinite(uv).all(axis=1)]
        if len(uv) > 1:
            trail = np.round(uv * (1 << SHIFT)).astype(np.int32)
            cv2.polylines(panel, [trail], False, _TRAIL, 1, cv2.LINE_AA, SHIFT)
        if len(uv):
            cv2.circle(panel, to_fixed(uv[-1]), int(self._radius * (1 << SHIFT)), _TRAIL, 1, cv2.LINE_AA, SHIFT)

    def _panel_3d(self, t: int) -> np.ndarray:
        panel = self._background_3d.copy()
        self._draw_ground(panel, t)
        uv, depth = self.camera.project(self._relative[t])
        bone_depth = np.array([depth[a] + depth[b] for a, b, _ in _H36M_BONES])
        order = np.argsort(-np.nan_to_num(bone_depth, nan=-np.inf), kind="stable")  # far bones first
        conf = 1.0 if self.poses.detected[t] else 0.3
        draw_skeleton_2d(
            panel, uv, _H36M_BONES, _H36M_SIDES, np.full(len(uv), conf),
            self._thickness, self._radius, order=order,
        )  # fmt: skip
        return panel

    def _panel_2d(self, t: int, frame: np.ndarray | None) -> np.ndarray:
        size = (self.left_width, self.height)
        if frame is None:
            panel = np.empty((self.height, self.left_width, 3), dtype=np.uint8)
            panel[:] = _BLANK
        elif (frame.shape[1], frame.shape[0]) == size:
            panel = frame.copy()
        else:
            shrink = frame.shape[0] > self.height
            # INTER_AREA avoids aliasing when shrinking but costs 3x; only worth it for big reductions.
            interp = cv2.INTER_AREA if shrink and frame.shape[0] > 1.5 * self.height else cv2.INTER_LINEAR
            panel = cv2.resize(frame, size, interpolation=interp)
        draw_skeleton_2d(
            panel, self._points_2d[t], _COCO_BONES, _COCO_SIDES, self._scores_2d[t], self._thickness, self._radius
        )
        pad = max(4, int(round(10 * self.height / 720)))
        _, h = draw_label(panel, f"frame {t + 1}/{self.num_frames}", (pad, pad), self._text, background=(0, 0, 0))
        if not self.poses.valid[t]:
            tag = "no detection: held (outside the track)"
        elif not self.poses.detected[t]:
            tag = "no detection: interpolated"
        else:
            tag = ""
        if tag:
            draw_label(panel, tag, (pad, 2 * pad + h), self._text, color=(0, 0, 0), background=_WARN)
        if frame is None:
            draw_label(panel, "no video", (pad, self.height - pad - h), self._text, mix(_BLANK, (255,) * 3, 0.3), None)
        return panel

    def render(self, t: int, frame: np.ndarray | None = None) -> np.ndarray:
        """Output frame ``t``: (height, width, 3) uint8 RGB.

        ``frame`` is the (H, W, 3) uint8 RGB input frame (any size; it is
        scaled to the left panel) or None for a blank canvas.
        """
        out = np.empty((self.height, self.width, 3), dtype=np.uint8)
        out[:, : self.left_width] = self._panel_2d(t, frame)
        out[:, self.left_width :] = self._panel_3d(t)
        return out


def _input_frames(video_path: str | Path | None, frames: Iterable[np.ndarray] | None) -> Iterator[np.ndarray]:
    if video_path is not None:
        return read_frames(video_path)
    if frames is not None:
        return iter(frames)
    return iter(())


def render_video(
    poses: Poses3D,
    out_path: str | Path,
    *,
    video_path: str | Path | None = None,
    frames: Iterable[np.ndarray] | None = None,
    gif_path: str | Path | None = None,
    azimuth: float = 70.0,
    elevation: float = 15.0,
    panel_height: int = 720,
    progress: bool = True,
    preset: str = "veryfast",
) -> Path:
    """Render ``poses`` to a side-by-side H.264 MP4 (and optionally a GIF preview).

    Args:
        poses: the pipeline result (T frames).
        out_path: the MP4 to write (atomically).
        video_path: the input video, read frame by frame for the left panel.
        frames: the input frames instead, (H, W, 3) uint8 RGB each (e.g. an
            array (T, H, W, 3) already in memory). With neither, the 2D
            skeleton is drawn on a blank canvas of the video's size.
        gif_path: also write a small looping GIF (480 px wide, <= 15 fps).
        azimuth, elevation: 3D viewpoint in degrees (0, 0: the source camera's).
        panel_height: output height in pixels; the width follows the video's
            aspect ratio plus a square 3D panel.
        progress: show a tqdm progress bar.
        preset: x264 speed preset. Encoding, not drawing, is the slow part;
            "superfast" or "ultrafast" encode faster for 2x / 5x larger files.

    Returns:
        ``out_path`` as a Path.

    A video shorter than ``poses`` leaves the remaining frames blank (with a
    warning); extra video frames are ignored.
    """
    if video_path is not None and frames is not None:
        raise ConfigError("render_video: give video_path or frames, not both")
    renderer = SideBySideRenderer(poses, azimuth=azimuth, elevation=elevation, panel_height=panel_height)
    fps = poses.fps if poses.fps and poses.fps > 0 else (poses.meta.fps if poses.meta.fps > 0 else 30.0)
    source = _input_frames(video_path, frames)
    has_input = video_path is not None or frames is not None
    gif = GifWriter(gif_path, fps) if gif_path is not None else None
    out_path = Path(out_path)
    try:
        with VideoWriter(out_path, fps, size=(renderer.width, renderer.height), preset=preset) as writer:
            _write_all(renderer, writer, gif, source, has_input, progress)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()  # release the video file now rather than at garbage collection
    if gif is not None:
        gif.close()
    return out_path


def _write_all(
    renderer: SideBySideRenderer,
    writer: VideoWriter,
    gif: GifWriter | None,
    source: Iterator[np.ndarray],
    has_input: bool,
    progress: bool,
) -> None:
    """Render every frame into ``writer`` (and ``gif``), warning once about short or mis-sized input."""
    warned_size = warned_short = False
    src_w, src_h = renderer.source_size
    for t in tqdm(range(renderer.num_frames), desc="render", unit="frame", disable=not progress):
        frame = next(source, None)
        if has_input and frame is None and not warned_short:
            warnings.warn(f"the input video has only {t} frames for {renderer.num_frames} poses; rest left blank")
            warned_short = True
        if frame is not None and not warned_size and abs(frame.shape[1] / frame.shape[0] - src_w / src_h) > 0.01:
            warnings.warn(
                f"input frames are {frame.shape[1]}x{frame.shape[0]} but the keypoints are for "
                f"{src_w}x{src_h}; the 2D skeleton is stretched to fit"
            )
            warned_size = True
        image = renderer.render(t, frame)
        writer.write(image)
        if gif is not None:
            gif.add(image)
