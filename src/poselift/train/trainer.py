"""Supervised and semi-supervised training of any registered lifter (VideoPose3D's protocol).

``model.kind`` picks the lifter (temporal_conv, rie, baseline, semgcn; ``model.refiner``
chains a SemGCN refiner after it). RIE's three training stages (``train.stage``) and
refiner training on a fixed first stage (``train.init_from`` + ``freeze_lifter``)
set which parameters the optimiser sees. Semi-supervision needs temporal convolutions.

Each epoch: shuffled single-frame (or ``stride``-frame) chunks with flip
augmentation; Adam (AMSGrad) with exponential learning-rate decay; batch-norm
momentum decaying from 0.1 to 0.001 over the run. With unlabelled subjects a
trajectory model is trained alongside (1/depth-weighted loss) and, after
``warmup`` epochs, unlabelled 2D is reconstructed by projecting pose +
trajectory through the camera, with a bone-length consistency term.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from poselift.atomic import atomic_write_text
from poselift.data.dataset import PoseDataset, load_dataset, resolve_dataset_paths
from poselift.data.keypoint_noise import COCO_17_OKS_WEIGHTS, NoiseModel, apply_noise
from poselift.geometry.camera import image_coordinates, normalize_screen_coordinates
from poselift.errors import ConfigError
from poselift.losses import BoneLengthConsistencyLoss, MPJPELoss, ReprojectionLoss, WeightedMPJPELoss
from poselift.models.fused import fuse_for_inference
from poselift.models.registry import kind_of
from poselift.models.temporal_conv import TemporalConvLifter, TemporalConvLifterStrided
from poselift.models.weights import save_model
from poselift.train.lifter_setup import fit_normalization, initialise_from, optimizer_groups
from poselift.train.model_factory import describe_lifter, lifter_from_config
from poselift.train.checkpoint import (decode_random_state, encode_random_state, load_checkpoint,
                                       save_checkpoint)
from poselift.train.config import ExperimentConfig, validate
from poselift.train.evaluation import (EvaluationReport, evaluate_sequences, predict_all, quick_mpjpe,
                                      root_relative)
from poselift.train.report import plot_training_curves, write_metrics_csv
from poselift.data.multiview_windows import MultiViewBatches
from poselift.data.windows import ChunkedBatches

INITIAL_BN_MOMENTUM, FINAL_BN_MOMENTUM = 0.1, 0.001


@dataclass
class TrainResult:
    history: list[dict]
    report: EvaluationReport
    run_dir: Path
    weights_path: Path


def bn_momentum(epoch: int, epochs: int, batches_per_epoch: int) -> float:
    """VideoPose3D's decay from 0.1 to 0.001, floored at 1 / batches per epoch.

    The floor keeps the running statistics' time constant within one epoch. On
    Human3.6M (~3,000 batches an epoch) it is below 0.001 and changes nothing; on
    small datasets, statistics averaged over ~1,000 batches would lag the weights
    by many epochs and inflate eval-mode error (measured: 66.9 mm vs 38.5 mm with
    recalibrated statistics on the synthetic quick-start run).
    """
    decayed = INITIAL_BN_MOMENTUM * math.exp(-epoch / epochs * math.log(INITIAL_BN_MOMENTUM / FINAL_BN_MOMENTUM))
    return min(INITIAL_BN_MOMENTUM, max(decayed, 1.0 / max(batches_per_epoch, 1)))


class Trainer:
    def __init__(self, config: ExperimentConfig, *, progress: bool = True, log=None) -> None:
        validate(config)
        self.cfg = config
        self.progress = progress
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.run_dir = Path(config.train.checkpoint_dir)
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        torch.manual_seed(config.train.seed)
        d = config.data
        path_2d, path_3d = resolve_dataset_paths(d.data_dir, d.dataset, d.keypoints)
        self.dataset: PoseDataset = load_dataset(path_2d, path_3d, cameras=d.cameras)
        self.train_seqs = self.dataset.select(d.subjects_train, d.actions, d.subset, d.downsample)
        test_dataset = self.dataset
        if d.keypoints_test and d.keypoints_test != d.keypoints:
            test_2d, _ = resolve_dataset_paths(d.data_dir, d.dataset, d.keypoints_test)
            test_dataset = load_dataset(test_2d, path_3d, cameras=d.cameras)
            if test_dataset.keypoints_metadata.get("layout_name") != self.dataset.keypoints_metadata.get("layout_name") \
                    or test_dataset.num_keypoints != self.dataset.num_keypoints:
                raise ConfigError(f"data.keypoints_test: {test_2d} has a different keypoint layout from {path_2d}")
        self.test_seqs = test_dataset.select(d.subjects_test, d.actions, 1.0, d.downsample)
        self.semi_seqs = (self.dataset.select(d.subjects_unlabeled, d.actions, 1.0, d.downsample, require_3d=False)
                          if d.subjects_unlabeled else [])
        self.semi = bool(self.semi_seqs)
        self._build_models()

    # ---- set-up -------------------------------------------------------------------------------
    def _lifter(self, num_joints_traj: int | None = None) -> torch.nn.Module:
        ds = self.dataset
        layout = ds.keypoints_metadata.get("layout_name")
        same_layout = (layout == ds.skeleton.name) if layout else ds.num_keypoints == ds.skeleton.num_joints
        return lifter_from_config(self.cfg.model, num_joints_in=ds.num_keypoints,
                                  num_joints_out=ds.skeleton.num_joints, parents=list(ds.skeleton.parents),
                                  same_layout=same_layout, num_joints_traj=num_joints_traj)

    def _train_variant(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module trained: VideoPose3D's strided twin for single-frame temporal-conv batches, else ``model``."""
        t = self.cfg.train
        if (isinstance(model, TemporalConvLifter) and t.stride == 1 and not model.config.dense
                and not t.disable_optimizations):
            return TemporalConvLifterStrided(model.config)
        return model

    def _build_models(self) -> None:
        self.model_eval = self._lifter()
        if self.cfg.model.normalize:
            fit_normalization(self.model_eval, [s.keypoints_2d for s in self.train_seqs],
                              [root_relative(s.positions_3d) for s in self.train_seqs])
        if self.cfg.train.init_from:
            self.log(initialise_from(self.model_eval, self.cfg.train.init_from, self.cfg.train.stage))
        self.model_train = self._train_variant(self.model_eval)
        if self.model_train is not self.model_eval:
            self.model_train.load_state_dict(self.model_eval.state_dict())
        self.pad = (self.model_eval.receptive_field - 1) // 2
        self.causal_shift = self.pad if self.cfg.model.causal else 0
        groups, lr_scale = optimizer_groups(self.model_train, self.cfg.train)
        self.traj_train = self.traj_eval = None
        if self.semi:
            if any(s.camera is None for s in self.semi_seqs):
                raise ConfigError("semi-supervised training needs cameras for the unlabelled subjects")
            self.traj_eval = self._lifter(num_joints_traj=1)
            self.traj_train = self._train_variant(self.traj_eval)
            if self.traj_train is not self.traj_eval:  # both start from the first draw, like the pose model
                self.traj_train.load_state_dict(self.traj_eval.state_dict())
            groups.append({"name": "trajectory", "params": list(self.traj_train.parameters()), "lr_scale": lr_scale})
        self.lr = self.cfg.train.lr * lr_scale
        for g in groups:
            g["lr"] = self.cfg.train.lr * g.pop("lr_scale")
        # RIE trains with AdamW as in its reference code; the others with VideoPose3D's Adam. Both AMSGrad.
        optimizer = torch.optim.AdamW if self.cfg.model.kind == "rie" else torch.optim.Adam
        self.optimizer = optimizer(groups, lr=self.lr, amsgrad=True)
        self.losses = {
            "pose": MPJPELoss(),
            "traj": WeightedMPJPELoss(),
            "reprojection": ReprojectionLoss(linear=self.cfg.train.linear_projection),
            "bone": BoneLengthConsistencyLoss(self.dataset.skeleton.parents),
        }
        ds, t = self.dataset, self.cfg.train
        chunk = t.stride
        self.batches = ChunkedBatches(
            t.batch_size // chunk, [s.keypoints_2d for s in self.train_seqs], [s.positions_3d for s in self.train_seqs],
            [s.intrinsics for s in self.train_seqs] if self.semi else None, chunk, self.pad, self.causal_shift,
            shuffle=True, seed=t.seed, augment=t.data_augmentation, kps_left=ds.kps_left, kps_right=ds.kps_right,
            joints_left=ds.joints_left, joints_right=ds.joints_right)
        self.semi_batches = None
        self.multiview = self.semi and any(n in t.weak_losses for n in ("mvp_pose", "mvp_posture"))
        if self.multiview:
            self.semi_batches = self._multiview_batches(chunk)
        elif self.semi:
            self.semi_batches = ChunkedBatches(
                t.batch_size // chunk, [s.keypoints_2d for s in self.semi_seqs], None,
                [s.intrinsics for s in self.semi_seqs], chunk, self.pad, self.causal_shift, shuffle=True,
                seed=t.seed + 3087, augment=t.data_augmentation, kps_left=ds.kps_left, kps_right=ds.kps_right,
                joints_left=ds.joints_left, joints_right=ds.joints_right, endless=True)
        self.weak = self._weak_losses()
        self.epoch = 0
        self.history: list[dict] = []
        self.noise_model = self._noise_model()
        self._clean_2d = [s.keypoints_2d for s in self.train_seqs]

    def _set_bn_momentum(self, momentum: float) -> None:
        """VideoPose3D's decaying BN momentum for the convolutional lifters; MLP/graph lifters keep PyTorch's 0.1."""
        for model in (self.model_train, self.traj_train):
            if model is not None and hasattr(model, "set_bn_momentum"):
                model.set_bn_momentum(momentum)

    def _multiview_batches(self, chunk: int) -> MultiViewBatches:
        """The unlabelled stream as synchronised groups: every camera of a subject and action."""
        groups: dict[tuple[str, str], list] = {}
        for seq in self.semi_seqs:
            groups.setdefault((seq.subject, seq.action), []).append(seq)
        views = {len(g) for g in groups.values()}
        if len(views) != 1 or min(views) < 2:
            raise ConfigError("multi-view losses need the same number (>= 2) of cameras for every unlabelled "
                              f"subject and action; found {sorted(views)}")
        g = list(groups.values())
        num_views = views.pop()
        return MultiViewBatches(
            max(1, self.cfg.train.batch_size // chunk // num_views), [[s.keypoints_2d for s in grp] for grp in g],
            [np.stack([s.intrinsics for s in grp]) for grp in g],
            [np.stack([s.camera.orientation for s in grp]) for grp in g],
            [np.stack([s.camera.translation for s in grp]) for grp in g], chunk, self.pad, self.causal_shift,
            seed=self.cfg.train.seed + 3087)

    def _weak_losses(self) -> dict[str, tuple[float, torch.nn.Module]]:
        """name -> (weight, loss module) for the configured weak losses (PosturePose)."""
        t = self.cfg.train
        if not t.weak_losses:
            return {}
        from poselift.losses.posture import (BoneProportionLoss, BoneSymmetryLoss, JointMobilityLoss,
                                             MultiViewPoseLoss, MultiViewPostureLoss)

        priors = None
        if {"bpc", "jmc", "mvp_posture"} & set(t.weak_losses):
            priors = self._priors()
        build = {"bse": lambda: BoneSymmetryLoss(), "bpc": lambda: BoneProportionLoss(priors),
                 "jmc": lambda: JointMobilityLoss(priors), "mvp_pose": lambda: MultiViewPoseLoss(),
                 "mvp_posture": lambda: MultiViewPostureLoss(torch.as_tensor(priors.bone_length_mean))}
        return {n: (float(getattr(t, f"weight_{n}")), build[n]()) for n in t.weak_losses}

    def _priors(self):
        from poselift.priors.fit import fit_priors
        from poselift.priors.model import PosePriors

        if self.cfg.train.priors:
            priors = PosePriors.load(self.cfg.train.priors)
            self.log(f"pose priors: {self.cfg.train.priors}")
            return priors
        # positions_3d keeps the trajectory in joint 0 and the others relative to it: zero the root
        poses = np.concatenate([root_relative(s.positions_3d) for s in self.train_seqs])
        priors = fit_priors(poses, seed=self.cfg.train.seed)
        self.log(f"pose priors fitted on the labelled subjects ({len(poses):,} poses)")
        return priors

    def _noise_model(self) -> NoiseModel | None:
        """The detector-error model of ``poselift data cmu`` scaled by ``train.keypoint_noise`` (None when 0)."""
        k = self.cfg.train.keypoint_noise
        if k == 0:
            return None
        coco = self.dataset.keypoints_metadata.get("layout_name") == "coco"
        base = NoiseModel(joint_weights=COCO_17_OKS_WEIGHTS if coco else None)
        lo, hi = base.outlier_distance
        return NoiseModel(jitter=base.jitter * k, drift=base.drift * k, bias=base.bias * k,
                          outlier_prob=base.outlier_prob, outlier_distance=(lo * k, hi * k),
                          miss_prob=base.miss_prob, joint_weights=base.joint_weights)

    def _redraw_noise(self) -> None:
        """A fresh detector-error draw on the clean training 2D, seeded by (seed, epoch) so resuming repeats it."""
        rng = np.random.default_rng([self.cfg.train.seed, self.epoch])
        fps = self.dataset.fps or 50.0
        noisy = []
        for seq, clean in zip(self.train_seqs, self._clean_2d):
            w, h = seq.camera.res_w, seq.camera.res_h
            pixels = image_coordinates(clean, w, h)
            kps, _ = apply_noise(pixels, self.noise_model, rng, fps=fps, image_size=(w, h))
            noisy.append(normalize_screen_coordinates(kps, w, h).astype(np.float32))
        self.batches.set_keypoints(noisy)

    def describe(self) -> str:
        stage = self.cfg.train.stage
        trained = sum(p.numel() for p in self.model_train.parameters() if p.requires_grad)
        return (f"{describe_lifter(self.model_eval)} ({trained:,} trained"
                + (f", RIE stage {stage}" if stage else "") + f", lr {self.lr:g}), "
                f"train {sum(len(s.keypoints_2d) for s in self.train_seqs):,} frames / {len(self.train_seqs)} sequences, "
                f"test {sum(len(s.keypoints_2d) for s in self.test_seqs):,} frames"
                + (f", unlabelled {sum(len(s.keypoints_2d) for s in self.semi_seqs):,} frames" if self.semi else "")
                + (f", weak losses {', '.join(f'{n} x{w:g}' for n, (w, _) in self.weak.items())}" if self.weak else "")
                + (" (multi-view batches)" if self.multiview else ""))

    # ---- resume -------------------------------------------------------------------------------
    def resume(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path)
        try:
            self.model_train.load_state_dict(ckpt["model_pos"])
            if self.semi:
                if ckpt.get("model_traj") is None:
                    raise ConfigError(f"{path}: no trajectory model, but this run is semi-supervised")
                self.traj_train.load_state_dict(ckpt["model_traj"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"{path}: checkpoint does not match this configuration: {str(exc).splitlines()[0]}") from None
        self.epoch, self.lr = int(ckpt["epoch"]), float(ckpt["lr"])
        self.history = list(ckpt.get("history", []))
        if ckpt.get("random_state") is not None:
            self.batches.set_random_state(decode_random_state(ckpt["random_state"]))
        if ckpt.get("torch_rng_state") is not None:
            torch.set_rng_state(ckpt["torch_rng_state"])
        if self.semi and ckpt.get("random_state_semi") is not None:
            self.semi_batches.set_random_state(decode_random_state(ckpt["random_state_semi"]))
        self._set_bn_momentum(bn_momentum(self.epoch, self.cfg.train.epochs, self.batches.num_batches))
        self.log(f"resumed from {path} at epoch {self.epoch} (lr {self.lr:.6f})")

    # ---- one epoch ----------------------------------------------------------------------------
    def _step(self, batch, semi_batch, use_semi: bool) -> dict[str, float]:
        x2d = torch.from_numpy(batch.inputs_2d)
        y3d = torch.from_numpy(batch.targets_3d).clone()
        traj_target = y3d[:, :, :1].clone()
        y3d[:, :, 0] = 0
        n_lab = x2d.shape[0]
        if use_semi:
            x2d_semi = torch.from_numpy(semi_batch.inputs_2d)
            if self.multiview:  # (V, B, ...) -> (V * B, ...), view-major
                x2d_semi = x2d_semi.flatten(0, 1)
            x2d = torch.cat((x2d, x2d_semi), dim=0)
        self.optimizer.zero_grad(set_to_none=True)
        pred = self.model_train(x2d)
        loss_pose = self.losses["pose"](pred[:n_lab], y3d)
        total = loss_pose
        out = {"loss_3d": loss_pose.item()}
        if self.semi:
            traj = self.traj_train(x2d)
            loss_traj = self.losses["traj"](traj[:n_lab], traj_target, 1 / traj_target[..., 2])
            total = total + loss_traj
            out["loss_traj"] = loss_traj.item()
            if use_semi:
                t_out = pred.shape[1]
                start = self.pad + self.causal_shift
                target_2d = x2d_semi[:, start:start + t_out]
                cams = torch.from_numpy(semi_batch.intrinsics)
                if self.multiview:
                    cams = cams.flatten(0, 1)
                loss_2d = self.losses["reprojection"](pred[n_lab:], traj[n_lab:], target_2d, cams)
                out["loss_2d_unlabeled"] = loss_2d.item()
                if self.cfg.train.projection_term:
                    total = total + loss_2d
                if self.cfg.train.bone_length_term:
                    loss_bone = self.losses["bone"](pred[:n_lab], pred[n_lab:])
                    out["loss_bone"] = loss_bone.item()
                    total = total + loss_bone
                for name, (weight, term) in self.weak.items():
                    value = self._weak_term(name, term, pred[n_lab:], traj[n_lab:], semi_batch)
                    out[f"loss_{name}"] = value.item()
                    total = total + weight * value
        total.backward()
        self.optimizer.step()
        return out

    def _weak_term(self, name: str, term, pred_u: torch.Tensor, traj_u: torch.Tensor, batch) -> torch.Tensor:
        """One weak loss on the unlabelled predictions (B_u, T, 17, 3), root-relative."""
        rel = pred_u - pred_u[..., :1, :]
        if name in ("bse", "bpc", "jmc"):
            return term(rel)
        v = batch.inputs_2d.shape[0]
        views = rel.reshape(v, -1, *rel.shape[1:])  # (V, B, T, 17, 3)
        if name == "mvp_posture":
            return term(views)
        return term(views, torch.from_numpy(batch.orientations), traj_u.reshape(v, -1, *traj_u.shape[1:]),
                    torch.from_numpy(batch.translations))

    def _train_epoch(self) -> dict[str, float]:
        if self.noise_model is not None:
            self._redraw_noise()
        self.model_train.train()
        if self.semi:
            self.traj_train.train()
        use_semi = self.semi and self.epoch >= self.cfg.train.warmup
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        bar = tqdm(total=self.batches.num_frames, desc=f"epoch {self.epoch + 1}/{self.cfg.train.epochs}",
                   unit="frame", unit_scale=True, disable=not self.progress, file=sys.stderr, leave=False,
                   mininterval=0.5)
        semi_iter = self.semi_batches.epoch() if self.semi else None
        for batch in self.batches.epoch():
            semi_batch = next(semi_iter) if use_semi else None
            values = self._step(batch, semi_batch, use_semi)
            n = batch.inputs_2d.shape[0] * self.cfg.train.stride
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v * n
                counts[k] = counts.get(k, 0) + n
            bar.update(n)
            bar.set_postfix(mpjpe_mm=f"{values['loss_3d'] * 1000:.1f}")
        bar.close()
        return {k: sums[k] / counts[k] for k in sums}

    def _sync_eval_models(self) -> None:
        """Copy trained weights into the evaluation modules (the same module except for strided training)."""
        for train, eval_ in ((self.model_train, self.model_eval), (self.traj_train, self.traj_eval)):
            if train is not None and train is not eval_:
                eval_.load_state_dict(train.state_dict())
            if eval_ is not None:
                eval_.eval()

    def _end_of_epoch_eval(self) -> dict[str, float]:
        self._sync_eval_models()
        causal = self.cfg.model.causal
        # fused once for both sets (temporal convolutions only)
        fused = fuse_for_inference(self.model_eval) if isinstance(self.model_eval, TemporalConvLifter) else self.model_eval
        row = {"mpjpe_valid_mm": quick_mpjpe(fused, self.test_seqs, causal) * 1000,
               "mpjpe_train_eval_mm": quick_mpjpe(fused, self.train_seqs, causal) * 1000}
        if self.semi:
            row["traj_valid_mm"] = self._trajectory_error(self.test_seqs) * 1000
        return row

    def _trajectory_error(self, seqs) -> float:
        preds = predict_all(self.traj_eval, seqs, self.cfg.model.causal)
        total = sum(float(np.linalg.norm(p[:, 0] - s.positions_3d[:, 0], axis=-1).sum()) for p, s in zip(preds, seqs))
        return total / max(sum(len(p) for p in preds), 1)

    # ---- the run ------------------------------------------------------------------------------
    def _checkpoint_payload(self) -> dict:
        return {"epoch": self.epoch, "lr": self.lr, "optimizer": self.optimizer.state_dict(),
                "model_pos": self.model_train.state_dict(),
                "model_traj": self.traj_train.state_dict() if self.semi else None,
                "random_state": encode_random_state(self.batches.get_random_state()),
                "random_state_semi": encode_random_state(self.semi_batches.get_random_state()) if self.semi else None,
                "torch_rng_state": torch.get_rng_state(),
                "lifter": {"kind": kind_of(self.model_eval), "config": self.model_eval.config.to_dict()},
                "config": self.cfg.to_dict(), "history": self.history}

    def run(self, stop_after: int | None = None) -> TrainResult:
        """Train to ``train.epochs`` (or stop once ``stop_after`` epochs are done, resumable later)."""
        t = self.cfg.train
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "config.yaml", yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        if t.resume:
            self.resume(self.run_dir / "last.pt" if t.resume == "last" else t.resume)
        self.log(f"training: {self.describe()}")
        last_epoch = t.epochs if stop_after is None else min(t.epochs, stop_after)
        while self.epoch < last_epoch:
            start = time.perf_counter()
            losses = self._train_epoch()
            row = {"epoch": self.epoch + 1, "lr": self.lr}
            row.update({f"{k}_train_mm" if k != "loss_3d" else "loss_3d_train_mm": v * 1000
                        for k, v in losses.items() if k in ("loss_3d", "loss_traj", "loss_bone")})
            row.update({k: v for k, v in losses.items() if k.startswith("loss_") and k[5:] in self.weak})
            if "loss_2d_unlabeled" in losses:
                row["loss_2d_unlabeled"] = losses["loss_2d_unlabeled"]
            if t.evaluate_every_epoch or self.epoch + 1 == t.epochs:
                row.update(self._end_of_epoch_eval())
            row["time_s"] = time.perf_counter() - start
            self.history.append(row)
            self.lr *= t.lr_decay
            for group in self.optimizer.param_groups:
                group["lr"] *= t.lr_decay
            self.epoch += 1
            self._set_bn_momentum(bn_momentum(self.epoch, t.epochs, self.batches.num_batches))
            payload = self._checkpoint_payload()
            save_checkpoint(self.run_dir / "last.pt", payload)
            if self.epoch % t.checkpoint_frequency == 0:
                save_checkpoint(self.run_dir / f"epoch_{self.epoch}.pt", payload)
            write_metrics_csv(self.run_dir / "metrics.csv", self.history)
            plot_training_curves(self.run_dir / "training_curves.png", self.history)
            self.log("[%d] " % self.epoch + " ".join(
                f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
        return self._finish()

    def _finish(self) -> TrainResult:
        self._sync_eval_models()
        traj = self.traj_eval
        total = sum(len(s.keypoints_2d) for s in self.test_seqs)
        with tqdm(total=total, desc="final evaluation", unit="frame", unit_scale=True,
                  disable=not self.progress, file=sys.stderr, leave=False) as bar:
            report = evaluate_sequences(self.model_eval, self.test_seqs, self.dataset, causal=self.cfg.model.causal,
                                        test_time_augmentation=self.cfg.train.test_time_augmentation, progress=bar)
        weights, _ = save_model(self.model_eval, self.run_dir / "model.safetensors", trajectory=traj,
                                extra={"keypoints_layout": self.dataset.keypoints_metadata.get("layout_name"),
                                       "keypoints_symmetry": [self.dataset.kps_left, self.dataset.kps_right],
                                       "skeleton": self.dataset.skeleton.name, "epochs": self.epoch,
                                       "test_subjects": self.cfg.data.subjects_test,
                                       "metrics_mm": report.to_json_dict()})
        atomic_write_text(self.run_dir / "results.json", json.dumps(report.to_json_dict(), indent=2) + "\n")
        return TrainResult(self.history, report, self.run_dir, weights)
