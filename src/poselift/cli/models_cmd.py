"""``poselift models``: the pretrained models shipped with poselift (their cards, as a table or JSON)."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the pretrained models (use one with 'evaluate --model NAME')",
                       description="List the pretrained models and their model-card metrics (mm). The folder is "
                                   "the package's weights folder unless --weights-dir or $POSELIFT_PRETRAINED_DIR "
                                   "names another.")
    p.add_argument("--weights-dir", metavar="DIR", help="folder of <name>.safetensors + <name>.json model cards")
    p.add_argument("--json", action="store_true", help="print the model cards as one JSON list")
    p.set_defaults(func=run)


def _cell(metrics: dict | None) -> str:
    return "-" if metrics is None else f"{metrics['mpjpe']:.1f} / {metrics['p_mpjpe']:.1f}"


def table(cards) -> str:
    """A Markdown table: one row per model (with its lifter kind), one "P1 / P2" column per metric protocol."""
    protocols = sorted({p for c in cards for p in c.metrics})
    header = ["name", "kind", "input", "receptive field", "parameters", "size (MB)",
              *(f"{p} P1 / P2 (mm)" for p in protocols)]
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|---:|---:|---:|" + "---:|" * len(protocols)]
    for c in cards:
        row = [c.name, c.kind, c.input_layout, str(c.receptive_field), f"{c.parameters:,}", f"{c.size_mb:.2f}",
               *(_cell(c.metrics.get(p)) for p in protocols)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from poselift.pretrained.registry import list_pretrained, resolve_weights_dir

    cards = list_pretrained(args.weights_dir)
    if args.json:
        print(json.dumps([c.to_dict() for c in cards], indent=2))
        return 0
    if not cards:
        print(f"no pretrained models in {resolve_weights_dir(args.weights_dir)}")
        return 0
    print(table(cards))
    for c in cards:
        print(f"\n{c.name}: {c.description}")
    return 0
