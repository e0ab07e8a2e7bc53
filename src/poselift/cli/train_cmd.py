"""``poselift train``: train any registered lifter (--model), supervised or, for temporal convolutions,
semi-supervised with --subjects-unlabeled; RIE's stages with --stage, a SemGCN refiner with --refiner."""

from __future__ import annotations

import argparse
import json

from poselift.cli.common import add_data_options, overrides_from
from poselift.train.config import MODEL_KINDS, ExperimentConfig, apply_overrides, load_config


def _widths(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated filter widths like 3,3,3, got {value!r}") from None


def register(sub) -> None:
    p = sub.add_parser("train", help="train a 2D-to-3D lifter (temporal_conv, rie, baseline, semgcn)",
                       description="Train a 2D-to-3D lifter chosen with --model (default: VideoPose3D temporal "
                                   "convolutions). Options override the --config YAML.")
    add_experiment_options(p)
    p.add_argument("--json", action="store_true", help="print the final evaluation as one JSON object on stdout")
    p.set_defaults(func=run)


def add_experiment_options(p: argparse.ArgumentParser) -> None:
    """--config plus every data/model/train override (shared by train and ablate)."""
    p.add_argument("--config", metavar="YAML", help="experiment file with data/model/train sections")
    add_data_options(p, training=True)
    m = p.add_argument_group("model")
    m.add_argument("--model", dest="model.kind", choices=list(MODEL_KINDS),
                   help="lifter: temporal_conv (VideoPose3D, default), rie, baseline (Martinez FC), semgcn")
    m.add_argument("--architecture", dest="model.architecture", type=_widths, metavar="WIDTHS",
                   help="temporal_conv/rie filter widths, e.g. 3,3,3 (27 frames) or 3,3,3,3,3 (243 frames)")
    m.add_argument("--channels", dest="model.channels", type=int, metavar="N",
                   help="temporal_conv/rie convolution channels (default 1024 / 256)")
    m.add_argument("--dropout", dest="model.dropout", type=float, metavar="P",
                   help="default: the kind's own (0.25 temporal_conv, 0.2 rie, 0.5 baseline, none semgcn)")
    m.add_argument("--latent-dim", dest="model.latent_dim", type=int, metavar="N", help="rie: encoder features (256)")
    m.add_argument("--mlp-channels", dest="model.mlp_channels", type=int, metavar="N", help="rie: MLP width (1024)")
    m.add_argument("--linear-size", dest="model.linear_size", type=int, metavar="N", help="baseline: width (1024)")
    m.add_argument("--num-stages", dest="model.num_stages", type=int, metavar="N",
                   help="baseline: residual linear blocks (2)")
    m.add_argument("--no-normalize", dest="model.normalize", action="store_const", const=False,
                   help="baseline: no z-scoring of inputs and outputs with training statistics")
    m.add_argument("--hid-dim", dest="model.hid_dim", type=int, metavar="N",
                   help="semgcn lifter or refiner: channels per joint (128)")
    m.add_argument("--num-layers", dest="model.num_layers", type=int, metavar="N",
                   help="semgcn lifter or refiner: residual graph-conv blocks (4)")
    m.add_argument("--non-local", dest="model.non_local", action="store_const", const=True,
                   help="semgcn lifter or refiner: non-local layers")
    m.add_argument("--refiner", dest="model.refiner", action="store_const", const=True,
                   help="chain a SemGCN refiner after the lifter (with --init-from: train it on that fixed lifter)")
    m.add_argument("--causal", dest="model.causal", action="store_const", const=True, help="causal convolutions (real time)")
    m.add_argument("--dense", dest="model.dense", action="store_const", const=True, help="dense instead of dilated (ablation)")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", dest="train.epochs", type=int, metavar="N")
    t.add_argument("--batch-size", dest="train.batch_size", type=int, metavar="N", help="in predicted frames")
    t.add_argument("--learning-rate", "--lr", dest="train.lr", type=float, metavar="LR")
    t.add_argument("--lr-decay", dest="train.lr_decay", type=float, metavar="FACTOR", help="per-epoch multiplier")
    t.add_argument("--stride", dest="train.stride", type=int, metavar="N", help="output frames per training chunk")
    t.add_argument("--stage", dest="train.stage", type=int, choices=(1, 2, 3),
                   help="rie multi-stage training: 1 encoders (no fusion), 2 fusion with encoders frozen, "
                        "3 all at half the learning rate; 2 and 3 need --init-from the previous stage's model")
    t.add_argument("--init-from", dest="train.init_from", metavar="WEIGHTS",
                   help="start from these poselift weights (.safetensors): the previous RIE stage, the lifter "
                        "under --refiner, or a same-kind model to fine-tune")
    t.add_argument("--train-lifter", dest="train.freeze_lifter", action="store_const", const=False,
                   help="with --refiner --init-from: train the lifter and the refiner together")
    t.add_argument("--warmup", dest="train.warmup", type=int, metavar="N", help="supervised-only epochs before semi-supervision")
    t.add_argument("--no-data-augmentation", dest="train.data_augmentation", action="store_const", const=False)
    t.add_argument("--no-test-time-augmentation", dest="train.test_time_augmentation", action="store_const", const=False)
    t.add_argument("--no-bone-length", dest="train.bone_length_term", action="store_const", const=False)
    t.add_argument("--no-projection", dest="train.projection_term", action="store_const", const=False)
    w = p.add_argument_group("weak supervision on the unlabelled subjects (PosturePose)")
    w.add_argument("--weak-losses", dest="train.weak_losses", metavar="LIST",
                   help="any of bse,bpc,jmc,mvp_pose,mvp_posture (needs --subjects-unlabeled)")
    w.add_argument("--priors", dest="train.priors", metavar="FILE",
                   help="pose priors from 'poselift priors fit' (default: fitted on the labelled subjects)")
    for name in ("bse", "bpc", "jmc", "mvp_pose", "mvp_posture"):
        w.add_argument(f"--weight-{name.replace('_', '-')}", dest=f"train.weight_{name}", type=float, metavar="W")
    t.add_argument("--keypoint-noise", dest="train.keypoint_noise", type=float, metavar="SCALE",
                   help="detector-like 2D errors drawn afresh every epoch, scale of the default noise model (0: off)")
    t.add_argument("--linear-projection", dest="train.linear_projection", action="store_const", const=True)
    t.add_argument("--disable-optimizations", dest="train.disable_optimizations", action="store_const", const=True,
                   help="train the dilated model even for single-frame batches")
    t.add_argument("--checkpoint-dir", dest="train.checkpoint_dir", metavar="DIR",
                   help="run folder: checkpoints, metrics.csv, training_curves.png, model.safetensors")
    t.add_argument("--checkpoint-frequency", dest="train.checkpoint_frequency", type=int, metavar="N",
                   help="keep epoch_N.pt every N epochs (last.pt is written every epoch)")
    t.add_argument("--resume", dest="train.resume", nargs="?", const="last", metavar="CHECKPOINT",
                   help="continue a run (default: CHECKPOINT_DIR/last.pt)")
    t.add_argument("--no-eval", dest="train.evaluate_every_epoch", action="store_const", const=False,
                   help="skip the per-epoch validation")
    t.add_argument("--seed", dest="train.seed", type=int)
    t.add_argument("--threads", dest="train.threads", type=int, metavar="N", help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from poselift.train.trainer import Trainer

    config = load_config(args.config) if args.config else ExperimentConfig()
    apply_overrides(config, overrides_from(args))
    result = Trainer(config, progress=not args.no_progress).run()
    if args.json:
        print(json.dumps(result.report.to_json_dict()))
    else:
        print(result.report.table())
        print(f"\nrun folder: {result.run_dir}  (model: {result.weights_path.name}, metrics.csv, training_curves.png)")
    return 0
