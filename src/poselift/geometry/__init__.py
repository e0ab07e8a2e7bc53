"""Pure geometry functions: quaternions, cameras and projection, Procrustes alignment."""

from poselift.geometry.camera import (
    CameraParameters,
    camera_to_world,
    image_coordinates,
    normalize_screen_coordinates,
    project_to_2d,
    project_to_2d_linear,
    undistort_normalized,
    world_to_camera,
)
from poselift.geometry.procrustes import procrustes_align
from poselift.geometry.quaternion import qinverse, qmul, qrot, quat_to_rotmat, rotmat_to_quat

__all__ = [
    "CameraParameters",
    "camera_to_world",
    "image_coordinates",
    "normalize_screen_coordinates",
    "procrustes_align",
    "project_to_2d",
    "project_to_2d_linear",
    "qinverse",
    "qmul",
    "qrot",
    "quat_to_rotmat",
    "rotmat_to_quat",
    "undistort_normalized",
    "world_to_camera",
]
