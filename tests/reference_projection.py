"""Camera maths written out by hand, independent of poselift, for checking its projections."""

import numpy as np


def quat_to_matrix(q):
    """Rotation taking camera axes into world axes, from a (w, x, y, z) quaternion."""
    w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def camera_space(points, cam):
    """X_cam = R^T (X_world - t), as rows: (X - t) @ R."""
    return (np.asarray(points, np.float64) - cam.translation) @ quat_to_matrix(cam.orientation)


def project(points, cam):
    """Pinhole + Human3.6M distortion: (..., 3) world -> ((..., 2) pixels, (...) depth)."""
    xc = camera_space(points, cam)
    xy = xc[..., :2] / xc[..., 2:]
    r2 = np.sum(xy**2, axis=-1, keepdims=True)
    k1, k2, k3 = cam.radial_distortion
    p = cam.tangential_distortion
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tangential = xy[..., :1] * p[0] + xy[..., 1:] * p[1]
    return cam.focal_length * (xy * (radial + tangential) + p * r2) + cam.center, xc[..., 2]
