"""One registry, one weights format for every lifter kind: save, reload, identical output."""

import json

import numpy as np

import pytest
import torch
from model_helpers import randomise_bn

from poselift.errors import CheckpointError, ConfigError
from poselift.models.baseline import BaselineConfig, FCBaselineLifter
from poselift.models.refined import RefinedLifter, RefinedLifterConfig
from poselift.models.registry import LIFTERS, build_lifter, kind_of
from poselift.models.rie import RIEConfig, RIELifter
from poselift.models.semgcn import SemGCNConfig, SemGCNLifter
from poselift.models.temporal_conv import TemporalConvConfig, TemporalConvLifter, TemporalConvLifterStrided
from poselift.models.weights import load_model, save_model

TINY = {
    "temporal_conv": lambda: TemporalConvLifter(TemporalConvConfig(filter_widths=[3, 3], channels=16)),
    "rie": lambda: RIELifter(RIEConfig(filter_widths=[3, 3], channels=8, latent_dim=8, mlp_channels=8)),
    "baseline": lambda: FCBaselineLifter(BaselineConfig(linear_size=16)),
    "semgcn": lambda: SemGCNLifter(SemGCNConfig(hid_dim=8, num_layers=2)),
    # a refiner whose output layer is not zero, so the chain differs from its first stage
    "refined": lambda: RefinedLifter(RefinedLifterConfig(
        lifter_kind="rie", lifter={"filter_widths": [3], "channels": 8, "latent_dim": 8, "mlp_channels": 8},
        refiner={"hid_dim": 8, "num_layers": 1, "zero_init_output": False})),
}


@pytest.mark.parametrize("kind", sorted(TINY))
def test_every_kind_round_trips_through_one_weights_format(kind, tmp_path):
    torch.manual_seed(0)
    model = TINY[kind]()
    randomise_bn(model, 1)
    model.eval()
    assert kind_of(model) == kind
    weights, card = save_model(model, tmp_path / f"{kind}.safetensors", extra={"note": "x"})
    meta = json.loads(card.read_text())
    assert meta["kind"] == kind and meta["note"] == "x"
    back, traj, meta2 = load_model(weights)
    assert type(back) is type(model) and traj is None and meta2["kind"] == kind
    x = torch.randn(2, model.receptive_field + 4, 17, 2)
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x), rtol=0, atol=0)


def test_registry_errors(tmp_path):
    assert set(LIFTERS) >= {"temporal_conv", "rie", "baseline", "semgcn", "semgcn_refiner"}
    assert kind_of(TemporalConvLifterStrided(TemporalConvConfig(channels=8))) == "temporal_conv"
    with pytest.raises(CheckpointError, match="not a registered lifter"):
        kind_of(torch.nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="unknown lifter kind 'transformer'"):
        build_lifter("transformer", {})
    with pytest.raises(CheckpointError, match="not a valid baseline config"):
        build_lifter("baseline", {"linear_size": 8, "no_such_field": 1})
    # a trajectory model only exists for temporal convolutions
    weights, card = save_model(TINY["baseline"](), tmp_path / "b.safetensors")
    from safetensors.torch import load_file, save_file
    tensors = load_file(str(weights))
    tensors["traj.x"] = torch.zeros(1)
    save_file(tensors, str(weights))
    with pytest.raises(CheckpointError, match="only defined for temporal convolutions"):
        load_model(weights)


def test_video_pipeline_refuses_skeleton_joint_lifters_clearly(tmp_path):
    """RIE and SemGCN take the skeleton's own (Human3.6M-17) 2D joints; a video gives COCO-17."""
    from poselift.infer.lifting import load_lifter_for_video
    for kind in ("semgcn", "rie", "refined"):
        weights, _ = save_model(TINY[kind](), tmp_path / f"{kind}.safetensors")
        first = "rie" if kind == "refined" else kind
        with pytest.raises(ConfigError, match=f"a {first} lifter works on the 3D skeleton's own joints"):
            load_lifter_for_video(str(weights))


@pytest.mark.parametrize("causal", [False, True])
def test_video_lifting_runs_any_coco_lifter(tmp_path, causal):
    """A baseline + SemGCN-refiner chain trained on COCO-17 goes through the video lifting step."""
    from poselift.infer.lifting import lift_normalized, load_lifter_for_video
    torch.manual_seed(0)
    model = RefinedLifter(RefinedLifterConfig(lifter_kind="baseline", lifter={"linear_size": 16},
                                              refiner={"in_features": 3, "hid_dim": 8, "num_layers": 1,
                                                       "zero_init_output": False}))
    randomise_bn(model, 2)
    weights, _ = save_model(model.eval(), tmp_path / "fc.safetensors", extra={"keypoints_layout": "coco"})
    loaded, _ = load_lifter_for_video(str(weights))
    x = torch.rand(30, 17, 2) * 2 - 1
    out = lift_normalized(loaded, x.numpy(), causal=causal, test_time_augmentation=False)
    with torch.no_grad():
        expected = model(x[None])[0].numpy()  # single-frame: causal or not, frame t sees frame t
    assert out.shape == (30, 17, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
