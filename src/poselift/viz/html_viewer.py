"""A single-file HTML page that plays back the 3D poses of one person.

Why HTML: a user who ran the video pipeline wants to look at the result from
any angle without installing anything, and to send it to someone else. The
page is one file that works offline: the drawing code (a small orbit camera
and perspective projection on a ``<canvas>``, plain JavaScript, no library)
and the data are inline; it loads nothing from the network or the disk.

The data is JSON in ``<script type="application/json" id="poselift-data">``:
root-relative joints and the root trajectory as integer millimetres (camera
axes: x right, y down, z forward), flattened frame-major. Millimetres keep the
file small (a 2,000-frame video is well under 1 MB) and are finer than any
monocular estimate. Values that are not finite are stored as ``null``.

The page reads its start state from the URL hash
(``#frame=N&azimuth=DEG&elevation=DEG&zoom=X&speed=S&view=follow|world|rel&play=0``),
exposes ``window.poseliftViewer`` and sets ``data-ready="1"`` on ``<body>``
once a frame is drawn, so tests and scripts can drive it. View convention:
up on screen is camera -y; azimuth 0 looks from the recording camera (a person
facing the camera has their left on the image right), azimuth 90 looks from
the camera's right-hand side, positive elevation looks from above.
"""

from __future__ import annotations

import html
import json
import math
import re
from importlib import resources
from pathlib import Path

import numpy as np

from poselift.atomic import atomic_write_text
from poselift.errors import DataFormatError
from poselift.infer.types import Poses3D
from poselift.skeleton import H36M_17

__all__ = ["extract_viewer_data", "render_html_viewer", "viewer_payload", "write_html_viewer"]

TEMPLATE_NAME = "viewer_template.html"
DATA_ELEMENT_ID = "poselift-data"
_PLACEHOLDER = re.compile(r"__POSELIFT_(TITLE|DATA)__")
_DATA_RE = re.compile(
    r'<script type="application/json" id="' + DATA_ELEMENT_ID + r'">(.*?)</script>', re.DOTALL
)


def _millimetres(a: np.ndarray) -> list:
    """Flatten metres to a list of integer millimetres; non-finite values become None (JSON null)."""
    q = np.rint(np.asarray(a, dtype=np.float64) * 1000.0).ravel()
    finite = np.isfinite(q)
    out = np.where(finite, q, 0).astype(np.int64).tolist()
    for i in np.flatnonzero(~finite):
        out[i] = None
    return out


def _flags(a: np.ndarray) -> list[int]:
    return np.asarray(a, dtype=bool).astype(np.int64).tolist()


def _scalar_info(info: dict) -> dict:
    """The JSON-safe scalar entries of ``Poses3D.info`` (model name, focal length, ...), for display."""
    out = {}
    for key, value in info.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool) or isinstance(value, int):
            out[str(key)] = value
        elif isinstance(value, float) and math.isfinite(value):
            out[str(key)] = value
        elif isinstance(value, str):
            out[str(key)] = value[:200]
    return out


def _check(poses: Poses3D) -> None:
    kp = np.asarray(poses.keypoints_3d)
    j = H36M_17.num_joints
    if kp.ndim != 3 or kp.shape[1:] != (j, 3) or kp.shape[0] < 1:
        raise DataFormatError(
            f"Poses3D.keypoints_3d: expected shape (T, {j}, 3) with T >= 1 (Human3.6M-17, metres), got {kp.shape}"
        )
    for name in ("valid", "detected"):
        shape = np.shape(getattr(poses, name))
        if shape != (kp.shape[0],):
            raise DataFormatError(f"Poses3D.{name}: expected shape ({kp.shape[0]},) to match keypoints_3d, got {shape}")
    if not (math.isfinite(float(poses.fps)) and float(poses.fps) > 0):
        raise DataFormatError(f"Poses3D.fps: expected a positive frame rate, got {poses.fps}")


def _default_title(poses: Poses3D) -> str:
    name = getattr(poses.meta, "name", "")
    return f"poselift 3D poses: {name}" if name else "poselift 3D poses"


def viewer_payload(poses: Poses3D, *, title: str | None = None) -> dict:
    """The JSON object the page embeds.

    ``joints``: (T * 17 * 3,) root-relative joints, ``root``: (T * 3,) pelvis
    trajectory, both integer millimetres in camera axes, frame-major;
    ``valid`` / ``detected``: (T,) 0/1.
    """
    _check(poses)
    kp = np.asarray(poses.keypoints_3d, dtype=np.float64)
    root = kp[:, 0, :]
    meta = poses.meta
    return {
        "format": "poselift-viewer",
        "version": 1,
        "title": title if title is not None else _default_title(poses),
        "fps": float(poses.fps),
        "numFrames": int(kp.shape[0]),
        "numJoints": int(kp.shape[1]),
        "units": "mm",
        "axes": "camera: x right, y down, z forward",
        "skeleton": {
            "name": H36M_17.name,
            "jointNames": list(H36M_17.joint_names),
            "parents": list(H36M_17.parents),
            "jointsLeft": list(H36M_17.joints_left),
            "jointsRight": list(H36M_17.joints_right),
        },
        "joints": _millimetres(kp - root[:, None, :]),
        "root": _millimetres(root),
        "valid": _flags(poses.valid),
        "detected": _flags(poses.detected),
        "video": {
            "name": str(getattr(meta, "name", "")),
            "width": int(getattr(meta, "width", 0)),
            "height": int(getattr(meta, "height", 0)),
            "fps": float(getattr(meta, "fps", poses.fps)),
            "numFrames": int(getattr(meta, "num_frames", kp.shape[0])),
        },
        "info": _scalar_info(poses.info or {}),
    }


def _json_for_script(payload: dict) -> str:
    # ASCII only (the page is the same bytes in any locale) and no "<", ">" or "&",
    # so no string in the data can close the <script> element; \u escapes keep it valid JSON.
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _template() -> str:
    return resources.files("poselift.viz").joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def render_html_viewer(poses: Poses3D, *, title: str | None = None) -> str:
    """The complete page for ``poses`` as an ASCII string."""
    payload = viewer_payload(poses, title=title)
    values = {
        "TITLE": html.escape(payload["title"]).encode("ascii", "xmlcharrefreplace").decode("ascii"),
        "DATA": _json_for_script(payload),
    }
    # One pass, so a title containing a placeholder's text is not substituted again.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], _template())


def write_html_viewer(poses: Poses3D, out_path: str | Path, *, title: str | None = None) -> Path:
    """Write the self-contained viewer page for ``poses`` to ``out_path`` (atomically); returns the path."""
    return atomic_write_text(out_path, render_html_viewer(poses, title=title))


def extract_viewer_data(page: str) -> dict:
    """The JSON object embedded in a page written by :func:`write_html_viewer`."""
    m = _DATA_RE.search(page)
    if m is None:
        raise DataFormatError(f'viewer page: no <script id="{DATA_ELEMENT_ID}"> element with the pose data')
    return json.loads(m.group(1))
