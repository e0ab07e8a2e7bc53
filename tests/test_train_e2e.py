"""End to end: synthetic data -> training -> evaluation -> export, on a tiny model (seconds on CPU)."""

import json

import numpy as np
import pytest
import torch

from poselift.cli.main import main
from poselift.data.synthetic import SyntheticConfig, generate_synthetic_dataset
from poselift.models import load_model
from poselift.train.config import ExperimentConfig
from poselift.train.evaluation import quick_mpjpe
from poselift.train.trainer import Trainer


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    generate_synthetic_dataset(out, SyntheticConfig(subjects=("S1", "S2", "S3"), seconds_per_action=4.0,
                                                    cameras_per_subject=2, seed=3), progress=False)
    return out


def _config(data_dir, run_dir, epochs=4, **train):
    cfg = ExperimentConfig()
    cfg.data.data_dir, cfg.data.dataset, cfg.data.keypoints = str(data_dir), "synthetic", "gt"
    cfg.data.subjects_train, cfg.data.subjects_test = ["S1", "S2"], ["S3"]
    cfg.model.architecture, cfg.model.channels = [3, 3], 96
    cfg.train.epochs, cfg.train.batch_size, cfg.train.checkpoint_dir = epochs, 256, str(run_dir)
    cfg.train.threads = 2
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def test_training_reduces_error_clearly(data_dir, tmp_path):
    trainer = Trainer(_config(data_dir, tmp_path / "run"), progress=False, log=lambda m: None)
    trainer.model_eval.load_state_dict(trainer.model_train.state_dict())
    before = quick_mpjpe(trainer.model_eval.eval(), trainer.test_seqs)
    result = trainer.run()
    after = result.report.mean.mpjpe / 1000
    assert after < 0.5 * before, (before, after)
    assert result.report.mean.p_mpjpe < result.report.mean.mpjpe
    assert result.history[-1]["loss_3d_train_mm"] < result.history[0]["loss_3d_train_mm"]
    for name in ("metrics.csv", "training_curves.png", "last.pt", "model.safetensors", "model.json", "results.json"):
        assert (tmp_path / "run" / name).is_file(), name
    csv_lines = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("epoch,lr")
    # the exported weights reproduce the reported numbers through the CLI
    model, traj, meta = load_model(tmp_path / "run" / "model.safetensors")
    assert traj is None and meta["config"]["filter_widths"] == [3, 3]


def test_resume_continues_exactly(data_dir, tmp_path):
    straight = Trainer(_config(data_dir, tmp_path / "a", epochs=3, evaluate_every_epoch=False),
                       progress=False, log=lambda m: None)
    straight.run()
    interrupted = Trainer(_config(data_dir, tmp_path / "b", epochs=3, evaluate_every_epoch=False),
                          progress=False, log=lambda m: None)
    interrupted.run(stop_after=2)
    resumed = Trainer(_config(data_dir, tmp_path / "b", epochs=3, evaluate_every_epoch=False, resume="last"),
                      progress=False, log=lambda m: None)
    resumed.run()
    for (k, a), b in zip(straight.model_train.state_dict().items(), resumed.model_train.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k


def test_semi_supervised_runs_and_learns_trajectory(data_dir, tmp_path):
    cfg = _config(data_dir, tmp_path / "semi", epochs=3)
    cfg.data.subjects_train, cfg.data.subjects_unlabeled = ["S1"], ["S2"]
    result = Trainer(cfg, progress=False, log=lambda m: None).run()
    rows = result.history
    assert "loss_2d_unlabeled" not in rows[0]  # warm-up epoch is supervised only
    assert rows[1]["loss_2d_unlabeled"] > 0 and np.isfinite(rows[-1]["loss_bone_train_mm"])
    assert rows[-1]["traj_valid_mm"] < rows[0]["traj_valid_mm"]
    _, traj, meta = load_model(tmp_path / "semi" / "model.safetensors")
    assert traj is not None and meta["has_trajectory"]


def test_cli_evaluate_json(data_dir, tmp_path, capsys):
    run = tmp_path / "cli"
    rc = main(["train", "--data-dir", str(data_dir), "--dataset", "synthetic", "--subjects-train", "S1,S2",
               "--subjects-test", "S3", "--architecture", "3,3", "--channels", "64", "--epochs", "1",
               "--batch-size", "512", "--checkpoint-dir", str(run), "--no-progress", "--json"])
    assert rc == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rc = main(["evaluate", "--checkpoint", str(run / "model.safetensors"), "--data-dir", str(data_dir),
               "--dataset", "synthetic", "--subjects-test", "S3", "--json", "--no-progress"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "per_action"):
        assert key in out
    assert out["mpjpe"] == pytest.approx(trained["mpjpe"], abs=1e-3)
    assert len(out["per_action"]) >= 6
    assert out["mpjpe"] == pytest.approx(np.mean([a["mpjpe"] for a in out["per_action"].values()]), abs=1e-2)


def test_bn_momentum_schedule():
    from poselift.train.trainer import bn_momentum

    # VideoPose3D's schedule where an epoch has many batches (Human3.6M: thousands)
    assert bn_momentum(0, 80, 3000) == pytest.approx(0.1)
    assert bn_momentum(40, 80, 3000) == pytest.approx(0.01)
    assert bn_momentum(80, 80, 3000) == pytest.approx(0.001)
    # floored at one epoch's worth of batches on small datasets
    assert bn_momentum(80, 80, 50) == pytest.approx(0.02)
    assert bn_momentum(0, 80, 5) == pytest.approx(0.1)


def test_keypoint_noise_is_fresh_each_epoch_and_reproducible(data_dir, tmp_path):
    trainer = Trainer(_config(data_dir, tmp_path / "run", keypoint_noise=1.0), progress=False, log=lambda m: None)
    clean = trainer.batches._all_2d.copy()

    def draw(epoch):
        trainer.epoch = epoch
        trainer._redraw_noise()
        return trainer.batches._all_2d.copy()

    e0, e1, e0_again = draw(0), draw(1), draw(0)
    assert e0.shape == clean.shape
    np.testing.assert_array_equal(e0, e0_again)  # seeded by (seed, epoch): a resumed run sees the same draw
    assert not np.allclose(e0, e1)
    # magnitude: the default model's mean error is ~1.5% of the person's size (a few % at most)
    seq = trainer.train_seqs[0]
    w = seq.camera.res_w
    size_px = np.ptp(seq.keypoints_2d, axis=1).max(axis=-1).mean() * w / 2
    error_px = np.linalg.norm(e0 - clean, axis=-1).mean() * w / 2
    assert 0.005 * size_px < error_px < 0.04 * size_px, (error_px, size_px)
    # the clean input is kept for later draws; evaluation data untouched
    np.testing.assert_array_equal(trainer._clean_2d[0], seq.keypoints_2d)
    # halving the scale halves the jitter/drift/bias part (outliers and misses aside)
    assert trainer._noise_model().jitter == pytest.approx(0.005)
    trainer.cfg.train.keypoint_noise = 0.5
    assert trainer._noise_model().bias == pytest.approx(0.004)


def test_keypoints_test_reads_the_test_subjects_from_another_file(data_dir, tmp_path):
    from poselift.data.vp3d_format import load_positions_2d, save_positions_2d
    from poselift.skeleton import H36M_17
    kps, meta = load_positions_2d(data_dir / "data_2d_synthetic_gt.npz")
    shifted = {s: {a: [k + np.float32(5.0) for k in views] for a, views in acts.items()} for s, acts in kps.items()}
    other = tmp_path / "data"
    other.mkdir()
    for name in ("data_3d_synthetic.npz", "data_2d_synthetic_gt.npz"):
        (other / name).write_bytes((data_dir / name).read_bytes())
    save_positions_2d(other / "data_2d_synthetic_shifted.npz", shifted, H36M_17)
    cfg = _config(other, tmp_path / "run")
    cfg.data.keypoints_test = "shifted"
    trainer = Trainer(cfg, progress=False, log=lambda m: None)
    plain = Trainer(_config(other, tmp_path / "run2"), progress=False, log=lambda m: None)
    w = trainer.test_seqs[0].camera.res_w
    diff = (trainer.test_seqs[0].keypoints_2d - plain.test_seqs[0].keypoints_2d) * w / 2
    np.testing.assert_allclose(diff, 5.0, atol=1e-3)
    np.testing.assert_array_equal(trainer.train_seqs[0].keypoints_2d, plain.train_seqs[0].keypoints_2d)


def test_weak_supervision_runs_with_multiview_batches_and_sane_priors(tmp_path):
    from poselift.data.synthetic import SyntheticConfig, generate_synthetic_dataset
    from poselift.priors.bone_ratios import bone_lengths
    from poselift.train.evaluation import root_relative

    data = tmp_path / "data"
    generate_synthetic_dataset(data, SyntheticConfig(subjects=("S1", "S2", "S3"), seconds_per_action=1.0,
                                                     cameras_per_subject=3, seed=4), progress=False)
    cfg = _config(data, tmp_path / "run", epochs=2, weak_losses=["bse", "bpc", "jmc", "mvp_pose", "mvp_posture"])
    cfg.data.subjects_train, cfg.data.subjects_unlabeled, cfg.data.subjects_test = ["S1"], ["S2"], ["S3"]
    trainer = Trainer(cfg, progress=False, log=lambda m: None)
    assert trainer.multiview and trainer.semi_batches.num_views == 3
    # priors fitted on the labelled subject's root-relative poses: bone lengths of a person, not of a trajectory
    poses = np.concatenate([root_relative(s.positions_3d) for s in trainer.train_seqs])
    expected = bone_lengths(poses).mean(axis=0)
    assert expected.max() < 0.6
    np.testing.assert_allclose(np.asarray(trainer._priors().bone_length_mean), expected, rtol=0.02)
    result = trainer.run()
    last = result.history[-1]
    for name in ("bse", "bpc", "jmc", "mvp_pose", "mvp_posture"):
        assert np.isfinite(last[f"loss_{name}"]), name
    assert np.isfinite(result.report.mean.mpjpe) and result.report.mean.mpboe is not None
