"""``poselift demo --out DIR``: the whole video pipeline on a sample video, nothing needed from the user."""

from __future__ import annotations

import argparse
import sys

from poselift.cli.infer_cmd import add_pipeline_options, config_from_args, report
from poselift.infer.demo_video import DEMO_CREDIT, demo_video_path
from poselift.infer.pipeline import run_pipeline


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the video pipeline on a sample video (fetched once from PyPI, then cached)",
                       description="Fetch the Sports2D sample video (pip download of the sports2d wheel, once; "
                                   "cached in ~/.cache/poselift), then detect, track, lift, export, render and "
                                   "write the browser viewer into --out.")
    add_pipeline_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    video = demo_video_path()
    if not args.no_progress:
        print(DEMO_CREDIT, file=sys.stderr)
    result = run_pipeline(config_from_args(args, str(video)))
    report(result, args.json)
    return 0
