"""``poselift`` entry point: dispatches to one module per subcommand and turns user errors into one line."""

from __future__ import annotations

import argparse
import sys

from poselift import __version__
from poselift.cli import (ablate_cmd, data_cmd, demo_cmd, evaluate_cmd, infer_cmd, models_cmd, priors_cmd,
                          train_cmd, triangulate_cmd)
from poselift.errors import PoseliftError

SUBCOMMANDS = (train_cmd, evaluate_cmd, data_cmd, models_cmd, infer_cmd, demo_cmd, triangulate_cmd, priors_cmd,
               ablate_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poselift", description="Monocular 3D human pose estimation toolkit.")
    parser.add_argument("--version", action="version", version=f"poselift {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PoseliftError as exc:
        print(f"poselift {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
