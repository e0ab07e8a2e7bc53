"""CMU motion capture as a VideoPose3D-format dataset: virtual cameras, exact and detector-like 2D keypoints.

``build_cmu_dataset(src_dir, out_dir)`` loads every CMU BVH clip under
``src_dir`` (:func:`poselift.data.cmu.load_cmu_clip`: Human3.6M-17 joints,
metres, world Z-up, ground at z = 0, resampled to ``fps``) and writes into
``out_dir``:

``data_3d_cmu.npz``
    ``positions_3d`` subject -> action (the clip name) -> (T, 17, 3) world
    metres, Human3.6M-17 order, and the cameras (poselift's ``cameras``
    extension) per subject.
``data_2d_cmu_gt.npz``
    Human3.6M-17 keypoints, exact projections (pixels, with lens distortion).
``data_2d_cmu_coco_gt.npz``
    COCO-17 keypoints (:func:`poselift.data.coco_synthesis.coco_from_h36m`),
    exact projections: what a perfect COCO detector would report.
``data_2d_cmu_coco_noisy.npz`` (unless ``noise=None``)
    The same COCO-17 keypoints with detector-like errors
    (:mod:`poselift.data.keypoint_noise`), (T, 17, 3): x, y, confidence (0
    where the joint was "missed" and filled in). Same frames as the others.

Load with ``load_dataset(out_dir / "data_2d_cmu_coco_noisy.npz", out_dir / "data_3d_cmu.npz")``.

Choices:

* **One camera rig per subject.** VideoPose3D's format keeps cameras per
  subject, not per clip, so each subject gets ``cameras_per_clip`` cameras
  placed (:func:`poselift.data.virtual_cameras.place_cameras`) to see every
  joint of every frame of all its clips.
* **Clips are re-centred.** Mocap clips start wherever the actor stood, so the
  union of a subject's clips can span a whole studio; each clip is moved
  horizontally so the centre of its (x, y) bounding box is the origin (heights
  and orientation are untouched; like Human3.6M, where every action happens in
  the same capture area). ``recentre=False`` keeps the original positions.
* **Seeds.** Cameras depend on ``seed`` and the subject's name, noise on
  ``seed``, subject, clip name and camera: adding or removing clips does not
  change the other subjects' cameras or the other sequences' noise.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from poselift.data.keypoint_noise import COCO_17_OKS_WEIGHTS, NoiseModel, apply_noise
from poselift.data.virtual_cameras import CameraRig, place_cameras, project_points
from poselift.data.vp3d_format import save_positions_2d, save_positions_3d
from poselift.errors import ConfigError, DataFormatError, PoseliftError
from poselift.geometry.camera import CameraParameters
from poselift.skeleton import COCO_17, H36M_17

__all__ = ["DEFAULT_NOISE", "CmuDatasetSummary", "build_cmu_dataset"]

#: The default detector-error model for COCO-17 keypoints: NoiseModel's defaults, scaled per joint like
#: COCO's annotation spread (face points precise, hips least so).
DEFAULT_NOISE = NoiseModel(joint_weights=COCO_17_OKS_WEIGHTS)

FILE_3D = "data_3d_cmu.npz"
FILE_2D_GT = "data_2d_cmu_gt.npz"
FILE_2D_COCO_GT = "data_2d_cmu_coco_gt.npz"
FILE_2D_COCO_NOISY = "data_2d_cmu_coco_noisy.npz"


@dataclass
class CmuDatasetSummary:
    """What :func:`build_cmu_dataset` wrote."""

    paths: dict[str, Path]  # "3d", "2d_gt", "2d_coco_gt" and (with noise) "2d_coco_noisy"
    frames: dict[str, dict[str, int]]  # subject -> action (clip name) -> frames
    sources: dict[str, dict[str, Path]]  # subject -> action -> BVH file
    cameras: dict[str, list[CameraParameters]] = field(repr=False)  # subject -> cameras
    fps: float = 50.0

    @property
    def subjects(self) -> list[str]:
        return list(self.frames)

    @property
    def num_clips(self) -> int:
        return sum(len(a) for a in self.frames.values())

    @property
    def num_frames(self) -> int:
        """Mocap frames (each seen by every camera of its subject)."""
        return sum(sum(a.values()) for a in self.frames.values())

    def describe(self) -> str:
        lines = [f"{len(self.frames)} subjects, {self.num_clips} clips, {self.num_frames} frames "
                 f"({self.num_frames / self.fps / 60:.1f} min at {self.fps:g} fps)"]
        for subject, actions in self.frames.items():
            lines.append(f"  {subject}: {len(actions)} clips, {sum(actions.values())} frames, "
                         f"{len(self.cameras[subject])} cameras")
        lines += [f"wrote {p}" for p in self.paths.values()]
        return "\n".join(lines)


def _seed(*parts) -> list[int]:
    """Entropy for numpy's SeedSequence from ints and strings (strings via CRC-32: stable across runs)."""
    return [p if isinstance(p, int) else zlib.crc32(str(p).encode()) for p in parts]


def _default_loader():
    try:
        from poselift.data.cmu import find_cmu_clips, load_cmu_clip
    except ImportError as exc:
        raise PoseliftError(f"the CMU BVH loader (poselift.data.cmu) is not available: {exc}") from None
    return find_cmu_clips, load_cmu_clip


def _default_to_coco():
    try:
        from poselift.data.coco_synthesis import coco_from_h36m
    except ImportError as exc:
        raise PoseliftError(f"COCO keypoint synthesis (poselift.data.coco_synthesis) is not available: {exc}") from None
    return coco_from_h36m


def _accepts(func: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def _check_positions(arr, path: Path, what: str, joints: int = 17) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 3 or arr.shape[1:] != (joints, 3) or arr.shape[0] < 1:
        raise DataFormatError(f"{path}: {what} should be (T, {joints}, 3) with T >= 1, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataFormatError(f"{path}: {what} contains NaN or infinite values")
    return arr.astype(np.float32)


def build_cmu_dataset(src_dir, out_dir, fps: float = 50.0, cameras_per_clip: int = 4, rig: CameraRig | None = None,
                      noise: NoiseModel | None = DEFAULT_NOISE, seed: int = 0, progress: bool = True, *,
                      recentre: bool = True, find_clips: Callable | None = None, load_clip: Callable | None = None,
                      to_coco: Callable | None = None) -> CmuDatasetSummary:
    """Build the CMU dataset files in ``out_dir`` from the BVH clips under ``src_dir`` (see the module doc).

    Args:
        fps: frame rate of the output (clips are resampled by the loader).
        cameras_per_clip: cameras per subject (overrides ``rig.num_cameras``).
        rig: camera settings (default :class:`CameraRig`, Human3.6M-like).
        noise: detector-error model for ``data_2d_cmu_coco_noisy.npz``; None
            writes no noisy file (an existing one is left as it is).
        seed: seeds the cameras and the noise.
        recentre: move each clip so its horizontal bounding box is centred on the origin.
        find_clips, load_clip, to_coco: stand-ins for :func:`poselift.data.cmu.find_cmu_clips`,
            :func:`poselift.data.cmu.load_cmu_clip` and
            :func:`poselift.data.coco_synthesis.coco_from_h36m` (tests).
    Raises:
        ConfigError: bad options or ``src_dir`` is not a folder.
        DataFormatError: no clips found, or a clip is not usable (the file is named).
        CameraPlacementError: a subject's motion cannot be framed by the rig.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if not fps > 0:
        raise ConfigError(f"fps must be > 0, got {fps}")
    if cameras_per_clip < 1:
        raise ConfigError(f"cameras per subject must be >= 1, got {cameras_per_clip}")
    if not src_dir.is_dir():
        raise ConfigError(f"{src_dir}: no such folder (expected a folder of CMU .bvh files)")
    rig = replace(rig or CameraRig(), num_cameras=cameras_per_clip)
    if find_clips is None and not any(p.suffix.lower() == ".bvh" for p in src_dir.rglob("*") if p.is_file()):
        raise DataFormatError(f"{src_dir}: no .bvh files found")
    if find_clips is None or load_clip is None:
        default_find, default_load = _default_loader()
        find_clips, load_clip = find_clips or default_find, load_clip or default_load
    to_coco = to_coco or _default_to_coco()

    files = [Path(p) for p in find_clips(src_dir)]
    if not files:
        raise DataFormatError(f"{src_dir}: no .bvh files found")

    positions: dict[str, dict[str, np.ndarray]] = {}
    coco: dict[str, dict[str, np.ndarray]] = {}
    sources: dict[str, dict[str, Path]] = {}
    for path in tqdm(files, desc="loading CMU clips", disable=not progress):
        clip = load_clip(path, fps=fps)
        if abs(float(clip.fps) - fps) > 1e-6 * fps:
            raise DataFormatError(f"{path}: the loader returned {clip.fps} fps, asked for {fps}")
        pos = _check_positions(clip.positions, path, "positions")
        if recentre:
            flat = pos.reshape(-1, 3)
            pos = pos.copy()
            pos[..., :2] -= (flat[:, :2].min(axis=0) + flat[:, :2].max(axis=0)) / 2
        subject, action = str(clip.subject), str(clip.name)
        acts = positions.setdefault(subject, {})
        k = 2
        while action in acts:  # same clip name twice (e.g. from two folders): keep both
            action = f"{clip.name}_{k}"
            k += 1
        acts[action] = pos
        extra = {}
        head_frame = getattr(clip, "head_frame", None)  # rotations: unaffected by the re-centring
        if head_frame is not None and _accepts(to_coco, "head_frame"):
            extra["head_frame"] = head_frame
        coco.setdefault(subject, {})[action] = _check_positions(to_coco(pos, **extra), path, "COCO keypoints")
        sources.setdefault(subject, {})[action] = path
    order = sorted(positions, key=lambda s: (0, int(s), s) if s.isdigit() else (1, 0, s))  # "2" before "16"
    positions = {s: positions[s] for s in order}

    cameras: dict[str, list[CameraParameters]] = {}
    h36m_2d: dict = {}
    coco_2d: dict = {}
    noisy_2d: dict = {}
    for subject in tqdm(order, desc="cameras and projections", disable=not progress):
        acts = positions[subject]
        # Frame H36M and COCO points alike: COCO's face points stick out of the head.
        everything = np.concatenate([np.concatenate((acts[a], coco[subject][a]), axis=1) for a in acts])
        cams = place_cameras(everything, rig, np.random.default_rng(_seed(seed, subject)), id_prefix=subject)
        cameras[subject] = cams
        h36m_2d[subject], coco_2d[subject], noisy_2d[subject] = {}, {}, {}
        for action, pos in acts.items():
            h36m_2d[subject][action] = [project_points(pos, cam)[0].astype(np.float32) for cam in cams]
            coco_2d[subject][action] = [project_points(coco[subject][action], cam)[0].astype(np.float32)
                                        for cam in cams]
            if noise is not None:
                views = []
                for c, (cam, clean) in enumerate(zip(cams, coco_2d[subject][action])):
                    rng = np.random.default_rng(_seed(seed, subject, action, c, 1))
                    kps, conf = apply_noise(clean, noise, rng, fps=fps, image_size=(cam.res_w, cam.res_h))
                    views.append(np.concatenate((kps, conf[..., None]), axis=-1))
                noisy_2d[subject][action] = views

    paths = {
        "3d": save_positions_3d(out_dir / FILE_3D, positions, cameras=cameras),
        "2d_gt": save_positions_2d(out_dir / FILE_2D_GT, h36m_2d, H36M_17),
        "2d_coco_gt": save_positions_2d(out_dir / FILE_2D_COCO_GT, coco_2d, COCO_17),
    }
    if noise is not None:
        paths["2d_coco_noisy"] = save_positions_2d(out_dir / FILE_2D_COCO_NOISY, noisy_2d, COCO_17)
    frames = {s: {a: int(p.shape[0]) for a, p in acts.items()} for s, acts in positions.items()}
    return CmuDatasetSummary(paths=paths, frames=frames, sources={s: sources[s] for s in order}, cameras=cameras,
                             fps=float(fps))
