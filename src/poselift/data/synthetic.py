"""Procedural human-like motion in Human3.6M's 17-joint layout, saved as VideoPose3D dataset files.

Lets newcomers and the test suite train and evaluate a lifter with no download.
Every frame comes from forward kinematics of a body with human proportions
(constant bone lengths per subject), driven by smooth joint-angle curves that
respect joint limits (knees and elbows bend one way only), with root motion
(curved walking paths, bobbing, jumps). Cameras mimic Human3.6M's rig.

World space is Z-up with the ground at z = 0, like Human3.6M. The body frame
used while posing is x forward, y left, z up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from poselift.data.virtual_cameras import CameraRig, place_cameras, project_points
from poselift.data.vp3d_format import save_positions_2d, save_positions_3d
from poselift.geometry.camera import CameraParameters
from poselift.geometry.rotations import axis_rotation
from poselift.skeleton import H36M_17

__all__ = ["ACTIONS", "SyntheticConfig", "generate_motion", "generate_synthetic_dataset", "project_dataset"]


@dataclass
class SyntheticConfig:
    subjects: tuple[str, ...] = ("S1", "S2", "S3", "S4", "S5")  # each its own body size
    seconds_per_action: float = 8.0
    fps: int = 50
    cameras_per_subject: int = 4
    seed: int = 0


_J = {name: i for i, name in enumerate(H36M_17.joint_names)}
RES = 1000  # image width and height in pixels, as Human3.6M
MARGIN_PX = 30.0  # every projected joint stays this far inside the image
# Segment lengths as fractions of stature (anthropometric tables); an upright pose puts the
# head top at ~0.99 H and the hip joints at ~0.54 H.
_PROPORTIONS = {
    "ankle_height": 0.045, "shank": 0.246, "thigh": 0.245, "hip_half": 0.074,
    "spine": 0.135, "chest": 0.15, "nose_fwd": 0.045, "nose_up": 0.065, "head_back": 0.03, "head_up": 0.10,
    "shoulder_half": 0.088, "shoulder_drop": 0.015, "upper_arm": 0.186, "forearm": 0.146,
}
_SIDED = ("hip_flex", "hip_abd", "hip_rot", "knee", "sh_flex", "sh_abd", "sh_rot", "elbow")
# Joint limits in degrees. Angles are soft-clamped into them, so knees/elbows stay strictly
# flexed one way (> 0) and nothing twists beyond what a person can do.
_LIMITS = {
    "hip_flex": (-25, 125), "hip_abd": (-10, 45), "hip_rot": (-30, 30), "knee": (0, 140),
    "sh_flex": (-50, 175), "sh_abd": (-10, 175), "sh_rot": (-80, 100), "elbow": (0, 145),
    "pelvis_pitch": (-10, 90), "pelvis_roll": (-12, 12), "pelvis_yaw": (-35, 35),
    "lean1": (-8, 35), "side1": (-15, 15), "twist1": (-25, 25),
    "lean2": (-8, 35), "side2": (-15, 15), "twist2": (-25, 25),
    "neck_pitch": (-20, 40), "neck_yaw": (-50, 50),
}
# Per-clip idiosyncratic movement added to every channel (degrees), so no two clips repeat.
_NOISE = {
    "hip_flex": 2, "hip_abd": 1.5, "hip_rot": 4, "knee": 2, "sh_flex": 5, "sh_abd": 4, "sh_rot": 8,
    "elbow": 5, "pelvis_pitch": 1.5, "pelvis_roll": 1.5, "pelvis_yaw": 3, "lean1": 2, "side1": 2,
    "twist1": 3, "lean2": 2, "side2": 2, "twist2": 3, "neck_pitch": 5, "neck_yaw": 10,
}
_REST = {"knee": 4.0, "elbow": 12.0, "sh_abd": 8.0, "hip_abd": 3.0}  # relaxed standing


def _channels() -> list[str]:
    return [f"{s}_{c}" for c in _SIDED for s in "lr"] + [c for c in _LIMITS if c not in _SIDED]


def _base(name: str) -> str:
    return name[2:] if name[:2] in ("l_", "r_") else name


def _soft_clamp(x: np.ndarray, lo: float, hi: float, s: float = 3.0) -> np.ndarray:
    """Smooth, monotone, strictly inside (lo, hi); equal to x well inside the range."""
    return lo + s * (np.logaddexp(0, (x - lo) / s) - np.logaddexp(0, (x - hi) / s))


def _bump(x: np.ndarray, p: float) -> np.ndarray:
    """Smooth periodic pulse in [0, 1] peaking at x = 0 (mod 2 pi); larger p is narrower."""
    return ((1 + np.cos(x)) / 2) ** p


# ---- kinematics -------------------------------------------------------------------------------

def _rot(axis: int, deg) -> np.ndarray:
    """(T,) degrees -> (T, 3, 3) rotations about body axis 0 = x forward, 1 = y left, 2 = z up."""
    return axis_rotation(axis, deg, degrees=True)


def _limb(flex, abd, rot, side: int) -> np.ndarray:
    """Ball joint (hip, shoulder): twist about the bone, abduct sideways, then flex forward.

    ``side`` is +1 left / -1 right: mirroring the y axis negates abduction and twist, so the
    same angle values mean the same anatomical motion on both sides. Ry(-flex) swings a
    downward bone forward.
    """
    return _rot(1, -np.asarray(flex)) @ _rot(0, side * np.asarray(abd)) @ _rot(2, side * np.asarray(rot))


def _forward_kinematics(body: dict[str, float], ang: dict[str, np.ndarray], heading: np.ndarray) -> np.ndarray:
    """Angles (deg, each (T,)), heading (T,) rad -> (T, 17, 3) joints with the pelvis at the origin."""
    out = np.zeros(heading.shape + (17, 3))

    def at(r, *v):  # rotate a body-frame offset by per-frame rotations
        return np.einsum("tij,j->ti", r, np.asarray(v, dtype=np.float64))

    rp = _rot(2, np.degrees(heading) + ang["pelvis_yaw"]) @ _rot(1, ang["pelvis_pitch"]) @ _rot(0, ang["pelvis_roll"])
    for side, s, (hip, knee, ankle) in ((1, "l_", ("left_hip", "left_knee", "left_ankle")),
                                        (-1, "r_", ("right_hip", "right_knee", "right_ankle"))):
        out[:, _J[hip]] = at(rp, 0, side * body["hip_half"], 0)
        rt = rp @ _limb(ang[s + "hip_flex"], ang[s + "hip_abd"], ang[s + "hip_rot"], side)
        out[:, _J[knee]] = out[:, _J[hip]] + at(rt, 0, 0, -body["thigh"])
        # Ry(+knee) swings the shank backwards: the knee can only bend one way.
        out[:, _J[ankle]] = out[:, _J[knee]] + at(rt @ _rot(1, ang[s + "knee"]), 0, 0, -body["shank"])
    rs = rp @ _rot(1, ang["lean1"]) @ _rot(0, ang["side1"]) @ _rot(2, ang["twist1"])
    out[:, _J["spine"]] = at(rs, 0, 0, body["spine"])
    rc = rs @ _rot(1, ang["lean2"]) @ _rot(0, ang["side2"]) @ _rot(2, ang["twist2"])
    out[:, _J["thorax"]] = out[:, _J["spine"]] + at(rc, 0, 0, body["chest"])
    rn = rc @ _rot(2, ang["neck_yaw"]) @ _rot(1, ang["neck_pitch"])
    out[:, _J["neck_nose"]] = out[:, _J["thorax"]] + at(rn, body["nose_fwd"], 0, body["nose_up"])
    out[:, _J["head"]] = out[:, _J["neck_nose"]] + at(rn, -body["head_back"], 0, body["head_up"])
    for side, s, (sh, el, wr) in ((1, "l_", ("left_shoulder", "left_elbow", "left_wrist")),
                                  (-1, "r_", ("right_shoulder", "right_elbow", "right_wrist"))):
        out[:, _J[sh]] = out[:, _J["thorax"]] + at(rc, 0, side * body["shoulder_half"], -body["shoulder_drop"])
        ru = rc @ _limb(ang[s + "sh_flex"], ang[s + "sh_abd"], ang[s + "sh_rot"], side)
        out[:, _J[el]] = out[:, _J[sh]] + at(ru, 0, 0, -body["upper_arm"])
        # Ry(-elbow) swings the forearm towards the arm's front: one-way elbow.
        out[:, _J[wr]] = out[:, _J[el]] + at(ru @ _rot(1, -ang[s + "elbow"]), 0, 0, -body["forearm"])
    return out


# ---- motion kinds -----------------------------------------------------------------------------
# Each returns (angles in degrees, heading (T,) rad, pelvis path (T, 2) or None for "feet planted
# around an anchor", extra lift (T,) metres for flight phases). ``t`` is already tempo-warped.

def _ellipse_path(t, rng, speed):
    """Constant-speed walk around an ellipse within ~1.45 m of the centre; heading follows travel."""
    a, b, tilt = rng.uniform(0.9, 1.25), rng.uniform(0.7, 1.2), rng.uniform(0, np.pi)
    centre, direction = rng.uniform(-0.15, 0.15, 2), rng.choice([-1.0, 1.0])
    grid = np.linspace(0, 2 * np.pi, 2049)
    arc = np.concatenate(([0], np.cumsum(np.hypot(a * np.diff(np.cos(grid)), b * np.diff(np.sin(grid))))))
    s = rng.uniform(0, arc[-1]) + speed * t  # arc length travelled, then invert arc(theta)
    theta = direction * (2 * np.pi * (s // arc[-1]) + np.interp(s % arc[-1], arc, grid))
    rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
    pos = centre + np.stack((a * np.cos(theta), b * np.sin(theta)), -1) @ rot.T
    tangent = direction * np.stack((-a * np.sin(theta), b * np.cos(theta)), -1) @ rot.T
    return pos, np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0]))


def _gait(t, rng, height, jog: bool):
    f = rng.uniform(1.3, 1.5) if jog else rng.uniform(0.85, 1.0)  # strides per second
    path, heading = _ellipse_path(t, rng, speed=f * height * rng.uniform(0.72, 0.82))
    ph = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)  # left-leg phase; hip flexion ~ sin(ph)
    a: dict[str, np.ndarray] = {}
    for s, p in (("l_", ph), ("r_", ph + np.pi)):
        if jog:
            a[s + "hip_flex"] = 15 + 30 * np.sin(p)
            a[s + "knee"] = 15 + 80 * _bump(p + 0.5, 2)
            a[s + "sh_flex"] = 10 - 30 * np.sin(p)  # arms swing against the same-side leg
            a[s + "elbow"] = 85 + 12 * np.sin(p)
        else:
            a[s + "hip_flex"] = 8 + 22 * np.sin(p)
            a[s + "knee"] = 5 + 55 * _bump(p + 0.6, 3) + 12 * _bump(p - 2.1, 6)  # swing + loading peaks
            a[s + "sh_flex"] = 4 - 18 * np.sin(p)
            a[s + "elbow"] = 18 + 10 * (1 - np.sin(p))
    a["pelvis_yaw"] = -5 * np.sin(ph)  # pelvis turns with the forward leg, chest counter-rotates
    a["twist2"] = 8 * np.sin(ph)
    a["pelvis_roll"] = 3 * np.sin(2 * ph)
    a["lean1"] = np.full_like(t, 10.0 if jog else 3.0)
    lift = 0.04 * np.sin(ph) ** 4 if jog else np.zeros_like(t)  # running flight phase
    return a, heading, path, lift


def _walking(t, rng, h):
    return _gait(t, rng, h, jog=False)


def _jogging(t, rng, h):
    return _gait(t, rng, h, jog=True)


def _squat(t, rng, h):
    d = rng.uniform(0.7, 1.0) * ((1 - np.cos(2 * np.pi * t / rng.uniform(2.5, 3.5) + rng.uniform(0, 6.3))) / 2) ** 1.3
    a = {"pelvis_pitch": 30 * d, "lean1": 8 * d, "neck_pitch": -15 * d}
    for s in "lr":
        # Thigh ends ~horizontal (hip_flex - pelvis_pitch), shank leans forward ~35 deg.
        a.update({s + "_hip_flex": 5 + 115 * d, s + "_knee": 5 + 120 * d, s + "_hip_abd": 6 + 10 * d,
                  s + "_sh_flex": 10 + 75 * d, s + "_elbow": 10 + 20 * d})
    return a, _still_heading(t, rng), None, np.zeros_like(t)


def _waving(t, rng, h):
    s = rng.choice(["l_", "r_"])
    up = 0.5 * (1 + np.tanh(3 * np.sin(2 * np.pi * t / rng.uniform(3, 5) + rng.uniform(0, 6.3))))  # raise/lower
    wave = np.sin(2 * np.pi * rng.uniform(1.5, 2.5) * t)
    a = {s + "sh_abd": 10 + 115 * up, s + "sh_flex": 15 * up, s + "sh_rot": 80 * up,  # forearm points up
         s + "elbow": 12 + up * (45 + 30 * wave), "side1": 3 * np.sin(2 * np.pi * 0.3 * t),
         "neck_yaw": (20 if s == "l_" else -20) * up}
    return a, _still_heading(t, rng), None, np.zeros_like(t)


def _jumping_jacks(t, rng, h):
    ph = 2 * np.pi * rng.uniform(0.9, 1.2) * t + rng.uniform(0, 6.3)
    opening = (1 - np.cos(ph)) / 2
    a = {}
    for s in "lr":
        a.update({s + "_sh_abd": 12 + 145 * opening, s + "_hip_abd": 3 + 20 * opening,
                  s + "_knee": 6 + 20 * np.cos(ph) ** 2, s + "_hip_flex": 4 + 10 * np.cos(ph) ** 2})
    # Two hops per cycle, airborne mid-transition, knees bent at each landing.
    return a, _still_heading(t, rng), None, 0.06 * np.sin(ph) ** 2


def _turning(t, rng, h):
    direction = rng.choice([-1.0, 1.0])
    heading = _still_heading(t, rng) + direction * 2 * np.pi * t / rng.uniform(4, 7)
    ph = 2 * np.pi * rng.uniform(0.7, 0.9) * t + rng.uniform(0, 6.3)
    a = {"neck_yaw": np.full_like(t, 12 * direction), "pelvis_yaw": 4 * direction * np.sin(2 * ph)}
    for s, p in (("l_", ph), ("r_", ph + np.pi)):  # stepping in place, one foot at a time
        a.update({s + "hip_flex": 3 + 25 * _bump(p, 4), s + "knee": 5 + 45 * _bump(p, 4),
                  s + "sh_flex": 6 * np.sin(p + np.pi), s + "elbow": 20 + 10 * _bump(p, 2)})
    return a, heading, None, np.zeros_like(t)


def _reaching(t, rng, h):
    u = np.sin(2 * np.pi * t / rng.uniform(4, 6) + rng.uniform(0, 6.3))
    down, up = ((1 + u) / 2) ** 3, ((1 - u) / 2) ** 3  # bend to the floor, then reach overhead
    a = {"pelvis_pitch": 55 * down - 3 * up, "lean1": 15 * down - 4 * up, "lean2": 10 * down - 4 * up,
         "neck_pitch": -15 * down - 10 * up}
    for s in "lr":
        a.update({s + "_hip_flex": 63 * down, s + "_knee": 5 + 25 * down,
                  s + "_sh_flex": 90 * down + 165 * up, s + "_elbow": 10 + 10 * down})
    return a, _still_heading(t, rng), None, np.zeros_like(t)


def _still_heading(t, rng):
    return rng.uniform(-np.pi, np.pi) + np.radians(10) * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 6.3))


#: Action name -> motion generator. Names are the dataset's action keys.
ACTIONS = {"Walking": _walking, "Jogging": _jogging, "Squat": _squat, "Waving": _waving,
           "JumpingJacks": _jumping_jacks, "Turning": _turning, "Reaching": _reaching}


# ---- subjects, clips, cameras -----------------------------------------------------------------

def _make_body(rng, stature: float) -> dict[str, float]:
    # +-5% per segment (symmetric left/right) on top of the stature: people differ in build too.
    body = {k: stature * v * (1 + np.clip(rng.normal(0, 0.025), -0.05, 0.05)) for k, v in _PROPORTIONS.items()}
    return {**body, "stature": stature}


def _make_clip(kind, body, rng, t, tempo) -> np.ndarray:
    """One action: (T, 17, 3) float64 world positions."""
    ang, heading, path, lift = kind(t * tempo, rng, body["stature"])
    full = {}
    for name in _channels():
        base = _base(name)
        value = np.asarray(ang.get(name, _REST.get(base, 0.0)), dtype=np.float64) + np.zeros_like(t)
        for _ in range(2):  # idiosyncratic low-frequency movement
            amp = _NOISE[base] * rng.uniform(0.5, 1.0)
            value = value + amp * np.sin(2 * np.pi * rng.uniform(0.1, 0.7) * t + rng.uniform(0, 2 * np.pi))
        full[name] = _soft_clamp(value, *_LIMITS[base])
    rel = _forward_kinematics(body, full, heading)
    ankles = rel[:, [_J["left_ankle"], _J["right_ankle"]]]
    # Lowest foot on the ground: a smooth minimum (<= min, so feet never sink) avoids a velocity kink
    # at double support; walking's vertical bobbing and the squat's descent come out of it.
    tau = 0.01
    low = -tau * np.logaddexp(-ankles[:, 0, 2] / tau, -ankles[:, 1, 2] / tau)
    root = np.zeros((len(t), 3))
    root[:, 2] = body["ankle_height"] - low + lift
    if path is None:  # feet planted: the pelvis moves so the feet stay put around the anchor
        root[:, :2] = rng.uniform(-0.35, 0.35, 2) - ankles[:, :, :2].mean(axis=1)
    else:
        root[:, :2] = path
    return rel + root[:, None, :]


def _rig(num_cameras: int) -> CameraRig:
    """Human3.6M's rig: 1.4-1.9 m high, 4.5-6 m from the capture centre, stepping back (never widening) to fit."""
    # Every setting spelled out: the dataset (and its seeds) must not change when CameraRig's defaults do.
    return CameraRig(resolution=(RES, RES), focal_length_px=1145.0, focal_spread=0.015, principal_point_jitter_px=8.0,
                     radial_distortion=(-0.2, 0.24, 0.0), radial_distortion_std=(0.01, 0.01, 0.003),
                     tangential_distortion_std=1e-3, height_range=(1.4, 1.9), distance_range=(4.5, 6.0),
                     max_distance=9.0, step_m=0.25, min_focal_scale=1.0, num_cameras=num_cameras,
                     azimuth_spread_deg=360.0, azimuth_jitter_deg=float(np.degrees(0.3)), roll_deg=2.0,
                     aim_height=1.0, min_depth=1.0, margin_px=MARGIN_PX)


def _make_cameras(rng, subject: str, n: int, clips: list[np.ndarray]) -> list[CameraParameters]:
    # Aimed at (0, 0, 1 m), the centre of the capture area, like Human3.6M; stepping back is rarely
    # needed (paths stay near the centre).
    return place_cameras(np.concatenate(clips), _rig(n), rng, centre=(0.0, 0.0), id_prefix=subject)


def _generate(config: SyntheticConfig, pbar=None):
    n = len(config.subjects)
    if n == 0 or config.fps <= 0 or config.seconds_per_action <= 0 or config.cameras_per_subject <= 0:
        raise ValueError(f"invalid SyntheticConfig {config}")
    rng = np.random.default_rng(config.seed)
    # Evenly spread statures (shuffled) so subjects always differ, within 1.55-1.92 m.
    statures = rng.permutation(np.linspace(1.58, 1.89, n) + rng.uniform(-0.03, 0.03, n) if n > 1
                               else np.array([1.73 + rng.uniform(-0.03, 0.03)]))
    t = np.arange(int(round(config.seconds_per_action * config.fps))) / config.fps
    positions, cameras = {}, {}
    for k, subject in enumerate(config.subjects):
        srng = np.random.default_rng([config.seed, k])
        body, tempo = _make_body(srng, float(statures[k])), srng.uniform(0.9, 1.1)
        positions[subject] = {}
        for action, kind in ACTIONS.items():
            clip = _make_clip(kind, body, srng, t, tempo * srng.uniform(0.95, 1.05))
            positions[subject][action] = clip.astype(np.float32)
            if pbar is not None:
                pbar.update(1)
        cameras[subject] = _make_cameras(srng, subject, config.cameras_per_subject,
                                         list(positions[subject].values()))
    return positions, cameras


def generate_motion(config: SyntheticConfig) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, list[CameraParameters]]]:
    """positions subject -> action -> (T, 17, 3) float32 metres, world space, Human3.6M-17 order; cameras per subject.

    T = round(seconds_per_action * fps). Deterministic for a given config.
    """
    return _generate(config)


def project_dataset(positions, cameras) -> dict[str, dict[str, list[np.ndarray]]]:
    """2D pixels per camera (T, 17, 2) float32, through each camera's intrinsics including distortion.

    Args:
        positions: subject -> action -> (T, J, 3) world metres.
        cameras: subject -> list of :class:`CameraParameters`.
    Returns:
        subject -> action -> list (one per camera, in order) of (T, J, 2) float32 pixels.
    """
    return {s: {a: [project_points(p, cam)[0].astype(np.float32) for cam in cameras[s]] for a, p in acts.items()}
            for s, acts in positions.items()}


def generate_synthetic_dataset(out_dir, config: SyntheticConfig | None = None, progress: bool = True) -> tuple[Path, Path]:
    """Writes out_dir/data_3d_synthetic.npz and out_dir/data_2d_synthetic_gt.npz; returns both paths.

    The 3D file carries the cameras (poselift's ``cameras`` extension); the 2D file holds
    ground-truth projections in pixels with Human3.6M-17 metadata.
    """
    config = config or SyntheticConfig()
    out_dir = Path(out_dir)
    with tqdm(total=len(config.subjects) * len(ACTIONS) + 2, desc="synthetic dataset", disable=not progress) as pbar:
        positions, cameras = _generate(config, pbar)
        positions_2d = project_dataset(positions, cameras)
        pbar.update(1)
        path_3d = save_positions_3d(out_dir / "data_3d_synthetic.npz", positions, cameras=cameras)
        path_2d = save_positions_2d(out_dir / "data_2d_synthetic_gt.npz", positions_2d, H36M_17)
        pbar.update(1)
    return path_3d, path_2d
