"""``poselift priors``: fit the BPC/JMC pose priors on labelled subjects, or describe a priors file."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from poselift.cli.common import csv_list


def register(sub) -> None:
    p = sub.add_parser("priors", help="fit or show pose priors (bone ratios, free-bone orientations)")
    psub = p.add_subparsers(dest="priors_command", required=True, metavar="PRIORS_COMMAND")
    f = psub.add_parser("fit", help="fit priors on the 3D poses of labelled subjects",
                        description="Fit the BPC (bone-ratio) and JMC (free-bone orientation) priors on the 3D "
                                    "poses of the chosen subjects (VideoPose3D layout: DATA_DIR/data_3d_DATASET.npz "
                                    "and data_2d_DATASET_KEYPOINTS.npz) and save them as one .safetensors file.")
    f.add_argument("--data-dir", required=True, metavar="DIR", help="folder with the dataset files")
    f.add_argument("--dataset", required=True, metavar="NAME", help="dataset name, e.g. h36m, synthetic")
    f.add_argument("--keypoints", default="gt", metavar="NAME",
                   help="2D file suffix the dataset loader pairs with the 3D file (default gt; only 3D is used)")
    f.add_argument("--cameras", default="auto", choices=["auto", "h36m", "humaneva"],
                   help="camera parameters (default auto); the priors do not depend on the camera")
    f.add_argument("--subjects", required=True, type=csv_list, metavar="LIST", help="labelled subjects, e.g. S1")
    f.add_argument("--out", required=True, metavar="FILE", help="output .safetensors file")
    f.add_argument("--components", type=int, default=1, metavar="K", help="Gaussians per free bone (default 1)")
    f.add_argument("--jitter", type=float, default=0.05, metavar="STD",
                   help="std of the per-bone length factors for the ratio priors (default 0.05)")
    f.add_argument("--per-bone", action="store_true",
                   help="fit left and right free bones separately instead of grouping them by mirroring")
    f.add_argument("--subset", type=float, default=1.0, metavar="FRACTION",
                   help="fraction of each sequence to use (contiguous, deterministic; default 1)")
    f.add_argument("--plots", metavar="DIR", help="also write bone_ratio_priors.png and free_bone_priors.png here")
    f.add_argument("--seed", type=int, default=0)
    f.set_defaults(func=run_fit)
    s = psub.add_parser("show", help="print a priors file's summary")
    s.add_argument("file", metavar="FILE")
    s.set_defaults(func=run_show)


def load_labelled_poses(data_dir: str | Path, dataset: str, keypoints: str, subjects: list[str], *,
                        cameras: str = "auto", subset: float = 1.0) -> np.ndarray:
    """(N, 17, 3) pelvis-at-origin camera-space poses, one camera's copy of each subject/action.

    Free bones and ratios are rotation invariant, so the other cameras' copies would add nothing.
    """
    from poselift.data.dataset import load_dataset, resolve_dataset_paths
    from poselift.errors import PoseliftError

    path_2d, path_3d = resolve_dataset_paths(data_dir, dataset, keypoints)
    for p in (path_2d, path_3d):
        if not p.is_file():
            raise PoseliftError(f"{p}: not found (expected --data-dir/--dataset/--keypoints to name it)")
    data = load_dataset(path_2d, path_3d, cameras=cameras)
    if data.skeleton is None or data.skeleton.name != "h36m":
        raise PoseliftError(f"{path_3d}: pose priors need Human3.6M-17 joints, got layout "
                            f"{None if data.skeleton is None else data.skeleton.name}")
    chosen: dict[tuple[str, str], np.ndarray] = {}
    for seq in data.select(subjects, None, subset, 1):
        key = (seq.subject, seq.action)
        if key not in chosen:
            pos = np.array(seq.positions_3d, dtype=np.float64)
            pos[:, 0] = 0.0  # the root holds the trajectory; the others are already root-relative
            chosen[key] = pos
    return np.concatenate(list(chosen.values()), axis=0)


def run_fit(args: argparse.Namespace) -> int:
    from poselift.errors import ConfigError
    from poselift.priors.fit import fit_priors

    if args.components < 1:
        raise ConfigError(f"--components must be >= 1, got {args.components}")
    if args.jitter < 0:
        raise ConfigError(f"--jitter must be >= 0, got {args.jitter}")
    poses = load_labelled_poses(args.data_dir, args.dataset, args.keypoints, args.subjects,
                                cameras=args.cameras, subset=args.subset)
    priors, ratios, vectors = fit_priors(poses, length_jitter=args.jitter, components=args.components,
                                         group_mirrored=not args.per_bone, seed=args.seed, subjects=args.subjects,
                                         return_samples=True)
    priors.meta["dataset"] = args.dataset
    out = priors.save(args.out)
    print(priors.summary())
    print(f"\nwrote {out}")
    if args.plots:
        from poselift.priors.plots import plot_free_bone_priors, plot_ratio_priors

        plots = Path(args.plots)
        print(f"wrote {plot_ratio_priors(priors, plots / 'bone_ratio_priors.png', ratios)}")
        print(f"wrote {plot_free_bone_priors(priors, plots / 'free_bone_priors.png', vectors)}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from poselift.priors.model import PosePriors

    print(PosePriors.load(args.file).summary())
    return 0
