"""Pinhole cameras with Human3.6M's distortion model, world<->camera transforms and
the screen normalisation VideoPose3D trains with.

Conventions (those of Human3.6M and VideoPose3D):
- A camera's ``orientation`` quaternion rotates camera axes into world axes and
  ``translation`` is the camera centre in world coordinates (metres), so
  ``X_cam = R^T (X_world - t)``.
- Camera axes: x right, y down, z forward (into the scene).
- Screen normalisation maps pixel ``[0, w]`` to ``[-1, 1]`` and keeps the aspect
  ratio: ``x_n = x / w * 2 - [1, h / w]``. Focal length and principal point are
  normalised the same way, giving the 9-vector ``(fx, fy, cx, cy, k1, k2, k3, p1, p2)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from poselift.geometry.quaternion import qinverse, qrot


@dataclass
class CameraParameters:
    """One calibrated camera; pixels for intrinsics, metres for translation."""

    id: str
    res_w: int
    res_h: int
    focal_length: np.ndarray = field(default_factory=lambda: np.array([1.0, 1.0]))  # (2,) px
    center: np.ndarray = field(default_factory=lambda: np.zeros(2))  # (2,) px
    radial_distortion: np.ndarray = field(default_factory=lambda: np.zeros(3))  # k1, k2, k3
    tangential_distortion: np.ndarray = field(default_factory=lambda: np.zeros(2))  # p1, p2
    orientation: np.ndarray = field(default_factory=lambda: np.array([1.0, 0, 0, 0]))  # (4,) camera->world
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))  # (3,) metres, world
    azimuth: float = 0.0  # only for visualisation

    def __post_init__(self) -> None:
        for name in ("focal_length", "center", "radial_distortion", "tangential_distortion", "orientation", "translation"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraParameters):
            return NotImplemented
        a, b = self.to_dict(), other.to_dict()
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    __hash__ = None  # mutable arrays: not hashable

    def intrinsic_vector(self) -> np.ndarray:
        """(9,) float32 ``(f, c, k, p)`` in normalised screen units, as VideoPose3D's ``cam['intrinsic']``."""
        f = self.focal_length / self.res_w * 2
        c = normalize_screen_coordinates(self.center, self.res_w, self.res_h)
        return np.concatenate((f, c, self.radial_distortion, self.tangential_distortion)).astype(np.float32)

    def to_dict(self) -> dict:
        out: dict = {"id": self.id, "res_w": int(self.res_w), "res_h": int(self.res_h), "azimuth": float(self.azimuth)}
        for name in ("focal_length", "center", "radial_distortion", "tangential_distortion", "orientation", "translation"):
            out[name] = [float(v) for v in getattr(self, name)]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "CameraParameters":
        return cls(**d)


def _as_tensor(x) -> tuple[torch.Tensor, bool]:
    if isinstance(x, torch.Tensor):
        return x, False
    return torch.as_tensor(np.asarray(x, dtype=np.float64)), True


def normalize_screen_coordinates(x, w: float, h: float):
    """Pixels (..., 2) -> normalised screen coordinates (..., 2), ``[0, w] -> [-1, 1]``."""
    if isinstance(x, torch.Tensor):
        return x / w * 2 - x.new_tensor([1.0, h / w])
    return np.asarray(x) / w * 2 - np.array([1.0, h / w])


def image_coordinates(x, w: float, h: float):
    """Inverse of :func:`normalize_screen_coordinates`: (..., 2) -> pixels."""
    if isinstance(x, torch.Tensor):
        return (x + x.new_tensor([1.0, h / w])) * w / 2
    return (np.asarray(x) + np.array([1.0, h / w])) * w / 2


def world_to_camera(x, orientation, translation):
    """World points (..., 3) -> camera space (..., 3). Numpy in, numpy out (float32 kept)."""
    xt, was_np = _as_tensor(x)
    q = torch.as_tensor(np.asarray(orientation), dtype=xt.dtype) if not isinstance(orientation, torch.Tensor) else orientation
    t = torch.as_tensor(np.asarray(translation), dtype=xt.dtype) if not isinstance(translation, torch.Tensor) else translation
    out = qrot(qinverse(q).expand(*xt.shape[:-1], 4), xt - t)
    return _back(out, x, was_np)


def camera_to_world(x, orientation, translation):
    """Camera-space points (..., 3) -> world (..., 3)."""
    xt, was_np = _as_tensor(x)
    q = torch.as_tensor(np.asarray(orientation), dtype=xt.dtype) if not isinstance(orientation, torch.Tensor) else orientation
    t = torch.as_tensor(np.asarray(translation), dtype=xt.dtype) if not isinstance(translation, torch.Tensor) else translation
    out = qrot(q.expand(*xt.shape[:-1], 4), xt) + t
    return _back(out, x, was_np)


def _back(out: torch.Tensor, original, was_np: bool):
    if not was_np:
        return out
    dtype = np.asarray(original).dtype
    return out.numpy().astype(dtype if np.issubdtype(dtype, np.floating) else np.float64)


def _broadcast_intrinsics(x: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    if intrinsics.shape[-1] != 9:
        raise ValueError(f"intrinsics must have 9 values (f, c, k, p) on the last axis, got {tuple(intrinsics.shape)}")
    while intrinsics.dim() < x.dim():
        intrinsics = intrinsics.unsqueeze(-2)
    return intrinsics


def project_to_2d(x: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Project camera-space points with radial (k1-k3) and tangential (p1, p2) distortion.

    Args:
        x: (N, ..., 3) points in camera space.
        intrinsics: (N, 9) ``(fx, fy, cx, cy, k1, k2, k3, p1, p2)`` or (9,) for all.
    Returns:
        (N, ..., 2) image points in the units of ``f`` and ``c``.

    Follows Human3.6M's MATLAB projection as VideoPose3D does, including the
    clamp of ``x/z`` to [-1, 1]: it keeps points near or behind the image
    plane from exploding the distortion polynomial during semi-supervised training.
    """
    intrinsics = _broadcast_intrinsics(x, intrinsics)
    f, c, k, p = intrinsics[..., :2], intrinsics[..., 2:4], intrinsics[..., 4:7], intrinsics[..., 7:9]
    xx = torch.clamp(x[..., :2] / x[..., 2:], min=-1, max=1)
    r2 = torch.sum(xx**2, dim=-1, keepdim=True)
    radial = 1 + torch.sum(k * torch.cat((r2, r2**2, r2**3), dim=-1), dim=-1, keepdim=True)
    tangential = torch.sum(p * xx, dim=-1, keepdim=True)
    distorted = xx * (radial + tangential) + p * r2
    return f * distorted + c


def project_to_2d_linear(x: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Like :func:`project_to_2d` with the distortion terms ignored."""
    intrinsics = _broadcast_intrinsics(x, intrinsics)
    xx = torch.clamp(x[..., :2] / x[..., 2:], min=-1, max=1)
    return intrinsics[..., :2] * xx + intrinsics[..., 2:4]


def undistort_normalized(xy: torch.Tensor, radial: torch.Tensor, tangential: torch.Tensor, iterations: int = 20) -> torch.Tensor:
    """Invert the distortion of :func:`project_to_2d` on normalised image points.

    Args:
        xy: (..., 2) distorted points ``(u - c) / f``.
        radial: (..., 3) k1-k3; tangential: (..., 2) p1, p2 (broadcast against ``xy``).
    Returns:
        (..., 2) undistorted ``x/z, y/z``, by fixed-point iteration (converges for
        the mild distortion of real lenses such as Human3.6M's).
    """
    und = xy.clone()
    for _ in range(iterations):
        r2 = torch.sum(und**2, dim=-1, keepdim=True)
        rad = 1 + torch.sum(radial * torch.cat((r2, r2**2, r2**3), dim=-1), dim=-1, keepdim=True)
        tan = torch.sum(tangential * und, dim=-1, keepdim=True)
        und = (xy - tangential * r2) / (rad + tan)
    return und
