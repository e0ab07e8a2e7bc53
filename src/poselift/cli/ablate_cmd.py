"""``poselift ablate``: train each chosen combination of losses with fixed seeds; results as Markdown and CSV."""

from __future__ import annotations

import argparse

from poselift.cli.common import overrides_from
from poselift.cli.train_cmd import add_experiment_options
from poselift.train.config import ExperimentConfig, apply_overrides, load_config

DEFAULT_COMBINATIONS = "sup,semi,semi+bse,semi+bpc,semi+jmc,semi+mvp,all"


def register(sub) -> None:
    p = sub.add_parser("ablate", help="train several loss combinations x seeds and tabulate P1/P2/MPBOE/J-MPBOE",
                       description="Each combination is +-joined terms: sup (labelled only), semi (back-projection "
                                   "+ bone length), bse, bpc, jmc, mvp_pose, mvp_posture, mvp (both), all. Every "
                                   "run goes to OUT/<combination>/seed<k>; OUT/results.md and results.csv hold the "
                                   "table (mean ± std over seeds). Other options override the --config YAML for "
                                   "every run.")
    p.add_argument("--combinations", default=DEFAULT_COMBINATIONS, metavar="LIST",
                   help=f"comma-separated combinations (default {DEFAULT_COMBINATIONS})")
    p.add_argument("--seeds", default="1,2,3", metavar="LIST", help="comma-separated seeds (default 1,2,3)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the runs and the results table")
    add_experiment_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from poselift.train.ablation import parse_combination, run_ablation, results_table

    config = load_config(args.config) if args.config else ExperimentConfig()
    apply_overrides(config, overrides_from(args))
    combos = [c.strip() for c in args.combinations.split(",") if c.strip()]
    for c in combos:
        parse_combination(c)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"poselift ablate: error: --seeds expects integers like 1,2,3, got {args.seeds!r}") from None
    rows = run_ablation(config, combos, seeds, args.out, progress=not args.no_progress)
    print(results_table(rows)[0])
    print(f"results: {args.out}/results.md, {args.out}/results.csv")
    return 0
