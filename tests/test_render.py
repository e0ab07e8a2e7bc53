"""Side-by-side rendering (poselift.viz.render) and its drawing helpers (poselift.viz.draw)."""

import time

import numpy as np
import pytest
from PIL import Image

from poselift.errors import ConfigError
from poselift.infer.types import Poses3D, VideoMeta
from poselift.io.video import probe_video, read_frames
from poselift.skeleton import COCO_17, H36M_17
from poselift.viz.draw import CENTER_COLOR, LEFT_COLOR, RIGHT_COLOR, OrbitCamera
from poselift.viz.render import SideBySideRenderer, render_video

# A person standing 3 m in front of the camera, facing it (so their left is the image's right),
# arms held out and down. Metres, relative to the pelvis; y down.
STANDING = {
    "pelvis": (0.0, 0.0, 0.0), "right_hip": (-0.12, 0.0, 0.0), "right_knee": (-0.13, 0.45, 0.0),
    "right_ankle": (-0.14, 0.9, 0.0), "left_hip": (0.12, 0.0, 0.0), "left_knee": (0.13, 0.45, 0.0),
    "left_ankle": (0.14, 0.9, 0.0), "spine": (0.0, -0.25, 0.0), "thorax": (0.0, -0.5, 0.0),
    "neck_nose": (0.0, -0.6, -0.05), "head": (0.0, -0.72, 0.0), "left_shoulder": (0.18, -0.5, 0.0),
    "left_elbow": (0.35, -0.3, 0.0), "left_wrist": (0.5, -0.15, 0.0), "right_shoulder": (-0.18, -0.5, 0.0),
    "right_elbow": (-0.35, -0.3, 0.0), "right_wrist": (-0.5, -0.15, 0.0),
}  # fmt: skip
# COCO joints taken from the nearest H36M joint (face points from the head).
COCO_FROM_H36M = {"nose": "neck_nose", "left_eye": "head", "right_eye": "head", "left_ear": "head", "right_ear": "head"}
WIDTH, HEIGHT, FOCAL = 640, 480, 500.0
COCO_LEFT_WRIST, COCO_RIGHT_WRIST = COCO_17.index("left_wrist"), COCO_17.index("right_wrist")


def make_poses(num_frames: int = 10, fps: float = 10.0, width: int = WIDTH, height: int = HEIGHT) -> Poses3D:
    """The standing pose at 3 m depth, sliding 2 cm right per frame, with exact 2D projections."""
    joints = np.array([STANDING[n] for n in H36M_17.joint_names]) + (0.0, 0.0, 3.0)
    kp3d = np.repeat(joints[None], num_frames, axis=0)
    kp3d[:, :, 0] += 0.02 * np.arange(num_frames)[:, None]
    focal = FOCAL * width / WIDTH
    uv = focal * kp3d[..., :2] / kp3d[..., 2:] + (width / 2, height / 2)
    h36m = {n: i for i, n in enumerate(H36M_17.joint_names)}
    kp2d = uv[:, [h36m[COCO_FROM_H36M.get(n, n)] for n in COCO_17.joint_names]]
    detected = np.ones(num_frames, bool)
    detected[3] = False
    scores = np.ones((num_frames, 17), np.float32)
    scores[3] = 0.0
    return Poses3D(
        keypoints_3d=kp3d.astype(np.float32),
        keypoints_2d=kp2d.astype(np.float32),
        scores_2d=scores,
        valid=np.ones(num_frames, bool),
        detected=detected,
        fps=fps,
        meta=VideoMeta(width, height, fps, num_frames, "walk.mp4"),
    )


def near_color(image: np.ndarray, x: float, y: float, color, radius: int = 3, tol: float = 40.0) -> bool:
    """Whether some pixel within ``radius`` of (x, y) is within ``tol`` (max channel difference) of ``color``."""
    xi, yi = int(round(x)), int(round(y))
    patch = image[yi - radius : yi + radius + 1, xi - radius : xi + radius + 1].astype(int)
    return bool((np.abs(patch - np.array(color)).max(axis=2) <= tol).any())


def test_orbit_camera_hand_computed():
    # 200x200, distance 6, extent 1.25: focal = 100 * 6 / 1.25 = 480, principal point (100, 100).
    front = OrbitCamera(azimuth=0, elevation=0, width=200, height=200)
    uv, depth = front.project(np.array([[0.5, 0.0, 0.0], [0.0, -1.0, 0.0]]))
    np.testing.assert_allclose(uv, [[140.0, 100.0], [100.0, 20.0]])  # same as the source camera: +x right, -y up
    np.testing.assert_allclose(depth, [6.0, 6.0])

    side = OrbitCamera(azimuth=90, elevation=0, width=200, height=200)  # viewpoint at +x, looking towards -x
    uv, depth = side.project(np.array([[0.0, 0.0, 0.5], [0.5, 0.0, 0.0]]))
    np.testing.assert_allclose(uv, [[140.0, 100.0], [100.0, 100.0]], atol=1e-9)  # +z (away from camera) is right
    np.testing.assert_allclose(depth, [6.0, 5.5])  # +x is nearer

    # Elevation 30: viewpoint (0, -3, -5.196); a point 1 m above the target lands at
    # v = 100 + 480 * (0.866 * 2 - 0.5 * 5.196) / (0.5 * 2 + 0.866 * 5.196) = 24.4.
    high = OrbitCamera(azimuth=0, elevation=30, width=200, height=200)
    uv, depth = high.project(np.array([[0.0, -1.0, 0.0]]))
    np.testing.assert_allclose(uv, [[100.0, 24.42]], atol=0.01)
    np.testing.assert_allclose(depth, [5.5], atol=1e-9)


def test_left_panel_draws_sided_skeleton_exactly():
    poses = make_poses()
    r = SideBySideRenderer(poses, panel_height=HEIGHT)
    assert (r.left_width, r.right_width, r.width, r.height) == (640, 480, 1120, 480)
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image = r.render(0, frame)
    # Left wrist of a person facing the camera: right of the image centre at
    # u = 320 + 500 * 0.5 / 3 = 403.3, v = 240 + 500 * -0.15 / 3 = 215.
    lx, ly = poses.keypoints_2d[0, COCO_LEFT_WRIST]
    assert (lx, ly) == pytest.approx((403.33, 215.0), abs=0.01)
    assert tuple(image[int(round(ly)), int(round(lx))]) == LEFT_COLOR  # centre of the joint dot
    rx, ry = poses.keypoints_2d[0, COCO_RIGHT_WRIST]
    assert tuple(image[int(round(ry)), int(round(rx))]) == RIGHT_COLOR
    # The hip bar is a centre bone, midway between the hips.
    hx, hy = poses.keypoints_2d[0, [COCO_17.index("left_hip"), COCO_17.index("right_hip")]].mean(axis=0)
    assert tuple(image[int(round(hy)), int(round(hx))]) == CENTER_COLOR


def test_3d_panel_front_view_matches_orbit_projection():
    poses = make_poses()
    r = SideBySideRenderer(poses, azimuth=0, elevation=0, panel_height=HEIGHT)
    image = r.render(0, None)
    panel = image[:, r.left_width :]
    uv, _ = r.camera.project(poses.root_relative[0])
    lw, rw = H36M_17.index("left_wrist"), H36M_17.index("right_wrist")
    # From the front the person's left hand is on the panel's right.
    assert uv[lw, 0] > uv[0, 0] + 50 and uv[rw, 0] < uv[0, 0] - 50
    assert tuple(panel[int(round(uv[lw, 1])), int(round(uv[lw, 0]))]) == LEFT_COLOR
    assert tuple(panel[int(round(uv[rw, 1])), int(round(uv[rw, 0]))]) == RIGHT_COLOR
    # Ground 8 cm below the lowest joint (0.9 + 0.08), head level 10 cm above the top joint
    # (-0.72 - 0.1); the view aims midway (y = 0.08) and fits 0.62 * 1.8 m in half the panel:
    # focal = 240 * 6 / 1.116 = 1290.3. From eye level the farthest grid line (2 m behind the
    # pelvis, 8 m away) is the highest: v = 240 + 1290.3 * (0.98 - 0.08) / 8 = 385.2.
    # (rows 40..440: clear of the title and the legend, whose anti-aliased text has grey edges)
    grid = np.abs(panel[40:440].astype(int) - (78, 84, 96)).max(axis=2) < 12
    grid_rows = 40 + np.nonzero(grid.any(axis=1))[0]
    assert len(grid_rows) > 20 and abs(grid_rows.min() - 385.2) <= 1.5


def test_undetected_frame_is_tagged():
    poses = make_poses()
    r = SideBySideRenderer(poses, panel_height=HEIGHT)
    orange = np.array((255, 150, 0))

    def tag_pixels(t):
        left = r.render(t, np.zeros((HEIGHT, WIDTH, 3), np.uint8))[:80, : r.left_width]
        return int((np.abs(left.astype(int) - orange).max(axis=2) < 10).sum())

    assert tag_pixels(2) == 0
    assert tag_pixels(3) > 500  # the "no detection: interpolated" box


def test_render_video_with_frames_and_gif(tmp_path):
    poses = make_poses()
    green = np.zeros((10, HEIGHT, WIDTH, 3), np.uint8)
    green[..., 1] = 120
    out = render_video(
        poses, tmp_path / "out.mp4", frames=green, gif_path=tmp_path / "out.gif", panel_height=HEIGHT, progress=False
    )
    assert out == tmp_path / "out.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.gif", "out.mp4"]
    meta = probe_video(out)
    assert (meta.width, meta.height, meta.num_frames) == (1120, 480, 10)
    assert meta.fps == pytest.approx(10.0)
    frames = list(read_frames(out))
    for t in (0, 9):
        image = frames[t]
        lx, ly = poses.keypoints_2d[t, COCO_LEFT_WRIST]
        rx, ry = poses.keypoints_2d[t, COCO_RIGHT_WRIST]
        # Through H.264 colours blur, but the left wrist stays blue and the right one red.
        assert near_color(image, lx, ly, LEFT_COLOR) and not near_color(image, lx, ly, RIGHT_COLOR, tol=60)
        assert near_color(image, rx, ry, RIGHT_COLOR) and not near_color(image, rx, ry, LEFT_COLOR, tol=60)
        assert np.abs(image[400:440, 20:60].mean(axis=(0, 1)) - (0, 120, 0)).max() < 10  # the input frame
        panel = image[:, 640:].astype(int)
        assert (np.abs(panel - LEFT_COLOR).max(axis=2) < 40).sum() > 100  # the 3D skeleton's left limbs
        assert (np.abs(panel - RIGHT_COLOR).max(axis=2) < 40).sum() > 100
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.n_frames == 10  # 10 fps is under the 15 fps cap: every frame kept
        assert gif.size == (480, 206)  # 1120x480 scaled to 480 wide


def test_render_without_video_uses_blank_canvas(tmp_path):
    poses = make_poses(num_frames=4)
    out = render_video(poses, tmp_path / "k.mp4", panel_height=240, progress=False)
    meta = probe_video(out)
    assert (meta.width, meta.height, meta.num_frames) == (560, 240, 4)
    image = next(read_frames(out))
    assert np.abs(image[120:140, 10:40].astype(int) - 36).max() < 8  # blank dark-grey canvas
    lx, ly = poses.keypoints_2d[0, COCO_LEFT_WRIST] * 0.5  # 640x480 keypoints on a 320x240 panel
    assert near_color(image, lx, ly, LEFT_COLOR, radius=2, tol=60)
    with pytest.raises(ConfigError, match="not both"):
        render_video(poses, tmp_path / "x.mp4", video_path="a.mp4", frames=[], progress=False)


def test_render_from_video_file_shorter_than_poses(tmp_path):
    from poselift.io.video import VideoWriter

    with VideoWriter(tmp_path / "in.mp4", fps=10) as w:
        for _ in range(3):
            w.write(np.full((HEIGHT // 2, WIDTH // 2, 3), 200, np.uint8))
    poses = make_poses(num_frames=5, width=WIDTH // 2, height=HEIGHT // 2)
    with pytest.warns(UserWarning, match="only 3 frames for 5 poses"):
        render_video(poses, tmp_path / "out.mp4", video_path=tmp_path / "in.mp4", panel_height=240, progress=False)
    frames = list(read_frames(tmp_path / "out.mp4"))
    assert len(frames) == 5
    assert frames[2][200:230, 10:40].mean() > 180  # video frame
    assert frames[3][200:230, 10:40].mean() < 60  # blank after the video ends


def test_render_speed_full_hd_input(capsys):
    poses = make_poses(num_frames=30, fps=30.0, width=1768, height=994)
    r = SideBySideRenderer(poses)
    frame = np.random.default_rng(0).integers(0, 256, (994, 1768, 3), dtype=np.uint8)
    assert (r.width, r.height) == (2002, 720)
    r.render(0, frame)  # warm up
    start = time.perf_counter()
    for t in range(30):
        r.render(t, frame)
    fps = 30 / (time.perf_counter() - start)
    with capsys.disabled():
        print(f"\nrender speed, 1768x994 input -> 2002x720 output (drawing only, no encoding): {fps:.0f} frames/s")
    assert fps > 5  # loose: the test machine is shared; typically well over 30
