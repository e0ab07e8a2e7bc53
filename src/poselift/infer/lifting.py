"""Lift a tracked person's 2D keypoints to metric 3D in camera space.

    Track2D (COCO-17 pixels) ─► normalise ─► temporal lifter ─► scale to height ─► trajectory ─► Poses3D

Offline, every frame sees half the receptive field of past and future frames
(edges padded by repeating the first/last frame, as VideoPose3D evaluates).
In **causal** mode frame t uses only frames <= t: a causal model is used as it
is; for a symmetric model the missing future is filled by repeating frame t,
exactly what the offline edge padding does at the end of a sequence, so
frame t's causal output equals the offline output of the video cut after t.
:class:`StreamingLifter` does the same one frame at a time, for live input.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from poselift.data.cmu import resample
from poselift.errors import ConfigError
from poselift.geometry.camera import normalize_screen_coordinates
from poselift.infer.smoothing import OneEuroFilter, gaussian_smooth, one_euro_smooth
from poselift.infer.trajectory import (DEFAULT_SUBJECT_HEIGHT_M, default_focal_length, estimate_trajectory,
                                       scale_to_height)
from poselift.infer.types import Poses3D, Track2D
from poselift.models.predict import predict_sequence
from poselift.models.refined import RefinedLifter
from poselift.models.registry import input_joints, is_causal, kind_of, output_joints
from poselift.models.temporal_conv import TemporalConvLifter, TemporalConvLifterStrided
from poselift.skeleton import COCO_17, H36M_17

__all__ = ["DEFAULT_MODEL", "LiftConfig", "StreamingLifter", "lift_track", "load_lifter_for_video"]

#: The shipped model for detector-style COCO-17 input.
DEFAULT_MODEL = "cmu_coco_rf81"
_FLIP = (list(COCO_17.joints_left), list(COCO_17.joints_right), list(H36M_17.joints_left), list(H36M_17.joints_right))


@dataclass
class LiftConfig:
    model: str = DEFAULT_MODEL  # a shipped model name (poselift models) or a .safetensors file
    subject_height_m: float = DEFAULT_SUBJECT_HEIGHT_M
    focal_length_px: float | None = None  # None: default_focal_length(width, height)
    causal: bool = False  # frame t uses only frames <= t (streams)
    smooth_sigma_frames: float = 0.0  # extra Gaussian smoothing of the pose (offline); One Euro when causal
    trajectory_sigma_frames: float = 2.0  # smoothing of the per-frame root solution (offline); One Euro when causal
    test_time_augmentation: bool = True  # average with the mirrored input
    model_fps: float | None = 50.0  # resample the 2D to the rate the model was trained at (None: as recorded)


def load_lifter_for_video(name_or_path: str) -> tuple[torch.nn.Module, str]:
    """A COCO-17 -> Human3.6M-17 lifter of any registered kind: a shipped model by name or a ``.safetensors`` file.

    RIE and SemGCN lifters work on the 3D skeleton's own joints, so only ones
    trained on Human3.6M-17 2D exist; they are refused here (the video's 2D is COCO-17).
    """
    if name_or_path.endswith(".safetensors"):
        from poselift.models.weights import load_model
        model, _, meta = load_model(name_or_path)
        layout = meta.get("keypoints_layout")
        label = name_or_path
    else:
        from poselift.pretrained import load_pretrained
        model, card = load_pretrained(name_or_path)
        layout, label = card.input_layout, card.name
    first = model.lifter if isinstance(model, RefinedLifter) else model
    if kind_of(first) in ("rie", "semgcn"):
        raise ConfigError(f"model {label}: a {kind_of(first)} lifter works on the 3D skeleton's own joints "
                          "(Human3.6M-17 2D); the video pipeline's 2D is COCO-17. Use a temporal_conv or baseline "
                          "lifter trained on COCO-17 keypoints")
    j_in, j_out = input_joints(model), output_joints(model)
    if j_in != 17 or j_out != 17 or (layout not in (None, "coco")):
        raise ConfigError(f"model {label}: the video pipeline needs a COCO-17 -> Human3.6M-17 lifter, this "
                          f"{kind_of(model)} lifter takes {j_in} {layout or ''} keypoints and gives {j_out} joints")
    return model.eval(), label


def _window_model(model: torch.nn.Module) -> torch.nn.Module:
    """A module mapping (N, RF, 17, 2) windows to (N, 1, 17, 3): the strided twin of a temporal convolution."""
    if isinstance(model, TemporalConvLifter):
        strided = TemporalConvLifterStrided(model.config)
        strided.load_state_dict(model.state_dict())
        return strided.eval()
    return model.eval()


def _lift_windows(strided: torch.nn.Module, windows: np.ndarray, tta: bool) -> np.ndarray:
    """(N, RF, 17, 2) normalised windows -> (N, 17, 3) centre-frame poses (flip-averaged when ``tta``)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(windows), 1024):
            x = torch.from_numpy(np.ascontiguousarray(windows[i:i + 1024], dtype=np.float32))
            y = strided(x)[:, 0]
            if tta:
                kl, kr, jl, jr = _FLIP
                xf = x.clone()
                xf[..., 0] *= -1
                xf[:, :, kl + kr] = xf[:, :, kr + kl]
                yf = strided(xf)[:, 0]
                yf[..., 0] *= -1
                yf[:, jl + jr] = yf[:, jr + jl]
                y = (y + yf) / 2
            out.append(y.numpy())
    return np.concatenate(out) if out else np.zeros((0, 17, 3), np.float32)


def _causal_windows(x: np.ndarray, receptive_field: int) -> np.ndarray:
    """(T, 17, 2) -> (T, RF, 17, 2): for frame t, frames t-pad..t+pad with the past edge-padded and the
    future replaced by frame t."""
    t = x.shape[0]
    pad = (receptive_field - 1) // 2
    offsets = np.arange(-pad, pad + 1)
    idx = np.clip(np.arange(t)[:, None] + np.minimum(offsets, 0)[None, :], 0, t - 1)
    return x[idx]


def lift_normalized(model: torch.nn.Module, keypoints: np.ndarray, *, causal: bool = False,
                    test_time_augmentation: bool = True) -> np.ndarray:
    """(T, 17, 2) normalised COCO-17 -> (T, 17, 3) root-relative Human3.6M-17 (model units, metres).

    Any registered lifter; a non-causal one in ``causal`` mode sees, for frame t,
    its usual window with the future frames replaced by frame t.
    """
    if is_causal(model) or not causal or model.receptive_field == 1:
        flip = _FLIP if test_time_augmentation else None
        return predict_sequence(model, keypoints, causal=is_causal(model), flip=flip)
    windows = _causal_windows(keypoints, model.receptive_field)
    return _lift_windows(_window_model(model), windows, test_time_augmentation)


def _resample(x: np.ndarray, src_fps: float, dst_fps: float, num_out: int | None = None) -> np.ndarray:
    """(T, ...) frames at ``src_fps`` onto a ``dst_fps`` grid from t = 0 (:func:`poselift.data.cmu.resample`).

    ``num_out`` frames when given: grid times past the input's last frame hold its value
    (going back to the video's rate can need one frame more than the forward grid covered).
    """
    out = resample(x, src_fps, dst_fps)
    if num_out is not None:
        out = out[:num_out]
        if len(out) < num_out:
            out = np.concatenate([out, np.repeat(out[-1:], num_out - len(out), axis=0)])
    return out


def lift_track(track: Track2D, config: LiftConfig | None = None,
               model: TemporalConvLifter | None = None, model_label: str | None = None) -> Poses3D:
    """Lift one person's track to metric 3D with a trajectory (see module docstring)."""
    cfg = config or LiftConfig()
    if model is None:
        model, model_label = load_lifter_for_video(cfg.model)
    meta = track.meta
    w, h = meta.width, meta.height
    norm = normalize_screen_coordinates(track.keypoints.astype(np.float32), w, h).astype(np.float32)
    # A temporal model learnt motion at its training frame rate: at 30 fps a step covers 1.7x the motion
    # it saw at 50 fps. Resample the 2D to the model's rate, lift, and sample the result back at the video's
    # frame times. Not in causal mode, where interpolating needs the next frame.
    resample = (cfg.model_fps is not None and not cfg.causal and len(norm) > 1
                and abs(meta.fps - cfg.model_fps) > 0.01 * cfg.model_fps)
    if resample:
        lifted = lift_normalized(model, _resample(norm, meta.fps, cfg.model_fps), causal=False,
                                 test_time_augmentation=cfg.test_time_augmentation)
        rel = _resample(lifted, cfg.model_fps, meta.fps, len(norm))
    else:
        rel = lift_normalized(model, norm, causal=cfg.causal, test_time_augmentation=cfg.test_time_augmentation)
    rel = rel - rel[:, :1]
    if cfg.smooth_sigma_frames > 0:
        rel = (one_euro_smooth(rel, meta.fps) if cfg.causal else gaussian_smooth(rel, cfg.smooth_sigma_frames))
    rel, factor = scale_to_height(rel, cfg.subject_height_m, track.valid if track.valid.any() else None)
    focal = cfg.focal_length_px or default_focal_length(w, h)
    # Interpolated frames (scores 0) still need a root: weigh their filled-in joints equally.
    weights = np.where(track.detected[:, None], np.maximum(track.scores, 0.05), 1.0)
    root = estimate_trajectory(rel, track.keypoints, weights, focal_length=focal, center=(w / 2, h / 2))
    if cfg.trajectory_sigma_frames > 0:
        root = one_euro_smooth(root, meta.fps, min_cutoff=0.5) if cfg.causal else gaussian_smooth(
            root, cfg.trajectory_sigma_frames)
    info = {"model": model_label, "receptive_field": model.receptive_field, "subject_height_m": cfg.subject_height_m,
            "scale_factor": round(factor, 4), "focal_length_px": round(float(focal), 2),
            "principal_point_px": [w / 2, h / 2], "causal": cfg.causal,
            "smooth_sigma_frames": cfg.smooth_sigma_frames, "trajectory_sigma_frames": cfg.trajectory_sigma_frames,
            "test_time_augmentation": cfg.test_time_augmentation,
            "lifted_at_fps": cfg.model_fps if resample else meta.fps}
    return Poses3D(keypoints_3d=(rel + root[:, None]).astype(np.float32),
                   keypoints_2d=track.keypoints.astype(np.float32), scores_2d=track.scores.astype(np.float32),
                   valid=track.valid.copy(), detected=track.detected.copy(), fps=meta.fps, meta=meta, info=info)


class StreamingLifter:
    """Frame-by-frame causal lifting for live input (webcam, stream).

    ``push(keypoints (17, 2) pixels)`` returns the root-relative pose (17, 3) of
    that frame in model units (metres, before height scaling) using only the
    frames pushed so far: the same numbers as :func:`lift_normalized` with
    ``causal=True`` on the whole sequence. Optional One Euro smoothing.
    """

    def __init__(self, model: torch.nn.Module, width: int, height: int, *, test_time_augmentation: bool = True,
                 smoothing: OneEuroFilter | None = None) -> None:
        self.width, self.height, self.tta, self.smoothing = width, height, test_time_augmentation, smoothing
        self.rf = model.receptive_field
        self.causal_model = is_causal(model)
        self._strided = _window_model(model)
        self._past: deque[np.ndarray] = deque(maxlen=self.rf if self.causal_model else (self.rf + 1) // 2)

    def push(self, keypoints: np.ndarray) -> np.ndarray:
        x = normalize_screen_coordinates(np.asarray(keypoints, dtype=np.float32), self.width, self.height)
        if not self._past:
            self._past.extend([x] * self._past.maxlen)  # the first frame pads the past, like edge padding
        else:
            self._past.append(x)
        past = np.stack(self._past)
        window = past if self.causal_model else np.concatenate([past, np.repeat(past[-1:], self.rf - len(past), 0)])
        y = _lift_windows(self._strided, window[None].astype(np.float32), self.tta)[0]
        y = y - y[:1]
        return self.smoothing(y) if self.smoothing is not None else y
