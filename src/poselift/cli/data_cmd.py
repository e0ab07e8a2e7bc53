"""``poselift data``: make dataset files."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("data", help="make datasets in VideoPose3D format (synthetic motion, CMU mocap)")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    s = dsub.add_parser("synthetic", help="write a procedural-motion dataset in VideoPose3D format (no download)")
    s.add_argument("--out", required=True, metavar="DIR", help="folder for data_3d_synthetic.npz and data_2d_synthetic_gt.npz")
    s.add_argument("--subjects", type=int, default=5, metavar="N", help="number of subjects S1..SN (default 5)")
    s.add_argument("--seconds", type=float, default=8.0, metavar="S", help="seconds per action (default 8)")
    s.add_argument("--cameras", type=int, default=4, metavar="N", help="cameras per subject (default 4)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=run_synthetic)
    c = dsub.add_parser("cmu", help="turn CMU mocap BVH clips into a VideoPose3D dataset with virtual cameras")
    c.add_argument("--src", required=True, metavar="DIR", help="folder searched for CMU .bvh clips")
    c.add_argument("--out", required=True, metavar="DIR",
                   help="folder for data_3d_cmu.npz, data_2d_cmu_gt.npz, data_2d_cmu_coco_gt.npz, "
                        "data_2d_cmu_coco_noisy.npz")
    c.add_argument("--fps", type=float, default=50.0, help="output frame rate (default 50, as Human3.6M)")
    c.add_argument("--cameras", type=int, default=4, metavar="N", help="virtual cameras per subject (default 4)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--no-noise", action="store_true", help="skip the detector-like noisy COCO keypoints file")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=run_cmu)


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


def run_cmu(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from poselift.data.cmu_dataset import DEFAULT_NOISE, build_cmu_dataset
    from poselift.errors import ConfigError

    if args.cameras < 1 or not args.fps > 0:
        raise ConfigError("--cameras must be >= 1 and --fps > 0")
    start = time.perf_counter()
    try:
        summary = build_cmu_dataset(args.src, args.out, fps=args.fps, cameras_per_clip=args.cameras,
                                    noise=None if args.no_noise else DEFAULT_NOISE, seed=args.seed,
                                    progress=not args.no_progress)
    except OSError as exc:
        where = exc.filename or args.out
        raise ConfigError(f"cannot read or write {where}: {exc.strerror or exc}") from None
    print(summary.describe())
    stale = Path(args.out) / "data_2d_cmu_coco_noisy.npz"
    if args.no_noise and stale.exists():
        print(f"note: {stale} is from an earlier run and was not rewritten (--no-noise)")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
