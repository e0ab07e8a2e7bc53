"""The data that flows through the video pipeline, stage by stage.

    video / keypoint file ─► Detections ─► Track2D ─► Poses3D ─► outputs

All 2D coordinates are pixels of the original video frame (x right, y down);
2D keypoints are COCO-17 (``poselift.skeleton.COCO_17``); 3D joints are
Human3.6M-17 (``poselift.skeleton.H36M_17``) in metres, camera space (x right,
y down, z forward, origin at the camera centre).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Detections", "PersonDetection", "Poses3D", "Track2D", "VideoMeta"]


@dataclass(frozen=True)
class VideoMeta:
    """What the pipeline needs to know about the source video (or the keypoint file's video)."""

    width: int
    height: int
    fps: float
    num_frames: int
    name: str = ""  # file name, for reports


@dataclass
class PersonDetection:
    """One person in one frame."""

    keypoints: np.ndarray  # (17, 2) float32 pixels, COCO-17 order
    scores: np.ndarray  # (17,) float32 confidences in [0, 1] (0: not detected)
    box: np.ndarray | None = None  # (4,) float32 x0, y0, x1, y1 pixels; None: use the keypoints' bounding box
    score: float | None = None  # whole-person score from the detector, if it gives one
    track_id: int | None = None  # identity given by the source (COCO results with track ids), else None

    def bounding_box(self) -> np.ndarray:
        """(4,) x0, y0, x1, y1: ``box`` or the bounding box of the confident keypoints."""
        if self.box is not None:
            return np.asarray(self.box, dtype=np.float32)
        ok = self.scores > 0
        pts = self.keypoints[ok] if ok.any() else self.keypoints
        return np.concatenate([pts.min(axis=0), pts.max(axis=0)]).astype(np.float32)


@dataclass
class Detections:
    """2D keypoints of every person in every frame, as a 2D source gives them."""

    frames: list[list[PersonDetection]]  # one list per frame (empty: nobody found)
    meta: VideoMeta
    source: str  # e.g. "mediapipe (model_complexity=1)", "coco-json results.json"

    @property
    def num_frames(self) -> int:
        return len(self.frames)


@dataclass
class Track2D:
    """One person over the whole video, after tracking and gap filling.

    ``detected[t]`` is False where frame t was filled by interpolation (or held at
    the ends); ``scores`` there are 0. A frame is ``valid`` when the 3D output
    there rests on a detection or on interpolation between two detections
    within the gap limit; frames outside the first/last detection are held and
    marked invalid.
    """

    keypoints: np.ndarray  # (T, 17, 2) float32 pixels, COCO-17
    scores: np.ndarray  # (T, 17) float32
    detected: np.ndarray  # (T,) bool: a detection of this person exists in frame t
    valid: np.ndarray  # (T,) bool: see above
    meta: VideoMeta
    track_id: int = 0
    num_people: int = 1  # distinct identities seen in the video
    source: str = ""


@dataclass
class Poses3D:
    """The pipeline's result for one person: what every exporter writes."""

    keypoints_3d: np.ndarray  # (T, 17, 3) float32 metres, camera space, Human3.6M-17, root trajectory included
    keypoints_2d: np.ndarray  # (T, 17, 2) float32 pixels, COCO-17 (the lifter's input)
    scores_2d: np.ndarray  # (T, 17) float32
    valid: np.ndarray  # (T,) bool
    detected: np.ndarray  # (T,) bool
    fps: float
    meta: VideoMeta
    info: dict = field(default_factory=dict)  # model name, assumed height, focal length, smoothing, ...

    @property
    def num_frames(self) -> int:
        return int(self.keypoints_3d.shape[0])

    @property
    def root_relative(self) -> np.ndarray:
        """(T, 17, 3) joints relative to the pelvis (joint 0)."""
        return self.keypoints_3d - self.keypoints_3d[:, :1]
