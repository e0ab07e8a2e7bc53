"""The offline HTML pose viewer: embedded data round trip, no network references, and what a browser draws."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from poselift.errors import DataFormatError
from poselift.infer.types import Poses3D, VideoMeta
from poselift.skeleton import H36M_17
from poselift.viz.html_viewer import extract_viewer_data, render_html_viewer, write_html_viewer

# Standing person facing the camera (camera space: x right, y down, z forward), so their
# left joints have larger x. Pelvis-relative metres, Human3.6M-17 order.
STANDING = np.array([
    [0, 0, 0], [-0.12, 0, 0], [-0.12, 0.45, 0], [-0.12, 0.88, 0], [0.12, 0, 0], [0.12, 0.45, 0], [0.12, 0.88, 0],
    [0, -0.25, 0], [0, -0.5, 0], [0, -0.6, -0.05], [0, -0.72, 0],
    [0.18, -0.48, 0], [0.2, -0.2, 0], [0.22, 0.05, 0], [-0.18, -0.48, 0], [-0.2, -0.2, 0], [-0.22, 0.05, 0],
])
LEFT_RGB, RIGHT_RGB = (30, 110, 230), (220, 40, 40)  # the page's limb colours (#1e6ee6, #dc2828)


def _poses(kp: np.ndarray, valid: np.ndarray | None = None, detected: np.ndarray | None = None,
           fps: float = 25.0) -> Poses3D:
    t = kp.shape[0]
    valid = np.ones(t, bool) if valid is None else valid
    detected = valid.copy() if detected is None else detected
    meta = VideoMeta(width=640, height=480, fps=fps, num_frames=t, name="clip.mp4")
    return Poses3D(kp.astype(np.float32), np.zeros((t, 17, 2), np.float32), np.ones((t, 17), np.float32),
                   valid, detected, fps, meta, {"model": "test", "focal": np.float32(1000.0)})


def _swinging_person(t: int = 60) -> np.ndarray:
    """(t, 17, 3): the left arm rises sideways from hanging (frame 0) to horizontal (frame t/2)."""
    kp = np.repeat(STANDING[None], t, axis=0).astype(np.float64)
    angle = np.deg2rad(90 * np.sin(np.pi * np.arange(t) / t))
    shoulder = STANDING[11]
    for j in (12, 13):
        v = STANDING[j] - shoulder
        kp[:, j, 0] = shoulder[0] + np.cos(angle) * v[0] + np.sin(angle) * v[1]
        kp[:, j, 1] = shoulder[1] - np.sin(angle) * v[0] + np.cos(angle) * v[1]
    root = np.stack([np.linspace(0, 0.5, t), np.full(t, 0.1), np.full(t, 3.5)], axis=1)
    return kp + root[:, None]


def _walk(t: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    root = np.stack([np.linspace(-1, 1, t), np.full(t, 0.1), np.linspace(3, 6, t)], axis=1)
    return STANDING[None] + rng.normal(0, 0.05, (t, 17, 3)) + root[:, None]


# ---------------------------------------------------------------- pure Python


def test_embedded_data_round_trips_to_a_millimetre(tmp_path):
    kp = _walk(50, seed=1)
    kp[3, 5] = kp[3, 0] + [0.1234 - 1.0, -0.5 - 0.2, 2.0 - 3.0]  # hand-checked entry below
    valid = np.arange(50) % 7 != 0
    detected = np.arange(50) % 5 != 0
    out = write_html_viewer(_poses(kp, valid, detected, fps=29.97), tmp_path / "v.html")
    data = extract_viewer_data(out.read_text())

    t = data["numFrames"]
    assert (t, data["numJoints"], data["fps"], data["units"]) == (50, 17, pytest.approx(29.97), "mm")
    rel = np.array(data["joints"], dtype=np.float64).reshape(t, 17, 3) / 1000
    root = np.array(data["root"], dtype=np.float64).reshape(t, 3) / 1000
    kp32 = kp.astype(np.float32).astype(np.float64)
    assert np.abs(rel - (kp32 - kp32[:, :1])).max() <= 0.0005 + 1e-6
    assert np.abs(root - kp32[:, 0]).max() <= 0.0005 + 1e-6
    assert np.abs(rel + root[:, None] - kp32).max() <= 0.001 + 1e-6
    assert np.all(rel[:, 0] == 0)
    assert data["joints"][(3 * 17 + 5) * 3:(3 * 17 + 5) * 3 + 3] == [-877, -700, -1000]
    assert data["valid"] == valid.astype(int).tolist() and data["detected"] == detected.astype(int).tolist()
    sk = data["skeleton"]
    assert sk["parents"] == list(H36M_17.parents)
    assert (sk["jointsLeft"], sk["jointsRight"]) == (list(H36M_17.joints_left), list(H36M_17.joints_right))
    assert data["info"] == {"model": "test", "focal": 1000.0}
    assert data["video"]["name"] == "clip.mp4"


def test_page_is_self_contained_and_title_cannot_break_out():
    title = 'Bob </script><img src=x onerror="alert(1)"> & \u00e9t\u00e9 __POSELIFT_DATA__'
    page = render_html_viewer(_poses(_swinging_person(10)), title=title)
    low = page.lower()
    for ref in ("http://", "https://", "//cdn", "<link", "@import", "url(", "<script src", "<iframe"):
        assert ref not in low, ref
    assert page.isascii()
    # Exactly the two script elements of the template: the title did not open or close one.
    assert low.count("<script") == 2 and low.count("</script>") == 2
    assert "<img" not in low
    assert "<title>Bob &lt;/script&gt;&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &#233;t&#233; __POSELIFT_DATA__</title>" in page
    assert extract_viewer_data(page)["title"] == title


def test_non_finite_joints_become_null_and_bad_input_is_rejected():
    kp = _swinging_person(4)
    kp[2, 13] = np.nan
    data = extract_viewer_data(render_html_viewer(_poses(kp)))
    k = (2 * 17 + 13) * 3
    assert data["joints"][k:k + 3] == [None, None, None]
    assert None not in data["joints"][:k] and None not in data["root"]

    with pytest.raises(DataFormatError, match=r"keypoints_3d.*\(T, 17, 3\).*\(4, 16, 3\)"):
        render_html_viewer(_poses(kp[:, :16]))
    with pytest.raises(DataFormatError, match=r"Poses3D.valid.*\(4,\)"):
        render_html_viewer(_poses(kp, valid=np.ones(3, bool), detected=np.ones(4, bool)))
    with pytest.raises(DataFormatError, match="fps"):
        render_html_viewer(_poses(kp, fps=0.0))


def test_two_thousand_frames_fit_in_a_small_file(tmp_path):
    out = write_html_viewer(_poses(_walk(2000)), tmp_path / "long.html")
    size = out.stat().st_size
    assert 2000 * 17 * 3 * 2 < size < 1_500_000, size  # at least "d," per value, at most 1.5 MB
    assert extract_viewer_data(out.read_text())["numFrames"] == 2000


def test_write_is_atomic_and_replaces(tmp_path):
    target = tmp_path / "sub" / "viewer.html"
    target.parent.mkdir()
    target.write_text("old")
    assert write_html_viewer(_poses(_swinging_person(5)), target) == target
    assert extract_viewer_data(target.read_text())["numFrames"] == 5
    with pytest.raises(DataFormatError):
        write_html_viewer(_poses(_swinging_person(5)[:, :3]), target)
    assert extract_viewer_data(target.read_text())["numFrames"] == 5  # a failed write keeps the old page
    assert [p.name for p in target.parent.iterdir()] == ["viewer.html"]  # no temporary files left


# ---------------------------------------------------------------- headless browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium_args(browser: str, profile: Path, url: str, screenshot: Path | None) -> list[str]:
    """One headless launch: a screenshot, or (``screenshot=None``) the DOM printed after the page ran."""
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
            "--window-size=800,600", "--virtual-time-budget=3000"]
    return args + ([f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]) + [url]


@pytest.fixture(scope="module")
def browser_runs(tmp_path_factory):
    """Four launches on one 60-frame page, run side by side: three screenshots and one DOM dump."""
    browser = _browser()
    if browser is None:
        pytest.skip(f"no headless browser found (looked for {', '.join(BROWSERS)})")
    from PIL import Image

    tmp = tmp_path_factory.mktemp("viewer")
    valid = np.ones(60, bool)
    valid[55:] = False  # held frames after the last detection
    page = write_html_viewer(_poses(_swinging_person(60), valid), tmp / "viewer.html")
    url = page.resolve().as_uri()
    runs = {"front": "frame=0&azimuth=0&elevation=10&play=0",
            "raised": "frame=30&azimuth=0&elevation=10&play=0",
            "back": "frame=0&azimuth=180&elevation=10&play=0",
            "dom": "frame=57&azimuth=0&elevation=10&play=0"}
    procs = {}
    for name, frag in runs.items():
        png = None if name == "dom" else tmp / f"{name}.png"
        args = _chromium_args(browser, tmp / f"profile-{name}", f"{url}#{frag}", png)
        procs[name] = (subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), png)
    shots, dom = {}, ""
    try:
        for name, (proc, png) in procs.items():
            out, err = proc.communicate(timeout=90)
            if proc.returncode != 0 or (png is not None and not png.exists()):
                pytest.fail(f"{browser} ({name}) failed with exit code {proc.returncode}: {err[-2000:]}")
            if png is None:
                dom = out
            else:
                shots[name] = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return shots, dom


def _limb_pixels(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) x, y of left-colour and of right-colour pixels in the drawing area (controls cut off)."""
    area = img[:440]
    r, g, b = area[..., 0], area[..., 1], area[..., 2]
    left = (b > 170) & (r < 110) & (b - r > 100)
    right = (r > 170) & (g < 110) & (b < 110)
    return np.argwhere(left)[:, ::-1], np.argwhere(right)[:, ::-1]


def test_browser_draws_left_and_right_limbs_on_the_correct_sides(browser_runs):
    shots, _ = browser_runs
    front_left, front_right = _limb_pixels(shots["front"])
    back_left, back_right = _limb_pixels(shots["back"])
    for pts in (front_left, front_right, back_left, back_right):
        assert len(pts) > 300, len(pts)
    # Azimuth 0 looks from the recording camera at the person's front: their left is on the image right.
    assert front_left[:, 0].mean() > front_right[:, 0].mean() + 20
    # Azimuth 180 looks at their back: left is on the image left.
    assert back_left[:, 0].mean() < back_right[:, 0].mean() - 20
    # Up on screen is camera -y: the head-to-feet order is kept (legs are below the arms' top).
    assert front_left[:, 1].max() > front_left[:, 1].min() + 150


def test_browser_image_follows_frame_and_azimuth(browser_runs):
    shots, _ = browser_runs
    front, raised, back = shots["front"], shots["raised"], shots["back"]
    changed = lambda a, b: int((np.abs(a - b).sum(axis=2) > 60).sum())  # noqa: E731
    assert changed(front, raised) > 500
    assert changed(front, back) > 500
    # Frame 30: the left arm is horizontal, reaching about 0.4 m further out to the image right.
    assert _limb_pixels(raised)[0][:, 0].max() > _limb_pixels(front)[0][:, 0].max() + 50
    # The right side did not move (apart from the slow root drift, followed by the camera).
    assert abs(_limb_pixels(raised)[1][:, 0].mean() - _limb_pixels(front)[1][:, 0].mean()) < 10


def test_browser_script_runs_and_shows_state(browser_runs):
    _, dom = browser_runs
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-ready="1"' in body and 'data-frame="57"' in body
    assert "data-error" not in body
    assert re.search(r'<span id="counter">Frame 57 / 59</span>', dom)
    assert re.search(r'<span id="time">0:02\.28 / 0:02\.36</span>', dom)
    note = re.search(r'<div id="note"( hidden="")?>([^<]*)</div>', dom)
    assert note.group(1) is None and note.group(2).startswith("Not valid")
