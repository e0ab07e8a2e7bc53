"""Assemble VideoPose3D-format files into per-camera sequences ready for training.

What VideoPose3D's ``run.py`` does at start-up, as a reusable object: 3D world
positions go to each camera's frame (root-relative, the root joint keeping the
global trajectory), 2D keypoints are trimmed to the mocap length and
normalised to screen coordinates, Human3.6M's 32 joints drop to 17, and
subjects/actions/subsets/downsampling select what a run sees.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poselift.data.vp3d_format import load_positions_2d, load_positions_3d
from poselift.errors import DataFormatError, PoseliftError
from poselift.geometry.camera import CameraParameters, normalize_screen_coordinates, world_to_camera
from poselift.geometry.published_cameras import published_cameras
from poselift.skeleton import H36M_17, H36M_17_FROM_32, Skeleton, skeleton_for_joint_count


@dataclass
class Sequence:
    """One subject/action seen by one camera."""

    subject: str
    action: str
    camera_index: int
    keypoints_2d: np.ndarray  # (T, J_2d, 2) normalised screen coordinates
    positions_3d: np.ndarray | None  # (T, J_3d, 3) camera space; joint 0 absolute, others root-relative
    camera: CameraParameters | None

    @property
    def intrinsics(self) -> np.ndarray | None:
        """(9,) normalised intrinsics for back-projection, or None without a camera."""
        return None if self.camera is None else self.camera.intrinsic_vector()

    @property
    def action_group(self) -> str:
        """Action without its take suffix (``"Walking 1"`` -> ``"Walking"``), as papers group them."""
        return self.action.split(" ")[0]


def deterministic_random(low: int, high: int, key: str) -> int:
    """An integer in [low, high) from a hash of ``key``: subset starts reproducible across runs."""
    raw = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], byteorder="little", signed=False)
    return int(raw / 2**32 * (high - low) + low)


class PoseDataset:
    """2D keypoints (+ optional 3D and cameras) grouped by subject, action and camera."""

    def __init__(self, sequences: dict[str, dict[str, list[Sequence]]], skeleton: Skeleton | None,
                 keypoints_metadata: dict, fps: float | None, source: str) -> None:
        self._sequences = sequences
        self.skeleton = skeleton  # 3D joint layout (None for 2D-only custom data)
        self.keypoints_metadata = keypoints_metadata
        self.fps = fps
        self.source = source
        sym = keypoints_metadata["keypoints_symmetry"]
        self.kps_left, self.kps_right = list(sym[0]), list(sym[1])

    @property
    def num_keypoints(self) -> int:
        for actions in self._sequences.values():
            for seqs in actions.values():
                return seqs[0].keypoints_2d.shape[1]
        raise PoseliftError(f"{self.source}: the dataset holds no sequences")

    @property
    def joints_left(self) -> list[int]:
        return list(self.skeleton.joints_left) if self.skeleton else []

    @property
    def joints_right(self) -> list[int]:
        return list(self.skeleton.joints_right) if self.skeleton else []

    def subjects(self) -> list[str]:
        return list(self._sequences)

    def actions(self, subject: str) -> list[str]:
        return list(self._sequences[subject])

    def has_3d(self, subject: str) -> bool:
        return all(s.positions_3d is not None for seqs in self._sequences[subject].values() for s in seqs)

    def _check_subjects(self, subjects: list[str]) -> None:
        missing = [s for s in subjects if s not in self._sequences]
        if missing:
            raise PoseliftError(f"{self.source}: subjects {missing} not in the data (available: {self.subjects()})")

    def select(self, subjects: list[str], actions: list[str] | None = None, subset: float = 1.0,
               downsample: int = 1, require_3d: bool = True) -> list[Sequence]:
        """Sequences of ``subjects`` whose action starts with one of ``actions`` (all if None).

        ``subset`` < 1 keeps a contiguous, deterministic fraction of each
        sequence; ``downsample`` keeps every n-th frame (VideoPose3D's rules).
        """
        self._check_subjects(subjects)
        if not 0 < subset <= 1:
            raise PoseliftError(f"subset must be in (0, 1], got {subset}")
        if downsample < 1:
            raise PoseliftError(f"downsample must be >= 1, got {downsample}")
        out = []
        for subject in subjects:
            if require_3d and not self.has_3d(subject):
                raise PoseliftError(f"{self.source}: subject {subject} has no 3D ground truth")
            for action, seqs in self._sequences[subject].items():
                if actions is not None and not any(action.startswith(a) for a in actions):
                    continue
                for seq in seqs:
                    out.append(_cut(seq, subset, downsample))
        if not out:
            raise PoseliftError(f"{self.source}: no sequences for subjects {subjects} and actions {actions}")
        return out


def _cut(seq: Sequence, subset: float, stride: int) -> Sequence:
    n = seq.keypoints_2d.shape[0]
    if subset < 1:
        n_frames = int(round(n // stride * subset) * stride)
        start = deterministic_random(0, n - n_frames + 1, str(n))
        sl = slice(start, start + n_frames, stride)
    else:
        sl = slice(None, None, stride)
    return Sequence(seq.subject, seq.action, seq.camera_index, seq.keypoints_2d[sl],
                    None if seq.positions_3d is None else seq.positions_3d[sl], seq.camera)


def _guess_published(path: Path) -> str | None:
    name = path.name.lower()
    if "h36m" in name:
        return "h36m"
    if "humaneva" in name:
        return "humaneva"
    return None


def load_dataset(path_2d: str | Path, path_3d: str | Path | None = None, *, cameras: str = "auto",
                 fps: float | None = None) -> PoseDataset:
    """Load a VideoPose3D dataset pair (or a 2D-only custom file when ``path_3d`` is None).

    ``cameras``: ``"auto"`` (the 3D file's own cameras, else the published
    Human3.6M/HumanEva ones guessed from the file name), ``"h36m"`` or ``"humaneva"``.
    """
    path_2d = Path(path_2d)
    kps, meta = load_positions_2d(path_2d)
    if path_3d is None:
        return _custom_dataset(kps, meta, path_2d, fps)
    path_3d = Path(path_3d)
    positions, file_cameras = load_positions_3d(path_3d)
    if cameras == "auto":
        if file_cameras is not None:
            cams = file_cameras
        else:
            guess = _guess_published(path_3d)
            if guess is None:
                raise DataFormatError(
                    f"{path_3d}: no 'cameras' entry and the name does not say h36m or humaneva; "
                    "pass cameras='h36m' or 'humaneva', or write the cameras into the file"
                )
            cams = published_cameras(guess)
    else:
        cams = published_cameras(cameras)

    any_arr = next(iter(next(iter(positions.values())).values()))
    skeleton = skeleton_for_joint_count(any_arr.shape[1])
    if skeleton.name == "h36m32":
        skeleton = H36M_17
    if fps is None:
        fps = {"h36m": 50.0, "humaneva15": 60.0}.get(skeleton.name, 50.0)

    sequences: dict[str, dict[str, list[Sequence]]] = {}
    for subject, actions in positions.items():
        if subject not in cams:
            raise DataFormatError(f"{path_3d}: no cameras for subject {subject} (cameras known for {sorted(cams)})")
        if subject not in kps:
            raise DataFormatError(f"{path_2d}: subject {subject} of {path_3d.name} is missing from the 2D file")
        sequences[subject] = {}
        for action, world in actions.items():
            if action not in kps[subject]:
                raise DataFormatError(f"{path_2d}: action {action!r} of subject {subject} is missing")
            if world.shape[1] == 32:
                world = world[:, list(H36M_17_FROM_32)]
            per_cam_2d = kps[subject][action]
            if len(per_cam_2d) != len(cams[subject]):
                raise DataFormatError(
                    f"{path_2d}: {subject}/{action} has {len(per_cam_2d)} camera views, expected {len(cams[subject])}"
                )
            seqs = []
            for c, (cam, k2d) in enumerate(zip(cams[subject], per_cam_2d)):
                if k2d.shape[0] < world.shape[0]:
                    raise DataFormatError(
                        f"{path_2d}: {subject}/{action} camera {c} has {k2d.shape[0]} frames, fewer than the "
                        f"{world.shape[0]} of the 3D data"
                    )
                pos = world_to_camera(world, cam.orientation, cam.translation).astype(np.float32)
                pos[:, 1:] -= pos[:, :1]  # root-relative; the root keeps the trajectory
                k = k2d[: world.shape[0]].copy()
                k[..., :2] = normalize_screen_coordinates(k[..., :2], cam.res_w, cam.res_h)
                seqs.append(Sequence(subject, action, c, k[..., :2].astype(np.float32), pos, cam))
            sequences[subject][action] = seqs
    return PoseDataset(sequences, skeleton, meta, fps, f"{path_2d.name}+{path_3d.name}")


def _custom_dataset(kps, meta: dict, path: Path, fps: float | None) -> PoseDataset:
    video_meta = meta.get("video_metadata")
    if not isinstance(video_meta, dict):
        raise DataFormatError(f"{path}: a 2D file without 3D data needs metadata['video_metadata'] {{video: {{w, h}}}}")
    sequences: dict[str, dict[str, list[Sequence]]] = {}
    for subject, actions in kps.items():
        if subject not in video_meta or not {"w", "h"} <= set(video_meta[subject]):
            raise DataFormatError(f"{path}: video_metadata has no {{'w', 'h'}} for {subject!r}")
        w, h = int(video_meta[subject]["w"]), int(video_meta[subject]["h"])
        sequences[subject] = {}
        for action, per_cam in actions.items():
            seqs = []
            for c, k in enumerate(per_cam):
                cam = CameraParameters(id=subject, res_w=w, res_h=h)
                k = normalize_screen_coordinates(k[..., :2], w, h).astype(np.float32)
                seqs.append(Sequence(subject, action, c, k, None, cam))
            sequences[subject][action] = seqs
    return PoseDataset(sequences, None, meta, fps, path.name)


def resolve_dataset_paths(data_dir: str | Path, dataset: str, keypoints: str) -> tuple[Path, Path]:
    """VideoPose3D's naming: ``data_3d_<dataset>.npz`` and ``data_2d_<dataset>_<keypoints>.npz``."""
    data_dir = Path(data_dir)
    return data_dir / f"data_2d_{dataset}_{keypoints}.npz", data_dir / f"data_3d_{dataset}.npz"
