"""``poselift evaluate``: Protocols 1-3 and MPJVE of a model on test subjects, per action."""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from poselift.cli.common import add_data_options, overrides_from
from poselift.train.config import ExperimentConfig, apply_overrides, load_config


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model (P1 MPJPE, P2 P-MPJPE, P3 N-MPJPE, MPJVE)",
                       description="Evaluate a pretrained model (--model), poselift weights/checkpoints or original "
                                   "VideoPose3D .bin checkpoints (--checkpoint); give exactly one of the two.")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="model.safetensors, a poselift .pt checkpoint or a VideoPose3D .bin")
    p.add_argument("--model", metavar="NAME", help="a pretrained model shipped with poselift (see 'poselift models')")
    p.add_argument("--config", metavar="YAML", help="take the data section from an experiment file")
    add_data_options(p, training=False)
    p.add_argument("--causal", action="store_true", help="the VideoPose3D checkpoint uses causal convolutions")
    p.add_argument("--dense", action="store_true", help="the VideoPose3D checkpoint uses dense convolutions")
    p.add_argument("--no-test-time-augmentation", action="store_true")
    p.add_argument("--by-subject", action="store_true", help="also report errors per subject")
    p.add_argument("--json", action="store_true", help="print one JSON object (mm, averaged over actions)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from poselift.data.dataset import load_dataset, resolve_dataset_paths
    from poselift.errors import CheckpointError, ConfigError
    from poselift.models.load import load_lifter
    from poselift.models.registry import input_joints, is_causal, output_joints
    from poselift.pretrained.registry import load_pretrained
    from poselift.train.evaluation import evaluate_sequences

    if (args.checkpoint is None) == (args.model is None):
        raise ConfigError("give exactly one of --checkpoint PATH and --model NAME (see 'poselift models')")
    if args.model is not None and (args.causal or args.dense):
        raise ConfigError("--causal and --dense describe VideoPose3D checkpoints; a --model carries its architecture")
    config = load_config(args.config) if args.config else ExperimentConfig()
    overrides = overrides_from(args)
    apply_overrides(config, overrides)
    d = config.data
    # the test 2D file: --keypoints when given, else the config's keypoints_test, else its keypoints
    keypoints = overrides.get("data.keypoints") or d.keypoints_test or d.keypoints
    if args.model is not None:
        model, card = load_pretrained(args.model)
        source, input_layout = f"model {card.name}", card.input_layout
    else:
        model, _ = load_lifter(args.checkpoint, causal=args.causal, dense=args.dense)
        source, input_layout = args.checkpoint, None
    path_2d, path_3d = resolve_dataset_paths(d.data_dir, d.dataset, keypoints)
    dataset = load_dataset(path_2d, path_3d, cameras=d.cameras)
    if input_joints(model) != dataset.num_keypoints:
        raise CheckpointError(f"{source}: model takes {input_joints(model)} keypoints but "
                              f"{path_2d} has {dataset.num_keypoints}")
    data_layout = dataset.keypoints_metadata.get("layout_name")
    if input_layout is not None and data_layout is not None and data_layout != input_layout:
        raise CheckpointError(f"{source}: model takes {input_layout} keypoints but {path_2d} holds {data_layout} "
                              "keypoints")
    if output_joints(model) != dataset.skeleton.num_joints:
        raise CheckpointError(f"{source}: model predicts {output_joints(model)} joints but "
                              f"{path_3d} has {dataset.skeleton.num_joints}")
    seqs = dataset.select(d.subjects_test, d.actions, 1.0, d.downsample)
    with tqdm(total=sum(len(s.keypoints_2d) for s in seqs), desc="evaluating", unit="frame", unit_scale=True,
              disable=args.no_progress, file=sys.stderr, leave=False) as bar:
        report = evaluate_sequences(model, seqs, dataset, causal=is_causal(model),
                                    test_time_augmentation=not args.no_test_time_augmentation,
                                    by_subject=args.by_subject, progress=bar)
    if args.json:
        print(json.dumps(report.to_json_dict()))
    else:
        print(report.table())
        if report.per_subject:
            for s, e in report.per_subject.items():
                print(f"{s}: P1 {e.mpjpe:.1f} mm, P2 {e.p_mpjpe:.1f} mm, P3 {e.n_mpjpe:.1f} mm, MPJVE {e.mpjve:.2f} mm")
    return 0
