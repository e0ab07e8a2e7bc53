"""The demo's sample video: ``Sports2D/Demo/demo.mp4`` from the sports2d wheel on PyPI.

Sports2D (David Pagnon, BSD-3-Clause, https://github.com/davidpagnon/Sports2D)
ships a short clip of a person in its wheel. The first ``poselift demo`` runs
``pip download --no-deps sports2d==0.8.34`` (PyPI is a package registry, so
this works where only package installs are allowed), extracts the clip and
keeps it in the cache folder; later runs use the cached copy and need no
network at all.
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

__all__ = ["DEMO_CREDIT", "SPORTS2D_VERSION", "cache_dir", "demo_video_path"]

SPORTS2D_VERSION = "0.8.34"
_MEMBER = "Sports2D/Demo/demo.mp4"
DEMO_CREDIT = (f"Demo video: Sports2D/Demo/demo.mp4 from the sports2d {SPORTS2D_VERSION} wheel on PyPI "
               "(David Pagnon, BSD-3-Clause, https://github.com/davidpagnon/Sports2D)")


def cache_dir() -> Path:
    """``$POSELIFT_CACHE``, else ``$XDG_CACHE_HOME/poselift``, else ``~/.cache/poselift``."""
    if os.environ.get("POSELIFT_CACHE"):
        return Path(os.environ["POSELIFT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "poselift"


def _download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet",
           f"sports2d=={SPORTS2D_VERSION}", "-d", str(dest)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise PoseliftError(f"could not fetch the demo video: `{' '.join(cmd[2:])}` failed "
                            f"({detail.strip().splitlines()[-1] if detail.strip() else exc}); "
                            "run it by hand with network access to PyPI, or pass your own video to `poselift infer`")
    wheels = sorted(dest.glob(f"sports2d-{SPORTS2D_VERSION}-*.whl"))
    if not wheels:
        raise PoseliftError(f"pip download of sports2d=={SPORTS2D_VERSION} left no wheel in {dest}")
    return wheels[0]


def demo_video_path(*, download: bool = True) -> Path:
    """The cached demo video, fetched and extracted on first use."""
    target = cache_dir() / f"sports2d-{SPORTS2D_VERSION}" / "demo.mp4"
    if target.is_file() and target.stat().st_size > 0:
        return target
    if not download:
        raise PoseliftError(f"the demo video is not cached at {target}")
    with tempfile.TemporaryDirectory(prefix="poselift-demo-") as tmp:
        wheel = _download_wheel(Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as zf, zf.open(_MEMBER) as src:
                def copy(out: str) -> None:
                    with open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                atomic_write(target, copy)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise PoseliftError(f"{wheel.name}: cannot extract {_MEMBER} ({exc})") from None
    return target


if __name__ == "__main__":  # python -m poselift.infer.demo_video: fetch and cache the sample video, print its path
    print(demo_video_path())
