"""Fast skeleton drawing with OpenCV, shared by the video renderer.

Rendering a whole video through matplotlib costs ~50 ms a frame; drawing the
few dozen lines of a skeleton with ``cv2.line`` costs well under 1 ms. This
module holds the pieces: side colours (left and right limbs get the same
colours in every panel), bone lists tagged with their side, 2D skeleton
drawing with confidence-scaled joints, and :class:`OrbitCamera`, a pinhole
camera circling the body that projects 3D joints for the 3D panel.

Images are (H, W, 3) uint8 RGB; colours are RGB tuples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from poselift.skeleton import Skeleton

__all__ = [
    "CENTER_COLOR",
    "LEFT_COLOR",
    "RIGHT_COLOR",
    "OrbitCamera",
    "SHIFT",
    "SIDE_COLORS",
    "draw_label",
    "draw_skeleton_2d",
    "joint_sides",
    "mix",
    "sided_bones",
    "to_fixed",
]

LEFT_COLOR = (40, 160, 255)  # blue
RIGHT_COLOR = (255, 60, 40)  # red
CENTER_COLOR = (255, 210, 0)  # amber: spine, head, hip and shoulder bars
SIDE_COLORS = (CENTER_COLOR, LEFT_COLOR, RIGHT_COLOR)  # indexed by side: 0 centre, 1 left, 2 right
LOW_CONFIDENCE_COLOR = (128, 128, 128)

# cv2 drawing takes fixed-point coordinates; 4 fractional bits keep sub-pixel
# positions so slow motion does not jitter by whole pixels.
SHIFT = 4
_ONE = 1 << SHIFT


def mix(color: tuple[int, int, int], other: tuple[int, int, int], weight: float) -> tuple[int, int, int]:
    """``weight`` of ``color`` plus ``1 - weight`` of ``other``, as an int RGB tuple."""
    w = min(max(float(weight), 0.0), 1.0)
    return tuple(int(round(w * a + (1.0 - w) * b)) for a, b in zip(color, other))  # type: ignore[return-value]


def sided_bones(skeleton: Skeleton, extra: tuple[tuple[int, int], ...] = ()) -> list[tuple[int, int, int]]:
    """``(child, parent, side)`` for every bone of ``skeleton`` plus ``extra`` pairs.

    A bone takes the side of its child joint (1 left, 2 right, 0 centre), so
    the thorax-to-left-shoulder bone is a left bone; extra bones (e.g. the
    shoulder bar) are centre bones.
    """
    left, right = set(skeleton.joints_left), set(skeleton.joints_right)
    out = [(c, p, 1 if c in left else 2 if c in right else 0) for c, p in skeleton.bones]
    out += [(a, b, 0) for a, b in extra]
    return out


def to_fixed(point: np.ndarray) -> tuple[int, int]:
    """(2,) pixel coordinates as the fixed-point ints cv2 drawing takes with ``shift=SHIFT``."""
    return int(round(float(point[0]) * _ONE)), int(round(float(point[1]) * _ONE))


def draw_skeleton_2d(
    image: np.ndarray,
    points: np.ndarray,
    bones: list[tuple[int, int, int]],
    joint_sides: np.ndarray,
    scores: np.ndarray | None = None,
    thickness: int = 2,
    radius: float = 4.0,
    order: np.ndarray | None = None,
) -> None:
    """Draw a skeleton in place.

    Args:
        image: (H, W, 3) uint8 RGB, modified in place.
        points: (J, 2) pixel coordinates in ``image``; non-finite joints are skipped.
        bones: ``(a, b, side)`` triples from :func:`sided_bones`.
        joint_sides: (J,) side of every joint (0 centre, 1 left, 2 right).
        scores: (J,) confidences in [0, 1]; low scores fade joints and bones to
            grey and shrink the joint dots. None: all confident.
        thickness: bone line width in pixels.
        radius: joint dot radius at score 1 (a score-0 joint gets a third of it).
        order: drawing order of the bones (indices into ``bones``), e.g. far to
            near for the 3D view; None: as given.
    """
    num = points.shape[0]
    s = np.ones(num, dtype=np.float32) if scores is None else np.clip(np.nan_to_num(scores), 0.0, 1.0)
    finite = np.isfinite(points).all(axis=1)
    for i in order if order is not None else range(len(bones)):
        a, b, side = bones[i]
        if not (finite[a] and finite[b]):
            continue
        conf = min(s[a], s[b])
        color = mix(SIDE_COLORS[side], LOW_CONFIDENCE_COLOR, 0.35 + 0.65 * conf)
        cv2.line(image, to_fixed(points[a]), to_fixed(points[b]), color, thickness, cv2.LINE_AA, SHIFT)
    for j in range(num):
        if not finite[j]:
            continue
        color = mix(SIDE_COLORS[int(joint_sides[j])], LOW_CONFIDENCE_COLOR, 0.35 + 0.65 * s[j])
        r = radius * (1.0 + 2.0 * s[j]) / 3.0
        cv2.circle(image, to_fixed(points[j]), max(1, int(round(r * _ONE))), color, -1, cv2.LINE_AA, SHIFT)


def joint_sides(skeleton: Skeleton) -> np.ndarray:
    """(J,) int side of every joint: 0 centre, 1 left, 2 right."""
    sides = np.zeros(skeleton.num_joints, dtype=np.int64)
    sides[list(skeleton.joints_left)] = 1
    sides[list(skeleton.joints_right)] = 2
    return sides


def draw_label(
    image: np.ndarray,
    text: str,
    origin: tuple[int, int],
    scale: float = 0.6,
    color: tuple[int, int, int] = (255, 255, 255),
    background: tuple[int, int, int] | None = (0, 0, 0),
    pad: int = 4,
) -> tuple[int, int]:
    """Text with its top-left corner at ``origin`` on an optional filled box; returns the box's (width, height)."""
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x, y = origin
    w, h = tw + 2 * pad, th + base + 2 * pad
    if background is not None:
        cv2.rectangle(image, (x, y), (x + w, y + h), background, -1)
    cv2.putText(image, text, (x + pad, y + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)
    return w, h


@dataclass(frozen=True)
class OrbitCamera:
    """A pinhole camera circling a target point, for viewing camera-space poses from the side.

    Points are in the source camera's frame (x right, y down, z forward,
    metres); the ground is assumed horizontal in that frame (a level camera).
    ``azimuth`` 0 looks from where the source camera stood (the 3D view then
    matches the video); positive azimuth swings the viewpoint towards the
    source camera's +x (the image's right), 90 looks from that side.
    ``elevation`` raises the viewpoint above the target (degrees, < 90).

    ``extent`` metres around the target fill half the shorter image side.
    """

    azimuth: float
    elevation: float
    width: int
    height: int
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    distance: float = 6.0
    extent: float = 1.25

    @cached_property
    def rotation(self) -> np.ndarray:
        """(3, 3) rows: the view's right, down and forward axes in source-camera coordinates."""
        az, el = math.radians(self.azimuth), math.radians(min(max(self.elevation, -89.0), 89.0))
        # Unit vector from the target to the viewpoint; (0, 0, -1) is the source camera's side.
        back = np.array([math.sin(az) * math.cos(el), -math.sin(el), -math.cos(az) * math.cos(el)])
        forward = -back
        right = np.cross(np.array([0.0, 1.0, 0.0]), forward)  # world down x forward
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        return np.stack([right, down, forward])

    @cached_property
    def center(self) -> np.ndarray:
        """(3,) viewpoint position in source-camera coordinates."""
        return np.asarray(self.target) - self.distance * self.rotation[2]

    @property
    def focal(self) -> float:
        return 0.5 * min(self.width, self.height) * self.distance / self.extent

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (..., 3) points; returns (..., 2) pixel coordinates and (...,) depths.

        Points at or behind the viewpoint get NaN pixel coordinates.
        """
        view = (np.asarray(points, dtype=np.float64) - self.center) @ self.rotation.T
        depth = view[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = self.focal * view[..., :2] / depth[..., None]
        uv[..., 0] += 0.5 * self.width
        uv[..., 1] += 0.5 * self.height
        uv[depth <= 1e-3] = np.nan
        return uv, depth
