"""Option groups shared by several subcommands."""

from __future__ import annotations

import argparse


def csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_data_options(p: argparse.ArgumentParser, *, training: bool) -> None:
    g = p.add_argument_group("data (VideoPose3D file layout: DATA_DIR/data_3d_DATASET.npz, data_2d_DATASET_KEYPOINTS.npz)")
    g.add_argument("--data-dir", dest="data.data_dir", metavar="DIR", help="folder with the dataset files")
    g.add_argument("--dataset", dest="data.dataset", metavar="NAME", help="dataset name, e.g. h36m, humaneva15, synthetic")
    g.add_argument("--keypoints", dest="data.keypoints", metavar="NAME", help="2D keypoint source, e.g. gt, cpn_ft_h36m_dbb")
    g.add_argument("--cameras", dest="data.cameras", choices=["auto", "h36m", "humaneva"],
                   help="camera parameters: the 3D file's own, or the published ones (default auto)")
    if training:
        g.add_argument("--subjects-train", dest="data.subjects_train", type=csv_list, metavar="LIST", help="e.g. S1,S5,S6,S7,S8")
        g.add_argument("--subjects-unlabeled", dest="data.subjects_unlabeled", type=csv_list, metavar="LIST",
                       help="subjects used without 3D labels (semi-supervised)")
        g.add_argument("--keypoints-test", dest="data.keypoints_test", metavar="NAME",
                       help="2D keypoint source for the test subjects (default: --keypoints)")
        g.add_argument("--subset", dest="data.subset", type=float, metavar="FRACTION", help="fraction of labelled frames to use")
    g.add_argument("--subjects-test", dest="data.subjects_test", type=csv_list, metavar="LIST", help="e.g. S9,S11")
    g.add_argument("--actions", dest="data.actions", type=csv_list, metavar="LIST", help="action name prefixes (default: all)")
    g.add_argument("--downsample", dest="data.downsample", type=int, metavar="FACTOR", help="keep every n-th frame")


def overrides_from(args: argparse.Namespace) -> dict[str, object]:
    """Dotted ``section.field`` options the user actually gave."""
    return {k: v for k, v in vars(args).items() if "." in k and v is not None}
