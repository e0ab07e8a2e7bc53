"""Bad input gives one clear line on stderr and exit code 2, never a traceback."""

import numpy as np
import pytest
import torch

from poselift.cli.main import main
from poselift.data.vp3d_format import save_positions_2d, save_positions_3d
from poselift.skeleton import COCO_17


@pytest.fixture
def toy(tmp_path):
    rng = np.random.default_rng(0)
    world = {"S1": {"A": rng.normal(0, 0.3, (40, 17, 3)).astype(np.float32) + [0, 0, 1]}}
    save_positions_3d(tmp_path / "data_3d_h36m.npz", world)
    return tmp_path


def _run(capsys, *argv):
    rc = main(list(argv))
    err = capsys.readouterr().err
    return rc, err


def test_missing_checkpoint(toy, capsys):
    rc, err = _run(capsys, "evaluate", "--checkpoint", str(toy / "none.bin"), "--data-dir", str(toy), "--dataset", "h36m")
    assert rc == 2 and "none.bin does not exist" in err and "Traceback" not in err


def test_not_a_videopose3d_checkpoint(toy, capsys):
    torch.save({"weights": torch.zeros(3)}, toy / "x.bin")
    rc, err = _run(capsys, "evaluate", "--checkpoint", str(toy / "x.bin"), "--data-dir", str(toy), "--dataset", "h36m")
    assert rc == 2 and "x.bin" in err and "VideoPose3D" in err


def test_wrong_npz_keys_and_nan_keypoints(toy, capsys):
    np.savez(toy / "data_2d_h36m_gt.npz", something=np.zeros(3))
    from poselift.models import TemporalConvConfig, TemporalConvLifter, save_model
    save_model(TemporalConvLifter(TemporalConvConfig(channels=8)), toy / "m.safetensors")
    rc, err = _run(capsys, "evaluate", "--checkpoint", str(toy / "m.safetensors"), "--data-dir", str(toy),
                   "--dataset", "h36m", "--subjects-test", "S1")
    assert rc == 2 and "data_2d_h36m_gt.npz" in err and "positions_2d" in err
    k = np.zeros((40, 17, 2))
    k[5, 3, 0] = np.nan
    save_positions_2d(toy / "data_2d_h36m_gt.npz", {"S1": {"A": [k] * 4}}, COCO_17)
    rc, err = _run(capsys, "evaluate", "--checkpoint", str(toy / "m.safetensors"), "--data-dir", str(toy),
                   "--dataset", "h36m", "--subjects-test", "S1")
    assert rc == 2 and "NaN" in err and "frame 5, joint 3" in err


def test_joint_count_mismatch_between_model_and_data(toy, capsys):
    from poselift.models import TemporalConvConfig, TemporalConvLifter, save_model
    save_positions_2d(toy / "data_2d_h36m_gt.npz", {"S1": {"A": [np.zeros((40, 17, 2))] * 4}}, COCO_17)
    save_model(TemporalConvLifter(TemporalConvConfig(num_joints_in=15, channels=8)), toy / "m15.safetensors")
    rc, err = _run(capsys, "evaluate", "--checkpoint", str(toy / "m15.safetensors"), "--data-dir", str(toy),
                   "--dataset", "h36m", "--subjects-test", "S1")
    assert rc == 2 and "15 keypoints" in err and "17" in err


def test_bad_config_file(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("model: {channels: lots}\n")
    rc, err = _run(capsys, "train", "--config", str(tmp_path / "c.yaml"))
    assert rc == 2 and "model.channels" in err


def test_evaluate_original_videopose3d_checkpoint(toy, capsys):
    """An original-format .bin (pickled with NumPy RandomState objects) evaluates through the CLI."""
    import json

    from poselift.models import TemporalConvConfig, TemporalConvLifter
    model = TemporalConvLifter(TemporalConvConfig(filter_widths=[3, 3], channels=16))
    torch.save({"epoch": 3, "lr": 1e-3, "random_state": np.random.RandomState(1), "model_pos": model.state_dict(),
                "model_traj": None, "optimizer": None, "random_state_semi": None}, toy / "epoch_3.bin")
    rng = np.random.default_rng(0)
    save_positions_2d(toy / "data_2d_h36m_gt.npz", {"S1": {"A": [rng.uniform(0, 1000, (40, 17, 2))] * 4}}, COCO_17)
    rc = main(["evaluate", "--checkpoint", str(toy / "epoch_3.bin"), "--data-dir", str(toy), "--dataset", "h36m",
               "--subjects-test", "S1", "--json", "--no-progress"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["frames"] == 160 and set(out["per_action"]) == {"A"} and out["mpjpe"] > 0
