"""Train every chosen combination of losses with fixed seeds and tabulate the results.

A combination is a ``+``-joined list of tokens:

* ``sup``: labelled subjects only (the unlabelled ones are dropped);
* ``semi``: VideoPose3D's semi-supervision on the unlabelled subjects
  (2D back-projection through a trajectory model, bone-length consistency);
* ``bse``, ``bpc``, ``jmc``, ``mvp_pose``, ``mvp_posture``: PosturePose's weak
  losses on the unlabelled subjects; ``mvp`` = both multi-view terms;
* ``all`` = ``semi+bse+bpc+jmc+mvp``.

Weak losses without ``semi`` train the trajectory model but switch the
back-projection and bone-length terms off, so each loss can be measured alone.
Every (combination, seed) is one :class:`~poselift.train.trainer.Trainer` run in
``out_dir/<combination>/seed<k>``; a run whose folder already holds the results of
the same configuration is reused, so an interrupted ablation picks up where it stopped; the table gives the mean and standard
deviation over seeds of P1, P2, MPBOE and J-MPBOE (mm).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from poselift.atomic import atomic_write_text
from poselift.errors import ConfigError
from poselift.train.config import WEAK_LOSSES, ExperimentConfig, validate

__all__ = ["AblationRow", "combination_config", "parse_combination", "results_table", "run_ablation"]

METRICS = ("mpjpe", "p_mpjpe", "mpboe", "j_mpboe")
_ALIASES = {"mvp": ("mvp_pose", "mvp_posture"), "all": ("semi", "bse", "bpc", "jmc", "mvp_pose", "mvp_posture")}


def parse_combination(text: str) -> tuple[str, ...]:
    """``"semi+bse"`` -> ("semi", "bse"); aliases expanded; unknown tokens are errors."""
    tokens: list[str] = []
    for raw in text.strip().split("+"):
        tok = raw.strip().lower()
        for t in _ALIASES.get(tok, (tok,)):
            if t not in ("sup", "semi", *WEAK_LOSSES):
                raise ConfigError(f"ablation combination {text!r}: unknown term {raw!r}; use sup, semi, "
                                  f"{', '.join(WEAK_LOSSES)}, mvp or all, joined by +")
            if t not in tokens:
                tokens.append(t)
    if "sup" in tokens and len(tokens) > 1:
        raise ConfigError(f"ablation combination {text!r}: 'sup' (labelled data only) cannot be combined")
    return tuple(tokens)


def combination_config(base: ExperimentConfig, tokens: tuple[str, ...], seed: int, run_dir: Path) -> ExperimentConfig:
    """The base experiment with the combination's data and loss settings, the seed and the run folder."""
    cfg = copy.deepcopy(base)
    t = cfg.train
    t.seed, t.checkpoint_dir, t.resume = seed, str(run_dir), None
    if tokens == ("sup",):
        cfg.data.subjects_unlabeled, t.weak_losses = [], []
    else:
        if not cfg.data.subjects_unlabeled:
            raise ConfigError("ablation: combinations other than 'sup' need data.subjects_unlabeled")
        t.projection_term = t.bone_length_term = "semi" in tokens
        t.weak_losses = [n for n in tokens if n in WEAK_LOSSES]
    validate(cfg)
    return cfg


@dataclass
class AblationRow:
    combination: str
    seed: int
    metrics: dict[str, float]  # mm
    run_dir: str


def run_ablation(base: ExperimentConfig, combinations: list[str], seeds: list[int], out_dir: str | Path, *,
                 progress: bool = True, log=print) -> list[AblationRow]:
    """Train each (combination, seed) in turn; writes ``results.csv`` and ``results.md`` after every run."""
    from poselift.train.trainer import Trainer

    parsed = [(c, parse_combination(c)) for c in combinations]  # fail on a typo before training anything
    out = Path(out_dir)
    rows: list[AblationRow] = []
    total = len(parsed) * len(seeds)
    for name, tokens in parsed:
        for seed in seeds:
            run_dir = out / name.replace("+", "_") / f"seed{seed}"
            cfg = combination_config(base, tokens, seed, run_dir)
            done = _finished_report(run_dir, cfg)
            if done is not None:
                log(f"ablation run {len(rows) + 1}/{total}: {name}, seed {seed}: reusing the finished {run_dir}")
                report = done
            else:
                log(f"ablation run {len(rows) + 1}/{total}: {name}, seed {seed} -> {run_dir}")
                report = Trainer(cfg, progress=progress, log=log).run().report.to_json_dict()
            rows.append(AblationRow(name, seed, {k: float(report[k]) for k in METRICS if k in report}, str(run_dir)))
            write_results(rows, out)
    return rows


def _comparable(config: dict) -> dict:
    """A run's configuration without the settings that do not change its results (CPU threads)."""
    out = copy.deepcopy(config)
    out.get("train", {}).pop("threads", None)
    return out


def _finished_report(run_dir: Path, cfg: ExperimentConfig) -> dict | None:
    """The results of an earlier, completed run with the same configuration (an interrupted ablation resumes)."""
    import yaml

    results, config = run_dir / "results.json", run_dir / "config.yaml"
    if not (results.is_file() and config.is_file()):
        return None
    try:
        if _comparable(yaml.safe_load(config.read_text())) != _comparable(cfg.to_dict()):
            return None
        return json.loads(results.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None


def results_table(rows: list[AblationRow]) -> tuple[str, str]:
    """(Markdown, CSV): per combination, mean and standard deviation over seeds; CSV has every run too."""
    order: list[str] = []
    for r in rows:
        if r.combination not in order:
            order.append(r.combination)
    md = ["| losses | seeds | " + " | ".join(f"{m} (mm)" for m in METRICS) + " |",
          "|---|---:|" + "---:|" * len(METRICS)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["combination", "seed", *METRICS, "run_dir"])
    for name in order:
        group = [r for r in rows if r.combination == name]
        cells = []
        for m in METRICS:
            values = [r.metrics[m] for r in group if m in r.metrics]
            if not values:
                cells.append("-")
            elif len(values) == 1:
                cells.append(f"{values[0]:.1f}")
            else:
                cells.append(f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}")
        md.append(f"| {name} | {len(group)} | " + " | ".join(cells) + " |")
        for r in group:
            writer.writerow([name, r.seed, *(f"{r.metrics[m]:.3f}" if m in r.metrics else "" for m in METRICS),
                             r.run_dir])
    return "\n".join(md) + "\n", buf.getvalue()


def write_results(rows: list[AblationRow], out_dir: Path) -> None:
    md, csv_text = results_table(rows)
    atomic_write_text(out_dir / "results.md", md)
    atomic_write_text(out_dir / "results.csv", csv_text)
    atomic_write_text(out_dir / "results.json", json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
