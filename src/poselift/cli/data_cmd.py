"""``poselift data``: make dataset files."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("data", help="make datasets (synthetic motion in VideoPose3D format)")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    s = dsub.add_parser("synthetic", help="write a procedural-motion dataset in VideoPose3D format (no download)")
    s.add_argument("--out", required=True, metavar="DIR", help="folder for data_3d_synthetic.npz and data_2d_synthetic_gt.npz")
    s.add_argument("--subjects", type=int, default=5, metavar="N", help="number of subjects S1..SN (default 5)")
    s.add_argument("--seconds", type=float, default=8.0, metavar="S", help="seconds per action (default 8)")
    s.add_argument("--cameras", type=int, default=4, metavar="N", help="cameras per subject (default 4)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=run_synthetic)


def run_synthetic(args: argparse.Namespace) -> int:
    from poselift.data.synthetic import SyntheticConfig, generate_synthetic_dataset
    from poselift.errors import ConfigError

    if args.subjects < 1 or args.seconds <= 0 or args.cameras < 1:
        raise ConfigError("--subjects and --cameras must be >= 1 and --seconds > 0")
    config = SyntheticConfig(subjects=tuple(f"S{i + 1}" for i in range(args.subjects)), seconds_per_action=args.seconds,
                             cameras_per_subject=args.cameras, seed=args.seed)
    try:
        path_3d, path_2d = generate_synthetic_dataset(args.out, config, progress=not args.no_progress)
    except OSError as exc:
        raise ConfigError(f"cannot write to {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {path_3d}\nwrote {path_2d}")
    return 0
