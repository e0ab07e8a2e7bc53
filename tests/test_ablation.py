"""poselift ablate: combination parsing, per-run configuration, the results table and resuming."""

import json

import pytest
import yaml

from poselift.errors import ConfigError
from poselift.train.ablation import (AblationRow, combination_config, parse_combination, results_table,
                                     run_ablation)
from poselift.train.config import ExperimentConfig


def _base():
    cfg = ExperimentConfig()
    cfg.data.subjects_train, cfg.data.subjects_unlabeled, cfg.data.subjects_test = ["S1"], ["S2"], ["S3"]
    return cfg


def test_parse_combinations_and_aliases():
    assert parse_combination("sup") == ("sup",)
    assert parse_combination("semi+BSE") == ("semi", "bse")
    assert parse_combination("semi+mvp") == ("semi", "mvp_pose", "mvp_posture")
    assert parse_combination("all") == ("semi", "bse", "bpc", "jmc", "mvp_pose", "mvp_posture")
    with pytest.raises(ConfigError, match="unknown term 'bsx'"):
        parse_combination("semi+bsx")
    with pytest.raises(ConfigError, match="cannot be combined"):
        parse_combination("sup+bse")


def test_combination_config_sets_data_and_losses(tmp_path):
    base = _base()
    sup = combination_config(base, ("sup",), 7, tmp_path / "a")
    assert sup.data.subjects_unlabeled == [] and sup.train.weak_losses == [] and sup.train.seed == 7
    assert sup.train.checkpoint_dir == str(tmp_path / "a")
    bse = combination_config(base, ("bse",), 1, tmp_path / "b")  # a weak loss alone: no back-projection
    assert bse.train.weak_losses == ["bse"] and not bse.train.projection_term and not bse.train.bone_length_term
    both = combination_config(base, ("semi", "jmc"), 1, tmp_path / "c")
    assert both.train.projection_term and both.train.bone_length_term and both.train.weak_losses == ["jmc"]
    assert base.train.weak_losses == [] and base.data.subjects_unlabeled == ["S2"]  # the base is not modified
    no_unlabelled = _base()
    no_unlabelled.data.subjects_unlabeled = []
    with pytest.raises(ConfigError, match="subjects_unlabeled"):
        combination_config(no_unlabelled, ("semi",), 1, tmp_path / "d")


def test_results_table_mean_and_std():
    rows = [AblationRow("sup", 1, {"mpjpe": 100.0, "p_mpjpe": 70.0, "mpboe": 90.0, "j_mpboe": 84.7}, "r1"),
            AblationRow("sup", 2, {"mpjpe": 110.0, "p_mpjpe": 74.0, "mpboe": 94.0, "j_mpboe": 88.5}, "r2"),
            AblationRow("all", 1, {"mpjpe": 95.5, "p_mpjpe": 66.0, "mpboe": 80.0, "j_mpboe": 75.3}, "r3")]
    md, csv_text = results_table(rows)
    lines = md.strip().splitlines()
    assert lines[2] == "| sup | 2 | 105.0 ± 7.1 | 72.0 ± 2.8 | 92.0 ± 2.8 | 86.6 ± 2.7 |"  # stdev of 100, 110 = 7.07
    assert lines[3] == "| all | 1 | 95.5 | 66.0 | 80.0 | 75.3 |"
    assert csv_text.splitlines()[0] == "combination,seed,mpjpe,p_mpjpe,mpboe,j_mpboe,run_dir"
    assert len(csv_text.splitlines()) == 4


def test_finished_runs_are_reused(tmp_path):
    base = _base()
    out = tmp_path / "abl"
    for seed, value in ((1, 50.0), (2, 60.0)):
        cfg = combination_config(base, ("sup",), seed, out / "sup" / f"seed{seed}")
        run = out / "sup" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        (run / "results.json").write_text(json.dumps({"mpjpe": value, "p_mpjpe": 1.0, "mpboe": 2.0, "j_mpboe": 3.0}))
    logs = []
    base.train.threads = 2  # CPU threads do not change results: still reused
    rows = run_ablation(base, ["sup"], [1, 2], out, progress=False, log=logs.append)  # no data: must not train
    assert [r.metrics["mpjpe"] for r in rows] == [50.0, 60.0]
    assert all("reusing" in line for line in logs)
    assert (out / "results.md").read_text().splitlines()[2].startswith("| sup | 2 | 55.0 ± 7.1 |")
