"""Every lifter kind through the trainer and the CLI: RIE stages, refiner chaining, save/reload, evaluation."""

import json

import numpy as np
import pytest
import torch

from poselift.cli.common import overrides_from
from poselift.cli.main import build_parser, main
from poselift.data.synthetic import SyntheticConfig, generate_synthetic_dataset
from poselift.errors import ConfigError
from poselift.models import load_model
from poselift.models.baseline import FCBaselineLifter
from poselift.models.predict import predict_sequences
from poselift.models.refined import RefinedLifter
from poselift.models.rie import RIELifter
from poselift.models.semgcn import SemGCNLifter
from poselift.train.config import ExperimentConfig, apply_overrides, validate
from poselift.train.evaluation import quick_mpjpe
from poselift.train.trainer import Trainer

# tiny architectures of each kind (the CLI options of `poselift train`)
TINY = {
    "temporal_conv": ["--architecture", "3,3", "--channels", "32"],
    "rie": ["--architecture", "3,3", "--channels", "16", "--latent-dim", "16", "--mlp-channels", "32"],
    "baseline": ["--linear-size", "64", "--num-stages", "1"],
    "semgcn": ["--hid-dim", "16", "--num-layers", "1", "--non-local"],
}
MODULES = {"rie": RIELifter, "baseline": FCBaselineLifter, "semgcn": SemGCNLifter}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic_lifters")
    generate_synthetic_dataset(out, SyntheticConfig(subjects=("S1", "S2", "S3"), seconds_per_action=2.0,
                                                    cameras_per_subject=2, seed=5), progress=False)
    return out


def _args(data_dir, run_dir, kind, *extra, epochs=3):
    return ["train", "--data-dir", str(data_dir), "--dataset", "synthetic", "--subjects-train", "S1,S2",
            "--subjects-test", "S3", "--epochs", str(epochs), "--batch-size", "256", "--threads", "1",
            "--no-progress", "--checkpoint-dir", str(run_dir), "--model", kind, *TINY[kind], *extra]


def _config(data_dir, run_dir, kind, epochs=3, **overrides):
    """The ExperimentConfig the same `poselift train` command line builds, plus dotted overrides."""
    args = build_parser().parse_args(_args(data_dir, run_dir, kind, epochs=epochs))
    return apply_overrides(ExperimentConfig(), {**overrides_from(args), **overrides})


def _evaluate_json(capsys, weights, data_dir) -> dict:
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(weights), "--data-dir", str(data_dir), "--dataset", "synthetic",
                 "--subjects-test", "S3", "--json", "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("kind", sorted(TINY))
def test_every_kind_trains_from_the_cli_and_its_files_reproduce_the_report(kind, data_dir, tmp_path, capsys):
    run = tmp_path / kind
    assert main(_args(data_dir, run, kind, "--json")) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    history = (run / "metrics.csv").read_text().strip().splitlines()
    first, last = (float(line.split(",")[2]) for line in (history[1], history[-1]))
    assert last < first, (kind, first, last)  # training loss falls
    model, _, meta = load_model(run / "model.safetensors")
    assert meta["kind"] == kind
    if kind in MODULES:
        assert type(model) is MODULES[kind]
    # the weights file and the training checkpoint give the numbers the run reported
    for path in (run / "model.safetensors", run / "last.pt"):
        again = _evaluate_json(capsys, path, data_dir)
        assert again["mpjpe"] == pytest.approx(report["mpjpe"], abs=1e-3), path
        assert again["p_mpjpe"] == pytest.approx(report["p_mpjpe"], abs=1e-3), path


def test_training_moves_each_kind_towards_the_data(data_dir, tmp_path):
    """Six epochs cut the test error of every kind well below its untrained value."""
    for kind in ("rie", "baseline", "semgcn"):
        trainer = Trainer(_config(data_dir, tmp_path / kind, kind, epochs=6, **{"train.evaluate_every_epoch": False}),
                          progress=False, log=lambda m: None)
        before = quick_mpjpe(trainer.model_eval.eval(), trainer.test_seqs)
        after = trainer.run().report.mean.mpjpe / 1000
        assert after < 0.6 * before, (kind, before, after)


def _encoder_and_decoder_params(model: RIELifter) -> tuple[dict, dict, dict]:
    def snap(module):
        return {k: v.detach().clone() for k, v in module.named_parameters()}
    return snap(model.local_encoders), snap(model.global_encoder), {**snap(model.fusion), **{
        f"dec.{k}": v for k, v in snap(model.decoders).items()}}


def test_rie_three_stages_freeze_what_the_paper_freezes(data_dir, tmp_path):
    s1 = Trainer(_config(data_dir, tmp_path / "s1", "rie", epochs=2, **{"train.stage": 1}),
                 progress=False, log=lambda m: None)
    assert not s1.model_train.use_fusion
    s1.run()
    stage1, _, _ = load_model(tmp_path / "s1" / "model.safetensors")
    assert not stage1.use_fusion  # a stage-1 file reloads without the fusion module
    enc1, glob1, rest1 = _encoder_and_decoder_params(stage1)
    # fusion parameters are untouched in stage 1
    fresh = Trainer(_config(data_dir, tmp_path / "fresh", "rie", epochs=1, **{"train.stage": 1}),
                    progress=False, log=lambda m: None)
    for k, v in fresh.model_train.fusion.named_parameters():
        torch.testing.assert_close(dict(stage1.fusion.named_parameters())[k], v, rtol=0, atol=0)

    with pytest.raises(ConfigError, match="set train.init_from"):
        Trainer(_config(data_dir, tmp_path / "s2x", "rie", **{"train.stage": 2}), progress=False)
    s2 = Trainer(_config(data_dir, tmp_path / "s2", "rie", epochs=2, **{
        "train.stage": 2, "train.init_from": str(tmp_path / "s1" / "model.safetensors")}),
        progress=False, log=lambda m: None)
    assert s2.model_train.use_fusion and s2.lr == pytest.approx(1e-3)
    trained = {n for g in s2.optimizer.param_groups for n in [g["name"]]}
    assert trained == {"fusion", "decoders"}
    s2.run()
    enc2, glob2, rest2 = _encoder_and_decoder_params(s2.model_train)
    for old, new in ((enc1, enc2), (glob1, glob2)):  # encoders frozen: bit-identical
        for k in old:
            torch.testing.assert_close(new[k], old[k], rtol=0, atol=0)
    changed = [k for k in rest1 if not torch.equal(rest1[k], rest2[k])]
    assert len(changed) == len(rest1)  # fusion trained, decoders restarted and trained

    s3 = Trainer(_config(data_dir, tmp_path / "s3", "rie", epochs=1, **{
        "train.stage": 3, "train.init_from": str(tmp_path / "s2" / "model.safetensors")}),
        progress=False, log=lambda m: None)
    assert s3.lr == pytest.approx(5e-4)  # the reference's stage-3 rate, 0.0005
    assert all(g["lr"] == pytest.approx(5e-4) for g in s3.optimizer.param_groups)
    # stage 3 starts exactly from stage 2
    for k, v in s3.model_train.state_dict().items():
        torch.testing.assert_close(v, s2.model_train.state_dict()[k], rtol=0, atol=0)
    s3.run()
    enc3, _, _ = _encoder_and_decoder_params(s3.model_train)
    assert all(not torch.equal(enc3[k], enc2[k]) for k in enc2)  # everything trains in stage 3


def test_refiner_trains_on_a_fixed_first_stage_and_improves_it(data_dir, tmp_path, capsys):
    base = tmp_path / "fc"
    assert main(_args(data_dir, base, "baseline", epochs=4)) == 0
    with pytest.raises(ConfigError, match="set train.init_from"):
        Trainer(_config(data_dir, tmp_path / "x", "baseline", **{"model.refiner": True}), progress=False)
    trainer = Trainer(_config(data_dir, tmp_path / "ref", "baseline", epochs=4, **{
        "model.refiner": True, "model.hid_dim": 32, "model.num_layers": 2,
        "train.init_from": str(base / "model.safetensors")}), progress=False, log=lambda m: None)
    chain = trainer.model_train
    assert isinstance(chain, RefinedLifter) and chain.lifter_frozen and chain.refiner.uses_2d
    first, _, _ = load_model(base / "model.safetensors")
    # an untrained refiner is the identity: the chain starts exactly at the first stage
    seqs = [s.keypoints_2d for s in trainer.test_seqs]
    start = predict_sequences(chain, seqs, 0)
    for a, b in zip(start, predict_sequences(first, seqs, 0)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    result = trainer.run()
    for k, v in first.state_dict().items():  # the first stage did not move (weights and BN statistics)
        torch.testing.assert_close(chain.lifter.state_dict()[k], v, rtol=0, atol=0)
    base_p1 = _evaluate_json(capsys, base / "model.safetensors", data_dir)["mpjpe"]
    assert result.report.mean.mpjpe < base_p1
    model, _, meta = load_model(tmp_path / "ref" / "model.safetensors")
    assert meta["kind"] == "refined" and meta["config"]["lifter_kind"] == "baseline"


def test_refiner_with_train_lifter_updates_both(data_dir, tmp_path):
    base = tmp_path / "fc"
    assert main(_args(data_dir, base, "baseline", epochs=1)) == 0
    trainer = Trainer(_config(data_dir, tmp_path / "both", "baseline", epochs=1, **{
        "model.refiner": True, "model.hid_dim": 8, "model.num_layers": 1, "train.freeze_lifter": False,
        "train.init_from": str(base / "model.safetensors")}), progress=False, log=lambda m: None)
    before = {k: v.clone() for k, v in trainer.model_train.lifter.state_dict().items()}
    trainer.run()
    after = trainer.model_train.lifter.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("overrides, match", [
    ({"model.kind": "rie", "model.causal": True}, "only temporal_conv lifters can be causal"),
    ({"model.kind": "baseline", "train.stage": 1}, "train.stage is for RIE"),
    ({"model.kind": "transformer"}, "model.kind: unknown 'transformer'"),
    ({"model.kind": "semgcn", "data.subjects_unlabeled": ["S3"]}, "temporal_conv lifters only"),
])
def test_config_errors_name_the_field(overrides, match):
    cfg = apply_overrides(ExperimentConfig(), overrides)
    with pytest.raises(ConfigError, match=match):
        validate(cfg)


def test_skeleton_joint_kinds_refuse_another_2d_layout(tmp_path):
    """RIE groups and the SemGCN graph are the 3D skeleton's joints: COCO-17 2D is refused by name."""
    from poselift.skeleton import H36M_17
    from poselift.train.model_factory import lifter_from_config

    for kind in ("rie", "semgcn"):
        cfg = apply_overrides(ExperimentConfig(), {"model.kind": kind})
        with pytest.raises(ConfigError, match="2D keypoints must be the 3D skeleton's joints"):
            lifter_from_config(cfg.model, num_joints_in=17, num_joints_out=17, parents=list(H36M_17.parents),
                               same_layout=False)
    # the baseline and a 3D-only refiner take any layout
    cfg = apply_overrides(ExperimentConfig(), {"model.kind": "baseline", "model.refiner": True,
                                               "model.linear_size": 8, "model.hid_dim": 8})
    chain = lifter_from_config(cfg.model, num_joints_in=17, num_joints_out=17, parents=list(H36M_17.parents),
                               same_layout=False)
    assert not chain.refiner.uses_2d


def test_baseline_is_normalised_with_the_training_statistics(data_dir, tmp_path):
    """Martinez et al. z-score the 2D input and the 3D output per coordinate with training data."""
    from poselift.train.evaluation import root_relative

    trainer = Trainer(_config(data_dir, tmp_path / "fc", "baseline", epochs=1), progress=False, log=lambda m: None)
    model = trainer.model_train
    x = np.concatenate([s.keypoints_2d for s in trainer.train_seqs]).reshape(-1, 34)
    y = np.concatenate([root_relative(s.positions_3d) for s in trainer.train_seqs]).reshape(-1, 51)
    np.testing.assert_allclose(model.input_mean.numpy(), x.mean(0), atol=1e-5)
    np.testing.assert_allclose(model.input_std.numpy(), x.std(0, ddof=1), rtol=1e-4)
    np.testing.assert_allclose(model.output_mean.numpy(), y.mean(0), atol=1e-5)
    std = y.std(0, ddof=1)
    np.testing.assert_allclose(model.output_std.numpy(), np.where(std < 1e-4, 1.0, std), rtol=1e-4)
    assert np.all(model.output_std.numpy()[:3] == 1.0)  # the root is always 0: only shifted
    # the statistics travel with the weights; weights without them load as the identity
    trainer.run()
    back, _, _ = load_model(tmp_path / "fc" / "model.safetensors")
    torch.testing.assert_close(back.output_std, model.output_std, rtol=0, atol=0)
    bare = {k: v for k, v in model.state_dict().items() if not k.startswith(("input_", "output_"))}
    fresh = FCBaselineLifter(model.config)
    fresh.load_state_dict(bare)
    assert torch.equal(fresh.output_std, torch.ones(51)) and torch.equal(fresh.input_mean, torch.zeros(34))
    off = Trainer(_config(data_dir, tmp_path / "raw", "baseline", epochs=1, **{"model.normalize": False}),
                  progress=False, log=lambda m: None)
    assert torch.equal(off.model_train.output_std, torch.ones(51))
