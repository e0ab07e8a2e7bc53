"""Typed experiment configuration: dataclasses loaded from YAML, overridden from the CLI.

A YAML file mirrors the three sections::

    data:  {data_dir: data, dataset: synthetic, keypoints: gt, subjects_train: [S1, S2], ...}
    model: {architecture: [3, 3, 3], channels: 1024, ...}
    train: {epochs: 60, batch_size: 1024, ...}

Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from poselift.errors import ConfigError


@dataclass
class DataConfig:
    data_dir: str = "data"
    dataset: str = "synthetic"  # data_3d_<dataset>.npz
    keypoints: str = "gt"  # data_2d_<dataset>_<keypoints>.npz
    keypoints_test: str | None = None  # 2D file for the test subjects (None: the same as keypoints)
    cameras: str = "auto"  # auto | h36m | humaneva
    subjects_train: list[str] = field(default_factory=lambda: ["S1", "S2", "S3", "S4"])
    subjects_test: list[str] = field(default_factory=lambda: ["S5"])
    subjects_unlabeled: list[str] = field(default_factory=list)
    actions: list[str] | None = None  # action name prefixes; None = all
    subset: float = 1.0  # fraction of each labelled training sequence
    downsample: int = 1  # keep every n-th frame


MODEL_KINDS = ("temporal_conv", "rie", "baseline", "semgcn")


@dataclass
class ModelConfig:
    """The lifter: ``kind`` picks the architecture (poselift.models.registry); fields a kind does not use are ignored.

    ``channels`` and ``dropout`` left unset take the kind's default (temporal_conv
    1024 / 0.25, rie 256 / 0.2, baseline - / 0.5, semgcn - / none).
    """

    kind: str = "temporal_conv"  # temporal_conv | rie | baseline | semgcn
    architecture: list[int] = field(default_factory=lambda: [3, 3, 3])  # filter widths (temporal_conv, rie)
    channels: int | None = None  # convolution channels (temporal_conv, rie)
    dropout: float | None = None
    causal: bool = False  # temporal_conv only
    dense: bool = False  # temporal_conv only
    latent_dim: int = 256  # rie: feature size of every encoder (the reference uses 512 for CPN detections)
    mlp_channels: int = 1024  # rie: width of the global encoder, fusion and decoder MLPs
    linear_size: int = 1024  # baseline: width of the residual linear blocks
    num_stages: int = 2  # baseline: residual blocks
    normalize: bool = True  # baseline: z-score 2D inputs and 3D outputs with training statistics (Martinez et al.)
    hid_dim: int = 128  # semgcn (lifter or refiner): channels per joint
    num_layers: int = 4  # semgcn (lifter or refiner): residual graph-conv blocks
    non_local: bool = False  # semgcn (lifter or refiner): non-local layers between the blocks
    refiner: bool = False  # add a SemGCN refiner after the lifter (the FC + SemGCN pipeline)


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 1024  # in predicted frames
    lr: float = 0.001
    lr_decay: float = 0.95  # per epoch
    stride: int = 1  # output frames per training chunk
    warmup: int = 1  # supervised-only epochs before semi-supervision starts
    data_augmentation: bool = True  # horizontal flips in training
    test_time_augmentation: bool = True  # average with the flipped input at evaluation
    bone_length_term: bool = True
    projection_term: bool = True
    linear_projection: bool = False
    keypoint_noise: float = 0.0  # detector-error model scale, a fresh draw on the 2D input every epoch (0: off)
    # Weak supervision on the unlabelled subjects (PosturePose): any of bse, bpc, jmc, mvp_pose, mvp_posture.
    # Weights are PoseReg's, halved because its 2D reprojection weight is 2 and poselift's is 1.
    weak_losses: list[str] = field(default_factory=list)
    weight_bse: float = 0.0667
    weight_bpc: float = 0.0333
    weight_jmc: float = 0.0333
    weight_mvp_pose: float = 0.05
    weight_mvp_posture: float = 0.015
    priors: str | None = None  # `poselift priors fit` file for bpc/jmc (None: fitted on the labelled subjects)
    disable_optimizations: bool = False  # train the dilated model even when stride == 1
    # RIE multi-stage training (Shan et al.): 1 encoders + decoders, fusion off; 2 fusion + fresh decoders,
    # encoders frozen (needs init_from = the stage-1 model); 3 all at lr x 0.5 (init_from = stage 2). None: all at once.
    stage: int | None = None
    init_from: str | None = None  # poselift weights (.safetensors) to start from: a previous stage, or the refiner's lifter
    freeze_lifter: bool = True  # with model.refiner and init_from: train the refiner only, the lifter fixed
    checkpoint_dir: str = "checkpoint"
    checkpoint_frequency: int = 10  # keep epoch_N.pt every N epochs (last.pt is written every epoch)
    resume: str | None = None
    evaluate_every_epoch: bool = True
    seed: int = 1234
    threads: int | None = None


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _coerce(value, tp, where: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], where) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            out = tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}") from None
        if tp is int and float(value) != out:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return out
    if tp is str:
        return str(value)
    return value


def _fill(cls, values: dict, where: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    return cls(**kwargs)


def config_from_dict(raw: dict, source: str = "config") -> ExperimentConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping with data/model/train sections")
    unknown = sorted(set(raw) - {"data", "model", "train"})
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {unknown}; valid: ['data', 'model', 'train']")
    return ExperimentConfig(
        data=_fill(DataConfig, raw.get("data") or {}, f"{source}: data"),
        model=_fill(ModelConfig, raw.get("model") or {}, f"{source}: model"),
        train=_fill(TrainConfig, raw.get("train") or {}, f"{source}: train"),
    )


def load_config(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return config_from_dict(raw, str(path))


def apply_overrides(config: ExperimentConfig, overrides: dict[str, object]) -> ExperimentConfig:
    """Set ``{"section.field": value}`` entries (values are coerced to the field's type)."""
    for key, value in overrides.items():
        section_name, _, name = key.partition(".")
        section = getattr(config, section_name, None)
        if section is None or not dataclasses.is_dataclass(section) or name not in {f.name for f in dataclasses.fields(section)}:
            raise ConfigError(f"unknown option {key}")
        hints = typing.get_type_hints(type(section))
        setattr(section, name, _coerce(value, hints[name], key))
    return config


WEAK_LOSSES = ("bse", "bpc", "jmc", "mvp_pose", "mvp_posture")


def validate(config: ExperimentConfig) -> None:
    t, m, d = config.train, config.model, config.data
    unknown = sorted(set(t.weak_losses) - set(WEAK_LOSSES))
    if unknown:
        raise ConfigError(f"train.weak_losses: unknown {unknown}; choose from {list(WEAK_LOSSES)}")
    checks = [
        (not t.weak_losses or bool(d.subjects_unlabeled),
         "train.weak_losses act on unlabelled data: set data.subjects_unlabeled"),
        (all(getattr(t, f"weight_{n}") >= 0 for n in WEAK_LOSSES), "train.weight_* must be >= 0"),
        (t.epochs >= 1, "train.epochs must be >= 1"),
        (t.batch_size >= 1, "train.batch_size must be >= 1"),
        (t.lr > 0, "train.lr must be > 0"),
        (0 < t.lr_decay <= 1, "train.lr_decay must be in (0, 1]"),
        (t.stride >= 1, "train.stride must be >= 1"),
        (t.keypoint_noise >= 0, "train.keypoint_noise must be >= 0"),
        (t.batch_size // t.stride >= 1, "train.batch_size must be >= train.stride"),
        (m.kind in MODEL_KINDS, f"model.kind: unknown {m.kind!r}; choose from {list(MODEL_KINDS)}"),
        (m.channels is None or m.channels >= 1, "model.channels must be >= 1"),
        (m.dropout is None or 0 <= m.dropout < 1, "model.dropout must be in [0, 1)"),
        (min(m.latent_dim, m.mlp_channels, m.linear_size, m.hid_dim) >= 1,
         "model.latent_dim, mlp_channels, linear_size and hid_dim must be >= 1"),
        (min(m.num_stages, m.num_layers) >= 0, "model.num_stages and num_layers must be >= 0"),
        (not m.causal or m.kind == "temporal_conv", f"model.causal: only temporal_conv lifters can be causal, not {m.kind}"),
        (t.stage is None or m.kind == "rie", f"train.stage is for RIE's multi-stage training, not model.kind {m.kind}"),
        (t.stage in (None, 1, 2, 3), f"train.stage must be 1, 2 or 3, got {t.stage}"),
        (t.stage not in (2, 3) or bool(t.init_from),
         f"train.stage {t.stage} starts from the previous stage's model: set train.init_from (--init-from)"),
        (not (m.refiner and t.freeze_lifter) or bool(t.init_from),
         "model.refiner with train.freeze_lifter trains the refiner on a fixed lifter: set train.init_from "
         "to the trained lifter's weights, or freeze_lifter false to train both"),
        (not d.subjects_unlabeled or (m.kind == "temporal_conv" and not m.refiner),
         "semi-supervised training (data.subjects_unlabeled) is implemented for temporal_conv lifters only"),
        (bool(m.architecture) and all(w >= 1 and w % 2 == 1 for w in m.architecture),
         f"model.architecture must be odd filter widths like 3,3,3, got {m.architecture}"),
        (0 < d.subset <= 1, "data.subset must be in (0, 1]"),
        (d.downsample >= 1, "data.downsample must be >= 1"),
        (bool(d.subjects_train), "data.subjects_train is empty"),
        (bool(d.subjects_test), "data.subjects_test is empty"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
