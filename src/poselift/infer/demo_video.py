"""Sample data from wheels on PyPI: the demo video and the Pose2Sim multi-camera demo.

Sports2D (David Pagnon, BSD-3-Clause, https://github.com/davidpagnon/Sports2D)
ships a short clip of people in its wheel (``Sports2D/Demo/demo.mp4``). The
first ``poselift demo`` runs ``pip download --no-deps sports2d==0.8.34`` (PyPI
is a package registry, so this works where only package installs are allowed),
extracts the clip and keeps it in the cache folder; later runs use the cached
copy and need no network at all.

Pose2Sim (David Pagnon, BSD-3-Clause) ships ``Pose2Sim/Demo_SinglePerson`` in
its wheel: four calibrated, synchronised 60 fps videos of one person and their
Qualisys calibration. :func:`pose2sim_demo_dir` caches them the same way, for
``poselift triangulate`` examples and tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from poselift.atomic import atomic_write
from poselift.errors import PoseliftError

__all__ = ["DEMO_CREDIT", "POSE2SIM_VERSION", "SPORTS2D_VERSION", "cache_dir", "demo_video_path",
           "pose2sim_demo_dir"]

SPORTS2D_VERSION = "0.8.34"
POSE2SIM_VERSION = "0.10.49"
_MEMBER = "Sports2D/Demo/demo.mp4"
_POSE2SIM_MEMBERS = ("Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt",
                     *(f"Pose2Sim/Demo_SinglePerson/videos/cam0{i}.mp4" for i in range(1, 5)))
DEMO_CREDIT = (f"Demo video: Sports2D/Demo/demo.mp4 from the sports2d {SPORTS2D_VERSION} wheel on PyPI "
               "(David Pagnon, BSD-3-Clause, https://github.com/davidpagnon/Sports2D)")


def cache_dir() -> Path:
    """``$POSELIFT_CACHE``, else ``$XDG_CACHE_HOME/poselift``, else ``~/.cache/poselift``."""
    if os.environ.get("POSELIFT_CACHE"):
        return Path(os.environ["POSELIFT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "poselift"


def _download_wheel(dest: Path, package: str, version: str) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet",
           f"{package}=={version}", "-d", str(dest)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = (getattr(exc, "stderr", None) or str(exc)).strip()
        last = detail.splitlines()[-1] if detail else type(exc).__name__
        raise PoseliftError(f"could not fetch sample data: `{' '.join(cmd[2:])}` failed ({last}); run it by hand "
                            "with network access to PyPI, or pass your own video to `poselift infer`") from None
    wheels = sorted(dest.glob(f"{package.lower()}-{version}-*.whl"))
    if not wheels:
        raise PoseliftError(f"pip download of {package}=={version} left no wheel in {dest}")
    return wheels[0]


def _extract(wheel: Path, member: str, target: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
            def copy(out: str) -> None:
                with open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            atomic_write(target, copy)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise PoseliftError(f"{wheel.name}: cannot extract {member} ({exc})") from None


def demo_video_path(*, download: bool = True) -> Path:
    """The cached demo video, fetched and extracted on first use."""
    target = cache_dir() / f"sports2d-{SPORTS2D_VERSION}" / "demo.mp4"
    if target.is_file() and target.stat().st_size > 0:
        return target
    if not download:
        raise PoseliftError(f"the demo video is not cached at {target}")
    with tempfile.TemporaryDirectory(prefix="poselift-demo-") as tmp:
        _extract(_download_wheel(Path(tmp), "sports2d", SPORTS2D_VERSION), _MEMBER, target)
    return target


def pose2sim_demo_dir(*, download: bool = True) -> Path:
    """The cached ``Demo_SinglePerson`` folder (``calibration/Calib.qca.txt``, ``videos/cam01-04.mp4``)."""
    root = cache_dir() / f"pose2sim-{POSE2SIM_VERSION}"
    targets = [root / m for m in _POSE2SIM_MEMBERS]
    if not all(t.is_file() for t in targets):
        if not download:
            raise PoseliftError(f"the Pose2Sim demo is not cached in {root}")
        with tempfile.TemporaryDirectory(prefix="poselift-demo-") as tmp:
            wheel = _download_wheel(Path(tmp), "pose2sim", POSE2SIM_VERSION)
            for member, target in zip(_POSE2SIM_MEMBERS, targets):
                _extract(wheel, member, target)
    return root / "Pose2Sim" / "Demo_SinglePerson"


if __name__ == "__main__":  # python -m poselift.infer.demo_video [--pose2sim]: fetch, cache, print the paths
    print(demo_video_path())
    if "--pose2sim" in sys.argv[1:]:
        print(pose2sim_demo_dir())
