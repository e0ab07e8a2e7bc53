"""The built-in 2D detector: MediaPipe Pose, offline, one person per video.

MediaPipe's legacy ``solutions.pose`` graph (BlazePose) ships its weights in the
``mediapipe`` wheel for ``model_complexity=1`` only ("full" landmark model);
complexities 0 ("lite") and 2 ("heavy") download their models on first use,
which fails on an offline machine and would make results depend on network
access, so they are refused.

The graph runs in video mode (``static_image_mode=False``): it detects the
person once, then tracks them from frame to frame (re-detecting when tracking
confidence drops), so it finds **at most one person** per frame. Its 33
landmarks come normalised to the image (x / width, y / height, both in [0, 1]
inside the frame, a little outside when a limb leaves it) with a
``visibility`` in [0, 1]; they are converted to COCO-17 pixels through
:data:`poselift.skeleton.MEDIAPIPE_33`, and the visibility becomes the
keypoint score. MediaPipe's "left" is the person's left, as in COCO: for a
person facing the camera, the left shoulder is on the image's right.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from poselift.errors import ConfigError, KeypointFormatError, VideoError
from poselift.infer.types import Detections, PersonDetection, VideoMeta
from poselift.io.video import probe_video, read_frames
from poselift.skeleton import COCO_17, MEDIAPIPE_33, conversion_matrix

__all__ = ["OFFLINE_MODEL_COMPLEXITY", "MediaPipePose", "landmarks_to_coco"]

#: The only model complexity whose weights ship in the mediapipe wheel.
OFFLINE_MODEL_COMPLEXITY = 1

# (17, 33) weights: COCO joint = weighted mean of MediaPipe landmarks (a selection today).
_TO_COCO = conversion_matrix(MEDIAPIPE_33, COCO_17)


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence MediaPipe's C++ (glog/TFLite) start-up chatter on file descriptor 2.

    Python-level logging cannot reach it and GLOG_minloglevel is read too early,
    so fd 2 is pointed at /dev/null while the graph runs; the yielded stream
    still reaches the real stderr (for the progress bar). POSELIFT_VERBOSE=1
    keeps everything.
    """
    if os.environ.get("POSELIFT_VERBOSE") or not hasattr(sys.stderr, "fileno"):
        yield sys.stderr
        return
    try:
        fd = sys.stderr.fileno()
    except (OSError, ValueError):  # a captured / replaced stderr without a descriptor
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    stream = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield stream
    finally:
        stream.flush()
        stream.close()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


class _Landmark(Protocol):
    x: float
    y: float
    visibility: float


def landmarks_to_coco(landmarks: Sequence[_Landmark], width: int, height: int) -> PersonDetection:
    """One person's 33 MediaPipe landmarks (normalised x, y, visibility) as a COCO-17 detection in pixels.

    Returns keypoints (17, 2) float32 pixels and scores (17,) float32 (the
    visibility, clipped to [0, 1]).
    """
    if len(landmarks) != MEDIAPIPE_33.num_joints:
        raise KeypointFormatError(
            f"MediaPipe Pose returned {len(landmarks)} landmarks; expected {MEDIAPIPE_33.num_joints}"
        )
    raw = np.array([(lm.x, lm.y, lm.visibility) for lm in landmarks], dtype=np.float64)  # (33, 3)
    xy = raw[:, :2] * np.array([width, height], dtype=np.float64)
    vis = np.clip(raw[:, 2], 0.0, 1.0)
    return PersonDetection(
        keypoints=(_TO_COCO @ xy).astype(np.float32),
        scores=(_TO_COCO @ vis).astype(np.float32),
    )


class MediaPipePose:
    """MediaPipe Pose (BlazePose full) as a 2D keypoint source; at most one person per frame.

    Use as a context manager or call :meth:`close`; one instance can process
    several videos in turn (the tracking state is reset for each).
    """

    def __init__(
        self,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        smooth_landmarks: bool = True,
        *,
        model_complexity: int = OFFLINE_MODEL_COMPLEXITY,
    ) -> None:
        if model_complexity != OFFLINE_MODEL_COMPLEXITY:
            raise ConfigError(
                f"model_complexity={model_complexity} is not available: only model_complexity="
                f"{OFFLINE_MODEL_COMPLEXITY} has its weights inside the mediapipe package; 0 and 2 download "
                "their models at run time, which poselift does not do (it must work offline)"
            )
        for name, value in (("min_detection_confidence", min_detection_confidence),
                            ("min_tracking_confidence", min_tracking_confidence)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.smooth_landmarks = bool(smooth_landmarks)
        self.model_complexity = model_complexity
        self._graph: Any = None

    @property
    def source(self) -> str:
        """How the keypoints were made, for Detections.source and reports."""
        return f"mediapipe (model_complexity={self.model_complexity})"

    def _fresh_graph(self) -> Any:
        if self._graph is None:
            from mediapipe.python.solutions import pose as mp_pose  # slow import: only when detecting

            self._graph = mp_pose.Pose(
                static_image_mode=False,
                model_complexity=self.model_complexity,
                smooth_landmarks=self.smooth_landmarks,
                enable_segmentation=False,
                min_detection_confidence=self.min_detection_confidence,
                min_tracking_confidence=self.min_tracking_confidence,
            )
        else:
            self._graph.reset()  # a new video: forget the previous one's person and smoothing state
        return self._graph

    def detect_frames(self, frames: Iterable[np.ndarray], meta: VideoMeta, progress: bool = True) -> Detections:
        """Detect the person in consecutive frames, each RGB uint8 (H, W, 3) with H, W = meta.height, meta.width.

        Returns one list per frame read (empty where nobody was found). When the
        frame count differs from ``meta.num_frames`` (containers often misreport
        it), the returned meta has the count actually read.
        """
        with _quiet_native_stderr() as stderr:
            return self._detect(frames, meta, progress, stderr)

    def _detect(self, frames: Iterable[np.ndarray], meta: VideoMeta, progress: bool, stderr) -> Detections:
        graph = self._fresh_graph()
        expected = (meta.height, meta.width, 3)
        out: list[list[PersonDetection]] = []
        bar = tqdm(frames, total=meta.num_frames or None, desc="detect 2D", unit="frame", disable=not progress,
                   file=stderr)
        with bar:
            for t, frame in enumerate(bar):
                frame = np.asarray(frame)
                if frame.shape != expected or frame.dtype != np.uint8:
                    raise VideoError(
                        f"{meta.name or 'video'}: frame {t} is {frame.dtype} of shape {frame.shape}; "
                        f"expected RGB uint8 of shape {expected}"
                    )
                result = graph.process(np.ascontiguousarray(frame))
                if result.pose_landmarks is None:
                    out.append([])
                else:
                    out.append([landmarks_to_coco(result.pose_landmarks.landmark, meta.width, meta.height)])
        if len(out) != meta.num_frames:
            meta = dataclasses.replace(meta, num_frames=len(out))
        return Detections(frames=out, meta=meta, source=self.source)

    def detect_video(self, path: str | os.PathLike[str], progress: bool = True, fps: float | None = None) -> Detections:
        """Read a video file and detect the person in every frame.

        ``fps`` overrides the file's frame rate (see :func:`poselift.io.video.probe_video`).
        """
        meta = probe_video(Path(path), fps=fps)
        return self.detect_frames(read_frames(Path(path)), meta, progress=progress)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __enter__(self) -> "MediaPipePose":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
