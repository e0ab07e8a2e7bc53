"""Virtual camera rigs around motion-capture clips: Human3.6M-like cameras placed so the whole motion is seen.

Mocap data (CMU, procedural motion) has 3D joints but no cameras. To train and
evaluate a 2D->3D lifter on it, this module places a few calibrated cameras
around the motion, the way Human3.6M's four cameras stand around its capture
area, and checks that every joint of every frame is in front of each camera
and projects inside its image.

Conventions are those of :mod:`poselift.geometry.camera`: world Z-up with the
ground at z = 0, camera axes x right, y down, z forward, ``orientation``
rotating camera axes into world axes and ``translation`` the camera centre, so
``X_cam = R^T (X_world - t)``.

Placement (:func:`place_cameras`), per camera:

1. Azimuths are spread evenly over ``azimuth_spread_deg`` from a random start,
   each jittered; height and horizontal distance from the motion's centre are
   drawn from the rig's ranges, roll from +-``roll_deg``; intrinsics from the
   rig (focal length, principal point, Human3.6M-like distortion).
2. The camera looks at ``aim_height`` above the centre of the motion's
   horizontal bounding box (or a given ``centre``).
3. While some joint of some frame is closer than ``min_depth`` to the camera,
   or projects within ``margin_px`` of the image border (or out of it), the
   camera steps back by ``step_m`` up to ``max_distance``; then it widens its
   field of view (shorter focal length, down to ``min_focal_scale`` times the
   drawn one). If neither makes it fit, :class:`CameraPlacementError` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from poselift.errors import PoseliftError
from poselift.geometry.camera import CameraParameters, project_to_2d, world_to_camera
from poselift.geometry.quaternion import rotmat_to_quat

__all__ = ["CameraPlacementError", "CameraRig", "look_at", "look_at_matrix", "place_cameras", "project_points",
           "fits_in_view"]


class CameraPlacementError(PoseliftError):
    """The motion cannot be framed by a camera of the rig (too large, or it passes through the camera)."""


@dataclass(frozen=True)
class CameraRig:
    """How virtual cameras are drawn and placed. Defaults mimic Human3.6M's capture setup.

    Human3.6M: 1000 x 1000 px images, focal lengths 1145 +- 5 px, principal
    points within ~15 px of the centre, radial distortion k ~ (-0.2, 0.24, 0),
    tangential ~1e-3, cameras ~1.5-1.9 m high and ~4.5-6 m from the capture
    centre, aimed at the middle of the volume. Ranges here are wider (1.2-2.0 m
    high, 3.5-7 m away) for viewpoint variety; mocap clips that roam further
    than Human3.6M's volume make a camera step back (to ``max_distance``) or
    widen (down to ``min_focal_scale`` x focal length).
    """

    resolution: tuple[int, int] = (1000, 1000)  # (width, height) pixels
    focal_length_px: float = 1145.0  # mean focal length
    focal_spread: float = 0.015  # fx, fy each drawn uniformly within +-1.5% of the mean
    principal_point_jitter_px: float = 8.0  # uniform +- around the image centre
    radial_distortion: tuple[float, float, float] = (-0.2, 0.24, 0.0)  # k1, k2, k3 means (Human3.6M-like)
    radial_distortion_std: tuple[float, float, float] = (0.01, 0.01, 0.003)
    tangential_distortion_std: float = 1e-3  # p1, p2 ~ N(0, std)
    height_range: tuple[float, float] = (1.2, 2.0)  # camera centre above the ground, metres
    distance_range: tuple[float, float] = (3.5, 7.0)  # horizontal distance to the motion's centre, metres
    max_distance: float | None = 10.0  # how far a camera may step back to fit (None: distance_range[1])
    step_m: float = 0.25  # step-back increment
    min_focal_scale: float = 0.5  # widening limit (1.0: never widen)
    widen_factor: float = 0.95  # focal length multiplier per widening step
    num_cameras: int = 4
    azimuth_spread_deg: float = 360.0  # cameras evenly spread over this arc (360: all around)
    azimuth_jitter_deg: float = 15.0  # uniform +- per camera
    roll_deg: float = 2.0  # uniform +- roll about the optical axis
    aim_height: float = 1.0  # the optical axis passes this high above the motion's centre
    min_depth: float = 0.5  # every joint at least this far in front of the camera, metres
    margin_px: float = 20.0  # every projected joint at least this far inside the image

    def __post_init__(self) -> None:
        w, h = self.resolution
        problems = []
        if w < 1 or h < 1:
            problems.append(f"resolution {self.resolution}")
        if self.num_cameras < 1:
            problems.append(f"num_cameras {self.num_cameras}")
        if not 0 < self.height_range[0] <= self.height_range[1]:
            problems.append(f"height_range {self.height_range}")
        if not 0 < self.distance_range[0] <= self.distance_range[1]:
            problems.append(f"distance_range {self.distance_range}")
        if self.max_distance is not None and self.max_distance < self.distance_range[1]:
            problems.append(f"max_distance {self.max_distance} < distance_range[1]")
        if self.focal_length_px <= 0 or not 0 <= self.focal_spread < 1:
            problems.append(f"focal_length_px {self.focal_length_px} / focal_spread {self.focal_spread}")
        if not 0 < self.min_focal_scale <= 1 or not 0 < self.widen_factor < 1 or self.step_m <= 0:
            problems.append("min_focal_scale must be in (0, 1], widen_factor in (0, 1), step_m > 0")
        if self.min_depth <= 0 or self.margin_px < 0 or 2 * self.margin_px >= min(w, h):
            problems.append(f"min_depth {self.min_depth} / margin_px {self.margin_px}")
        if problems:
            raise ValueError("invalid CameraRig: " + "; ".join(problems))

    @property
    def distance_limit(self) -> float:
        return self.distance_range[1] if self.max_distance is None else self.max_distance


def look_at_matrix(position, target, roll_deg: float = 0.0, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(3, 3) camera-to-world rotation whose columns are the camera x (right), y (down), z (forward) axes.

    The camera at ``position`` looks at ``target`` with the image upright
    (camera y along world -``up`` as far as possible), then rolled by
    ``roll_deg`` about its optical axis.
    """
    position, target, up = (np.asarray(v, dtype=np.float64) for v in (position, target, up))
    forward = target - position
    if np.linalg.norm(forward) < 1e-9:
        raise ValueError(f"look_at: camera position {position} equals the target")
    z = forward / np.linalg.norm(forward)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError(f"look_at: viewing direction {z} is parallel to up {up}; the roll is undefined")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)  # completes a right-handed frame (x cross y = z) with y pointing down
    r = np.radians(roll_deg)
    return np.stack((np.cos(r) * x + np.sin(r) * y, -np.sin(r) * x + np.cos(r) * y, z), axis=1)


def look_at(position, target, roll_deg: float = 0.0, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(4,) orientation quaternion (w, x, y, z), camera->world, of a camera at ``position`` aimed at ``target``.

    Consistent with :func:`~poselift.geometry.camera.world_to_camera`: the
    target maps onto the camera's +z axis (the principal point).
    """
    return rotmat_to_quat(torch.from_numpy(look_at_matrix(position, target, roll_deg, up))).numpy()


def _intrinsics(cam: CameraParameters) -> np.ndarray:
    return np.concatenate((cam.focal_length, cam.center, cam.radial_distortion, cam.tangential_distortion))


def project_points(points, cam: CameraParameters) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) world metres -> ((..., 2) float64 pixels with distortion, (...) camera depth z).

    The same projection (:func:`~poselift.geometry.camera.project_to_2d`) that
    training uses, so stored 2D keypoints and re-projections agree.
    """
    x_cam = world_to_camera(np.asarray(points, dtype=np.float64), cam.orientation, cam.translation)
    uv = project_to_2d(torch.from_numpy(x_cam), torch.from_numpy(_intrinsics(cam))).numpy()
    return uv, x_cam[..., 2]


def _view_problem(points: np.ndarray, cam: CameraParameters, min_depth: float, margin_px: float) -> str | None:
    """None if every point is in front of ``cam`` and inside its image with the margin, else what is wrong."""
    x_cam = world_to_camera(points, cam.orientation, cam.translation)
    depth = x_cam[..., 2]
    if depth.min() <= min_depth:
        return f"a joint comes within {max(depth.min(), 0):.2f} m of the camera plane (needs > {min_depth} m)"
    ratio = x_cam[..., :2] / depth[..., None]
    if np.abs(ratio).max() > 1:  # project_to_2d clamps x/z to [-1, 1]: beyond it the projection is not exact
        return "a joint is more than 45 degrees off the optical axis"
    uv = project_to_2d(torch.from_numpy(x_cam), torch.from_numpy(_intrinsics(cam))).numpy()
    lo, hi = uv.reshape(-1, 2).min(axis=0), uv.reshape(-1, 2).max(axis=0)
    if lo.min() < margin_px or hi[0] > cam.res_w - margin_px or hi[1] > cam.res_h - margin_px:
        return (f"joints span x {lo[0]:.0f}..{hi[0]:.0f}, y {lo[1]:.0f}..{hi[1]:.0f} px in a "
                f"{cam.res_w}x{cam.res_h} image (margin {margin_px:g} px)")
    return None


def fits_in_view(points, cam: CameraParameters, min_depth: float = 0.5, margin_px: float = 20.0) -> bool:
    """True if every point (..., 3) is more than ``min_depth`` in front of ``cam`` and projects inside its image."""
    return _view_problem(np.asarray(points, dtype=np.float64), cam, min_depth, margin_px) is None


def motion_centre(points) -> np.ndarray:
    """(2,) centre of the horizontal (x, y) bounding box of all joints of all frames."""
    flat = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return (flat[:, :2].min(axis=0) + flat[:, :2].max(axis=0)) / 2


def place_cameras(positions, rig: CameraRig | None = None, rng: np.random.Generator | int | None = None, *,
                  centre=None, id_prefix: str = "cam") -> list[CameraParameters]:
    """Cameras around a motion, each seeing every joint of every frame.

    Args:
        positions: (T, J, 3) world metres, Z-up, ground at z = 0 (any leading
            shape (..., 3) works: pass several clips concatenated along time to
            frame all of them with one rig).
        rig: the camera settings (:class:`CameraRig`; default Human3.6M-like).
        rng: a numpy Generator or a seed.
        centre: (x, y) the cameras stand around and aim at (``aim_height``
            above it); default the centre of the motion's horizontal bounding box.
        id_prefix: camera ids are ``f"{id_prefix}_cam{i}"``.
    Returns:
        ``rig.num_cameras`` cameras; ``azimuth`` is the camera's direction from
        the centre in degrees [0, 360).
    Raises:
        CameraPlacementError: a camera cannot frame the motion within the rig's limits.
    """
    rig = rig or CameraRig()
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    points = np.asarray(positions, dtype=np.float64)
    if points.shape[-1] != 3 or points.size == 0 or not np.isfinite(points).all():
        raise ValueError(f"positions must be a non-empty finite (..., 3) array, got shape {points.shape}")
    points = points.reshape(-1, 3)
    cx, cy = motion_centre(points) if centre is None else np.asarray(centre, dtype=np.float64)[:2]
    target = np.array([cx, cy, rig.aim_height])
    w, h = rig.resolution
    n = rig.num_cameras
    jitter = np.radians(rig.azimuth_jitter_deg)
    az0, cams = rng.uniform(0, 2 * np.pi), []
    for i in range(n):
        # Draw order is fixed (the synthetic dataset's cameras depend on it).
        az = az0 + np.radians(rig.azimuth_spread_deg) * i / n + rng.uniform(-jitter, jitter)
        height, dist = rng.uniform(*rig.height_range), rng.uniform(*rig.distance_range)
        roll = rng.uniform(-rig.roll_deg, rig.roll_deg)
        focal = rig.focal_length_px * rng.uniform(1 - rig.focal_spread, 1 + rig.focal_spread, 2)
        pp = np.array([w / 2, h / 2]) + rng.uniform(-rig.principal_point_jitter_px, rig.principal_point_jitter_px, 2)
        radial = np.array(rig.radial_distortion) + rng.normal(0, np.asarray(rig.radial_distortion_std))
        tangential = rng.normal(0, rig.tangential_distortion_std, 2)
        scale = 1.0
        while True:
            position = np.array([cx + dist * np.cos(az), cy + dist * np.sin(az), height])
            cam = CameraParameters(id=f"{id_prefix}_cam{i}", res_w=w, res_h=h, focal_length=focal * scale, center=pp,
                                   radial_distortion=radial, tangential_distortion=tangential,
                                   orientation=look_at(position, target, roll), translation=position,
                                   azimuth=float(np.degrees(az) % 360))
            problem = _view_problem(points, cam, rig.min_depth, rig.margin_px)
            if problem is None:
                break
            if dist < rig.distance_limit:
                dist = min(dist + rig.step_m, rig.distance_limit)
            elif scale > rig.min_focal_scale:
                scale = max(scale * rig.widen_factor, rig.min_focal_scale)
            else:
                lo, hi = points.min(axis=0), points.max(axis=0)
                raise CameraPlacementError(
                    f"{id_prefix}: camera {i} cannot frame the motion (extent {hi[0] - lo[0]:.1f} x "
                    f"{hi[1] - lo[1]:.1f} m, heights {lo[2]:.2f}..{hi[2]:.2f} m) even {dist:.2f} m away with focal "
                    f"length {focal.mean() * scale:.0f} px: {problem}"
                )
        cams.append(cam)
    return cams
