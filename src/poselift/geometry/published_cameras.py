"""The published camera calibrations of Human3.6M and HumanEva-I (facts, as JSON in ``data/``)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from poselift.errors import PoseliftError
from poselift.geometry.camera import CameraParameters


@lru_cache(maxsize=None)
def _load(dataset: str) -> dict:
    with resources.files("poselift.geometry").joinpath(f"data/{dataset}_cameras.json").open() as f:
        return json.load(f)


def published_cameras(dataset: str) -> dict[str, list[CameraParameters]]:
    """Subject -> cameras (in file order) for ``"h36m"`` or ``"humaneva"``.

    Translations are converted from millimetres to metres. HumanEva subjects
    are also listed under the prefixes VideoPose3D uses (``Train/S1`` ...).
    """
    if dataset not in ("h36m", "humaneva"):
        raise PoseliftError(f"no published cameras for dataset {dataset!r} (known: h36m, humaneva)")
    raw = _load(dataset)
    out: dict[str, list[CameraParameters]] = {}
    for subject, extrinsics in raw["extrinsics"].items():
        cams = []
        for intr, extr in zip(raw["intrinsics"], extrinsics):
            cams.append(
                CameraParameters(
                    id=str(intr["id"]),
                    res_w=int(intr["res_w"]),
                    res_h=int(intr["res_h"]),
                    focal_length=intr.get("focal_length", [intr["res_w"] / 2] * 2),
                    center=intr.get("center", [intr["res_w"] / 2, intr["res_h"] / 2]),
                    radial_distortion=intr.get("radial_distortion", [0, 0, 0]),
                    tangential_distortion=intr.get("tangential_distortion", [0, 0]),
                    orientation=extr["orientation"],
                    translation=[v / 1000 for v in extr["translation"]],
                    azimuth=float(intr.get("azimuth", 0)),
                )
            )
        out[subject] = cams
        if dataset == "humaneva":
            for prefix in ("Train/", "Validate/", "Unlabeled/Train/", "Unlabeled/Validate/", "Unlabeled/"):
                out[prefix + subject] = cams
    return out
