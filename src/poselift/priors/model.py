"""Fitted pose priors (BPC bone-ratio Gaussians, JMC free-bone densities) and their file format.

The priors are a handful of small arrays fitted once on labelled poses and
then evaluated on every training batch, so this module keeps them as numpy
(exact, easy to save) and hands torch copies, cached per dtype and device, to
the likelihood methods the losses call.

File format: one ``.safetensors`` file. The arrays are float64 tensors under
their field names; the header's metadata holds ``format`` =
``poselift.pose_priors``, ``version`` and ``meta`` (JSON). Loading never
unpickles anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from poselift.atomic import atomic_write
from poselift.errors import DataFormatError, PoseliftError
from poselift.priors.bone_ratios import RATIO_NAMES
from poselift.priors.free_bones import (FREE_BONE_NAMES, LEFT_FREE_BONES, MIRROR_PAIRS, as_float_tensor,
                                        mirror_free_bone_vectors)

FORMAT_TAG = "poselift.pose_priors"
FORMAT_VERSION = 1
NUM_RATIOS = len(RATIO_NAMES)
NUM_FREE_BONES = len(FREE_BONE_NAMES)
ARRAY_FIELDS = ("ratio_mean", "ratio_std", "fb_weights", "fb_means", "fb_covs", "bone_length_mean")
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(eq=False)
class PosePriors:
    """BPC and JMC priors.

    Attributes:
        ratio_mean, ratio_std: (15,) Gaussian per bone ratio (order of
            :data:`poselift.priors.bone_ratios.BONE_RATIOS`).
        fb_weights: (16, K) mixture weights per free bone (rows sum to 1).
        fb_means: (16, K, 3) component means (unit-vector space, not renormalised).
        fb_covs: (16, K, 3, 3) component covariances (symmetric positive definite).
        bone_length_mean: (16,) mean labelled bone length in metres (order of
            :data:`poselift.priors.bone_ratios.BONES`).
        meta: JSON-able facts about the fit: ``subjects``, ``frames``, ``jitter``,
            ``components``, ``group_mirrored``, ``created``, ...

    When ``meta["group_mirrored"]`` is true the free-bone densities are over
    vectors in the right-side convention: left bones' vectors are passed
    through :func:`mirror_free_bone_vectors` before evaluation, and each left
    bone's parameters equal its right partner's.
    """

    ratio_mean: np.ndarray
    ratio_std: np.ndarray
    fb_weights: np.ndarray
    fb_means: np.ndarray
    fb_covs: np.ndarray
    bone_length_mean: np.ndarray
    meta: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ARRAY_FIELDS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        _validate(self, "PosePriors")

    # ---- properties ---------------------------------------------------------------------------
    @property
    def components(self) -> int:
        return int(self.fb_weights.shape[1])

    @property
    def group_mirrored(self) -> bool:
        return bool(self.meta.get("group_mirrored", False))

    # ---- likelihoods --------------------------------------------------------------------------
    def _tensors(self, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        key = (dtype, str(device))
        if key not in self._cache:
            chol = np.linalg.cholesky(self.fb_covs)  # (16, K, 3, 3)
            chol_inv = np.linalg.inv(chol)
            logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)  # (16, K)
            with np.errstate(divide="ignore"):
                log_w = np.log(self.fb_weights)
            host = {"ratio_mean": self.ratio_mean, "ratio_std": self.ratio_std, "log_w": log_w,
                    "mu": self.fb_means, "chol_inv": chol_inv, "logdet": logdet}
            self._cache[key] = {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in host.items()}
        return self._cache[key]

    def ratio_log_likelihood(self, ratios):
        """Gaussian log-density of each bone ratio.

        Args:
            ratios: (..., 15) torch tensor (differentiable) or numpy array.

        Returns:
            (..., 15), same type.
        """
        x, was_numpy = as_float_tensor(ratios)
        if x.shape[-1:] != (NUM_RATIOS,):
            raise ValueError(f"ratios must have shape (..., {NUM_RATIOS}), got {tuple(x.shape)}")
        t = self._tensors(x.dtype, x.device)
        z = (x - t["ratio_mean"]) / t["ratio_std"]
        out = -0.5 * z * z - torch.log(t["ratio_std"]) - 0.5 * _LOG_2PI
        return out.numpy() if was_numpy else out

    def free_bone_log_likelihood(self, vectors):
        """Log-density of each free-bone unit vector under its (mixture of) 3-D Gaussian(s).

        Args:
            vectors: (..., 16, 3) from :func:`poselift.priors.free_bones.free_bone_vectors`
                (per-bone convention; mirroring is applied here when the priors are grouped).

        Returns:
            (..., 16), same type; differentiable for torch input.
        """
        x, was_numpy = as_float_tensor(vectors)
        if tuple(x.shape[-2:]) != (NUM_FREE_BONES, 3):
            raise ValueError(f"vectors must have shape (..., {NUM_FREE_BONES}, 3), got {tuple(x.shape)}")
        if self.group_mirrored:
            x = mirror_free_bone_vectors(x)
        t = self._tensors(x.dtype, x.device)
        diff = x[..., :, None, :] - t["mu"]  # (..., 16, K, 3)
        z = (t["chol_inv"] @ diff[..., None]).squeeze(-1)
        log_comp = -0.5 * (z * z).sum(-1) - 0.5 * t["logdet"] - 1.5 * _LOG_2PI + t["log_w"]
        out = torch.logsumexp(log_comp, dim=-1)
        return out.numpy() if was_numpy else out

    # ---- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write one ``.safetensors`` file (arrays + JSON meta in its header), atomically."""
        from safetensors.numpy import save_file

        try:
            meta_json = json.dumps(self.meta, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"PosePriors.meta must be JSON-serialisable ({exc})") from None
        arrays = {name: np.ascontiguousarray(getattr(self, name)) for name in ARRAY_FIELDS}
        header = {"format": FORMAT_TAG, "version": str(FORMAT_VERSION), "meta": meta_json}
        return atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=header))

    @classmethod
    def load(cls, path: str | Path) -> "PosePriors":
        """Read a file written by :meth:`save`; :class:`DataFormatError` names the file and field at fault."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise PoseliftError(f"{path}: pose-priors file not found")
        try:
            with safe_open(str(path), framework="numpy") as f:
                header = f.metadata() or {}
                arrays = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise DataFormatError(f"{path}: not a readable .safetensors pose-priors file ({exc})") from None
        if header.get("format") != FORMAT_TAG:
            raise DataFormatError(f"{path}: header field 'format' is {header.get('format')!r}, "
                                  f"expected {FORMAT_TAG!r} (is this a pose-priors file?)")
        if header.get("version") != str(FORMAT_VERSION):
            raise DataFormatError(f"{path}: header field 'version' is {header.get('version')!r}, "
                                  f"this poselift reads version {FORMAT_VERSION}")
        try:
            meta = json.loads(header.get("meta", ""))
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: header field 'meta' is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise DataFormatError(f"{path}: header field 'meta' must be a JSON object, got {type(meta).__name__}")
        for name in ARRAY_FIELDS:
            if name not in arrays:
                raise DataFormatError(f"{path}: missing array field {name!r} (found {sorted(arrays)})")
            if not np.issubdtype(arrays[name].dtype, np.floating):
                raise DataFormatError(f"{path}: field {name!r} has dtype {arrays[name].dtype}, expected floats")
        obj = cls.__new__(cls)
        for name in ARRAY_FIELDS:
            setattr(obj, name, np.asarray(arrays[name], dtype=np.float64))
        obj.meta = meta
        obj._cache = {}
        _validate(obj, str(path))
        return obj

    # ---- reporting ----------------------------------------------------------------------------
    def summary(self) -> str:
        """A short human-readable description: fit facts, per-ratio mean/std, per-bone spread."""
        m = self.meta
        lines = [f"pose priors: {m.get('frames', '?')} frames of subjects {','.join(m.get('subjects', [])) or '?'}; "
                 f"bone-length jitter {m.get('jitter', '?')}; {self.components} component(s) per free bone; "
                 f"left/right grouped: {self.group_mirrored}"]
        lines.append(f"{'bone ratio':<30} {'mean':>8} {'std':>8}")
        for name, mu, sd in zip(RATIO_NAMES, self.ratio_mean, self.ratio_std):
            lines.append(f"{name:<30} {mu:8.4f} {sd:8.4f}")
        lines.append(f"{'free bone':<16} {'mean direction (x, y, z)':>27} {'spread (deg)':>13}")
        rights = {r for r, _ in MIRROR_PAIRS}
        for j, name in enumerate(FREE_BONE_NAMES):
            if self.group_mirrored and j in LEFT_FREE_BONES:
                continue  # same density as its right partner
            label = name.replace("right_", "") + " (R+L)" if self.group_mirrored and j in rights else name
            mean = (self.fb_weights[j, :, None] * self.fb_means[j]).sum(0)
            direction = mean / max(np.linalg.norm(mean), 1e-12)
            # Total variance of a unit vector around its mean ~ angular variance (radians^2) for tight clusters.
            second = (self.fb_weights[j, :, None, None] * (self.fb_covs[j] + np.einsum(
                "ka,kb->kab", self.fb_means[j], self.fb_means[j]))).sum(0) - np.outer(mean, mean)
            spread = math.degrees(math.sqrt(max(np.trace(second), 0.0)))
            lines.append(f"{label:<16} ({direction[0]:7.3f}, {direction[1]:7.3f}, {direction[2]:7.3f}) {spread:13.1f}")
        lines.append("mean bone length (m): " + ", ".join(f"{v:.3f}" for v in self.bone_length_mean))
        return "\n".join(lines)


def _validate(p: PosePriors, where: str) -> None:
    """Shapes, finiteness and the constraints the likelihoods rely on; raises DataFormatError."""
    def bad(field_name: str, what: str) -> DataFormatError:
        return DataFormatError(f"{where}: field {field_name!r} {what}")

    if p.fb_weights.ndim != 2 or p.fb_weights.shape[0] != NUM_FREE_BONES or p.fb_weights.shape[1] < 1:
        raise bad("fb_weights", f"has shape {p.fb_weights.shape}, expected ({NUM_FREE_BONES}, K) with K >= 1")
    k = p.fb_weights.shape[1]
    expected = {"ratio_mean": (NUM_RATIOS,), "ratio_std": (NUM_RATIOS,), "fb_means": (NUM_FREE_BONES, k, 3),
                "fb_covs": (NUM_FREE_BONES, k, 3, 3), "bone_length_mean": (NUM_FREE_BONES,)}
    for name, shape in expected.items():
        if getattr(p, name).shape != shape:
            raise bad(name, f"has shape {getattr(p, name).shape}, expected {shape}")
    for name in ARRAY_FIELDS:
        if not np.all(np.isfinite(getattr(p, name))):
            raise bad(name, "contains NaN or infinite values")
    if np.any(p.ratio_std <= 0):
        raise bad("ratio_std", "must be > 0 everywhere")
    if np.any(p.fb_weights < 0) or not np.allclose(p.fb_weights.sum(1), 1.0, atol=1e-6):
        raise bad("fb_weights", "must be non-negative with rows summing to 1")
    if not np.allclose(p.fb_covs, np.swapaxes(p.fb_covs, -1, -2), atol=1e-9):
        raise bad("fb_covs", "must be symmetric")
    if np.any(np.linalg.eigvalsh(p.fb_covs) <= 0):
        raise bad("fb_covs", "must be positive definite")
    if not isinstance(p.meta, dict):
        raise bad("meta", f"must be a dict, got {type(p.meta).__name__}")
