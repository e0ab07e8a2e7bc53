"""Pretrained-model registry: model cards, listing/loading, ``poselift models`` and ``evaluate --model``."""

import json
import math
from pathlib import Path

import pytest
import torch

import poselift
from poselift.cli.main import main
from poselift.errors import CheckpointError
from poselift.models import TemporalConvConfig, TemporalConvLifter, save_model
from poselift.models.refined import RefinedLifter
from poselift.models.registry import build_lifter
from poselift.models.rie import RIEConfig, RIELifter
from poselift.pretrained import (CONV_FIELDS, ENV_VAR, PACKAGE_WEIGHTS_DIR, REQUIRED_FIELDS, evaluate_heldout,
                                 list_pretrained, load_pretrained, read_card, save_pretrained, validate_card)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

METRICS = {"cmu_open_gt": {"mpjpe": 61.5, "p_mpjpe": 44.25, "n_mpjpe": 58.0, "mpjve": 3.1},
           "cmu_open_noisy": {"mpjpe": 77.75, "p_mpjpe": 55.5, "n_mpjpe": 72.0, "mpjve": 6.2}}


def _tiny(seed=0, **cfg):
    torch.manual_seed(seed)
    return TemporalConvLifter(TemporalConvConfig(channels=8, filter_widths=[3, 3], **cfg)).eval()


def _fields(**over):
    fields = dict(description="tiny test model", input_layout="h36m", training_data="nothing",
                  training_command="none", metrics=METRICS, license="MIT", created="2025-01-01")
    fields.update(over)
    return fields


@pytest.fixture
def weights(tmp_path):
    """A weights folder with two tiny models (coco input and h36m input)."""
    d = tmp_path / "weights"
    save_pretrained(_tiny(1), "tiny-h36m", d, **_fields())
    save_pretrained(_tiny(2), "tiny-coco", d,
                    **_fields(input_layout="coco", metrics={"cmu_open_noisy": METRICS["cmu_open_noisy"]}))
    return d


def _card_json(d, name):
    return json.loads((d / f"{name}.json").read_text())


def _write_card(d, name, card):
    (d / f"{name}.json").write_text(json.dumps(card))


# --- registry ------------------------------------------------------------------------------------------------------

def test_list_and_load_with_argument(weights):
    cards = list_pretrained(weights)
    assert [c.name for c in cards] == ["tiny-coco", "tiny-h36m"]
    coco = cards[0]
    assert coco.input_layout == "coco" and coco.output_layout == "h36m" and coco.receptive_field == 9
    assert coco.path == weights / "tiny-coco.safetensors" and coco.card_path == weights / "tiny-coco.json"
    assert coco.raw["training_command"] == "none" and coco.size_mb > 0

    model, card = load_pretrained("tiny-h36m", weights_dir=weights)
    assert isinstance(model, TemporalConvLifter) and not model.training
    assert card.parameters == sum(p.numel() for p in model.parameters())
    reference = _tiny(1)
    x = torch.randn(1, 12, 17, 2)
    assert torch.equal(model(x), reference(x))


def test_env_var_selects_the_folder(weights, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(weights))
    assert [c.name for c in list_pretrained()] == ["tiny-coco", "tiny-h36m"]
    model, card = poselift.load_pretrained("tiny-coco")
    assert card.input_layout == "coco" and model.receptive_field == 9


def test_missing_folder_lists_nothing(tmp_path):
    assert list_pretrained(tmp_path / "absent") == []
    with pytest.raises(CheckpointError, match="no pretrained models are installed"):
        load_pretrained("anything", weights_dir=tmp_path / "absent")


@pytest.mark.parametrize("name", ["nope", "../weights/tiny-h36m", "tiny-h36m.json", ""])
def test_unknown_name_lists_available(weights, name):
    with pytest.raises(CheckpointError) as e:
        load_pretrained(name, weights_dir=weights)
    assert "unknown pretrained model" in str(e.value) and "available: tiny-coco, tiny-h36m" in str(e.value)


@pytest.mark.parametrize("field", [*REQUIRED_FIELDS, *CONV_FIELDS, "config"])
def test_card_missing_field_names_file_and_field(weights, field):
    card = _card_json(weights, "tiny-h36m")
    del card[field]
    _write_card(weights, "tiny-h36m", card)
    for call in (lambda: list_pretrained(weights), lambda: load_pretrained("tiny-h36m", weights)):
        with pytest.raises(CheckpointError) as e:
            call()
        assert "tiny-h36m.json" in str(e.value) and f"missing field '{field}'" in str(e.value)


@pytest.mark.parametrize("field, value, words", [
    ("input_layout", "mpii", "'h36m' or 'coco'"),
    ("output_layout", "coco", "'h36m'"),
    ("receptive_field", 27, "model config says 9"),
    ("architecture", [3, 3, 3], "model config says [3, 3]"),
    ("channels", 1024, "model config says 8"),
    ("parameters", True, "positive integer"),
    ("metrics", {}, "non-empty"),
    ("metrics", {"cmu_open_gt": {"mpjpe": 1.0}}, "'cmu_open_gt'"),
    ("name", "other", "file name 'tiny-h36m'"),
    ("created", "", "non-empty string"),
    ("heldout_clips", ["cmu-131/131_02.bvh"], "missing field 'heldout_noise', 'heldout_check'"),
])
def test_card_bad_values_name_file_and_field(weights, field, value, words):
    card = _card_json(weights, "tiny-h36m")
    card[field] = value
    with pytest.raises(CheckpointError) as e:
        validate_card(card, weights / "tiny-h36m.json")
    assert "tiny-h36m.json" in str(e.value) and repr(field) in str(e.value) and words in str(e.value)


def test_validate_card_checks_heldout_fields(tmp_path):
    card = {**_fields(), "name": "m", "receptive_field": 9, "architecture": [3, 3], "channels": 8, "parameters": 1,
            "config": TemporalConvConfig(channels=8, filter_widths=[3, 3]).to_dict(), "output_layout": "h36m",
            "heldout_clips": ["cmu-131/131_02.bvh"], "heldout_noise": "gt",
            "heldout_check": {"mpjpe": 60.0, "margin": 0.05}}
    validate_card(card, tmp_path / "m.json")
    for field, value in [("heldout_noise", "noisy"), ("heldout_clips", ["../x.bvh"]), ("heldout_clips", []),
                         ("heldout_check", {"mpjpe": 60.0})]:
        with pytest.raises(CheckpointError, match=rf"m\.json: .*'{field}'"):
            validate_card({**card, field: value}, tmp_path / "m.json")


def test_weights_missing_next_to_card(weights):
    (weights / "tiny-coco.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"tiny-coco\.json: the weights file tiny-coco\.safetensors is missing"):
        list_pretrained(weights)
    with pytest.raises(CheckpointError, match="tiny-coco.safetensors is missing"):
        load_pretrained("tiny-coco", weights)


def test_parameter_count_is_checked_against_the_weights(weights):
    card = _card_json(weights, "tiny-h36m")
    card["parameters"] += 1
    _write_card(weights, "tiny-h36m", card)
    with pytest.raises(CheckpointError, match=r"tiny-h36m\.json: model card field 'parameters'"):
        load_pretrained("tiny-h36m", weights)


def test_card_written_by_save_model_extra_is_a_card(tmp_path):
    """A card is save_model's JSON plus the card fields: writing it by hand with extra= works too."""
    model = _tiny()
    extra = {**_fields(), "name": "hand", "output_layout": "h36m", "receptive_field": 9, "architecture": [3, 3],
             "channels": 8, "parameters": sum(p.numel() for p in model.parameters()), "epochs": 3}
    save_model(model, tmp_path / "hand.safetensors", trajectory=_tiny(num_joints_out=1), extra=extra)
    loaded, card = load_pretrained("hand", tmp_path)
    assert card.raw["epochs"] == 3 and card.raw["has_trajectory"] is True


# --- every lifter kind ---------------------------------------------------------------------------------------------

REFINER = {"hid_dim": 8, "num_layers": 1, "zero_init_output": False}


def _random_batch_norm(model, seed=0):
    """Give every BatchNorm layer non-trivial running statistics and affine parameters (as after training)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return model.eval()


def _tiny_rie(seed=0):
    torch.manual_seed(seed)
    return _random_batch_norm(RIELifter(RIEConfig(filter_widths=[3, 3], channels=8, latent_dim=8, mlp_channels=16)),
                              seed)


def _tiny_refined(seed=0, lifter_kind="baseline", lifter=None):
    torch.manual_seed(seed)
    config = {"lifter_kind": lifter_kind, "lifter": lifter or {"linear_size": 16}, "refiner": REFINER}
    return _random_batch_norm(build_lifter("refined", config), seed)


@pytest.fixture
def kinds(tmp_path):
    """A weights folder with a tiny RIE, a refined baseline and a refined temporal convolution."""
    d = tmp_path / "kinds"
    save_pretrained(_tiny_rie(1), "tiny-rie", d, **_fields())
    save_pretrained(_tiny_refined(2), "tiny-refined", d, **_fields())
    save_pretrained(_tiny_refined(3, "temporal_conv", {"channels": 8, "filter_widths": [3, 3]}), "tiny-refined-tc", d,
                    **_fields())
    return d


def test_every_kind_saves_lists_and_loads_bit_identically(kinds):
    cards = {c.name: c for c in list_pretrained(kinds)}
    assert sorted(cards) == ["tiny-refined", "tiny-refined-tc", "tiny-rie"]
    rie, refined, refined_tc = cards["tiny-rie"], cards["tiny-refined"], cards["tiny-refined-tc"]
    assert rie.kind == "rie" and rie.raw["kind"] == "rie" and rie.receptive_field == 9
    assert rie.raw["architecture"] == [3, 3] and rie.raw["channels"] == 8
    # a refined model: single-frame baseline first stage, no temporal convolutions to describe
    assert refined.kind == "refined" and refined.receptive_field == 1
    assert refined.raw["architecture"] is None and refined.raw["channels"] is None
    # a refined temporal convolution: the card describes its first stage
    assert refined_tc.kind == "refined" and refined_tc.receptive_field == 9
    assert refined_tc.raw["architecture"] == [3, 3] and refined_tc.raw["channels"] == 8
    assert rie.to_dict()["kind"] == "rie"

    x = torch.randn(2, 11, 17, 2)
    refined_tc_reference = _tiny_refined(3, "temporal_conv", {"channels": 8, "filter_widths": [3, 3]})
    for name, reference, cls in [("tiny-rie", _tiny_rie(1), RIELifter),
                                 ("tiny-refined", _tiny_refined(2), RefinedLifter),
                                 ("tiny-refined-tc", refined_tc_reference, RefinedLifter)]:
        model, card = load_pretrained(name, weights_dir=kinds)
        assert isinstance(model, cls) and not model.training
        assert card.parameters == sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            assert torch.equal(model(x), reference(x)), name


def test_models_table_shows_the_kind(kinds, weights, capsys):
    for name in ("tiny-rie", "tiny-refined"):
        for suffix in (".json", ".safetensors"):
            (weights / f"{name}{suffix}").write_bytes((kinds / f"{name}{suffix}").read_bytes())
    assert main(["models", "--weights-dir", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "| name | kind | input |" in out
    rows = {line.split(" | ")[0][2:]: line for line in out.splitlines() if line.startswith("| tiny-")}
    assert "| rie | h36m | 9 |" in rows["tiny-rie"] and "| refined | h36m | 1 |" in rows["tiny-refined"]
    assert "| temporal_conv | h36m | 9 |" in rows["tiny-h36m"]


def test_card_without_kind_is_temporal_conv(weights):
    card = _card_json(weights, "tiny-h36m")
    del card["kind"]
    _write_card(weights, "tiny-h36m", card)
    model, loaded = load_pretrained("tiny-h36m", weights)
    assert loaded.kind == "temporal_conv" and isinstance(model, TemporalConvLifter)
    assert "kind" not in loaded.raw and loaded.to_dict()["kind"] == "temporal_conv"


@pytest.mark.parametrize("name, field, value, words", [
    ("tiny-rie", "architecture", [3, 3, 3], "model config says [3, 3]"),
    ("tiny-rie", "channels", 256, "model config says 8"),
    ("tiny-rie", "channels", None, "positive integer"),
    ("tiny-rie", "architecture", [2, 2], "odd filter widths"),
    ("tiny-rie", "receptive_field", 27, "model config says 9"),
    ("tiny-rie", "kind", "videopose", "'temporal_conv', 'rie', 'baseline'"),
    ("tiny-rie", "config", [3, 3], "an object (a rie config)"),
    ("tiny-refined", "channels", 1024, "absent or null for a refined lifter over baseline"),
    ("tiny-refined", "architecture", [3, 3], "absent or null for a refined lifter over baseline"),
    ("tiny-refined", "receptive_field", 9, "model config says 1"),
    ("tiny-refined-tc", "architecture", [3], "model config says [3, 3]"),
])
def test_kind_dependent_card_fields(kinds, name, field, value, words):
    card = _card_json(kinds, name)
    card[field] = value
    with pytest.raises(CheckpointError) as e:
        validate_card(card, kinds / f"{name}.json")
    assert f"{name}.json: model card field {field!r}" in str(e.value) and words in str(e.value)


def test_card_config_must_fit_its_kind(kinds):
    card = {**_card_json(kinds, "tiny-rie"), "kind": "baseline"}
    with pytest.raises(CheckpointError) as e:
        validate_card(card, kinds / "tiny-rie.json")
    assert "tiny-rie.json: model card field 'config' does not describe a baseline lifter" in str(e.value)


def test_rie_card_needs_the_convolution_fields(kinds):
    card = _card_json(kinds, "tiny-rie")
    del card["architecture"]
    _write_card(kinds, "tiny-rie", card)
    with pytest.raises(CheckpointError) as e:
        list_pretrained(kinds)
    assert "tiny-rie.json: model card is missing field 'architecture' (required for a rie lifter)" in str(e.value)


def test_baseline_card_with_channels_fails_and_without_them_validates(tmp_path):
    torch.manual_seed(0)
    model = _random_batch_norm(build_lifter("baseline", {"linear_size": 16, "num_stages": 1}))
    card = save_pretrained(model, "tiny-baseline", tmp_path, **_fields())
    assert card.kind == "baseline" and card.receptive_field == 1 and card.raw["channels"] is None
    raw = _card_json(tmp_path, "tiny-baseline")
    for field in CONV_FIELDS:  # absent is as good as null
        del raw[field]
    validate_card(raw, tmp_path / "tiny-baseline.json")
    with pytest.raises(CheckpointError) as e:
        validate_card({**raw, "channels": 16}, tmp_path / "tiny-baseline.json")
    assert "tiny-baseline.json: model card field 'channels' should be absent or null for a baseline lifter" \
        in str(e.value)
    loaded, _ = load_pretrained("tiny-baseline", tmp_path)
    x = torch.randn(3, 1, 17, 2)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_refined_card_checks_the_first_stage_joints(kinds):
    """Input/output joint counts come from the registry helpers (a refined model's: its first stage's)."""
    card = _card_json(kinds, "tiny-refined")
    card["config"]["lifter"]["num_joints_in"] = 16
    with pytest.raises(CheckpointError) as e:
        validate_card(card, kinds / "tiny-refined.json")
    assert "model card field 'input_layout' is 'h36m' (17 joints) but the model config has 16" in str(e.value)


# --- CLI -----------------------------------------------------------------------------------------------------------

def test_models_table(weights, capsys):
    assert main(["models", "--weights-dir", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "tiny-coco" in out and "tiny-h36m" in out
    assert "cmu_open_gt P1 / P2 (mm)" in out and "cmu_open_noisy P1 / P2 (mm)" in out
    row = next(line for line in out.splitlines() if line.startswith("| tiny-h36m"))
    assert "| h36m |" in row and "| 9 |" in row and "61.5 / 44.2" in row and "77.8 / 55.5" in row
    coco_row = next(line for line in out.splitlines() if line.startswith("| tiny-coco"))
    assert "| coco |" in coco_row and "| - |" in coco_row


def test_models_json_with_env_var(weights, capsys, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(weights))
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed] == ["tiny-coco", "tiny-h36m"]
    assert listed[1]["metrics"] == METRICS and listed[1]["receptive_field"] == 9
    assert listed[1]["path"].endswith("tiny-h36m.safetensors") and listed[1]["size_mb"] > 0


def test_models_empty_folder(tmp_path, capsys):
    assert main(["models", "--weights-dir", str(tmp_path)]) == 0
    assert "no pretrained models" in capsys.readouterr().out
    assert main(["models", "--weights-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_models_bad_card_exits_2(weights, capsys):
    card = _card_json(weights, "tiny-coco")
    del card["license"]
    _write_card(weights, "tiny-coco", card)
    assert main(["models", "--weights-dir", str(weights)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "tiny-coco.json" in err and "'license'" in err


def test_evaluate_unknown_model_exits_2_naming_available(weights, capsys, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(weights))
    assert main(["evaluate", "--model", "nope", "--data-dir", str(weights)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "'nope'" in err and "tiny-coco, tiny-h36m" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [[], ["--checkpoint", "m.safetensors", "--model", "tiny-h36m"]])
def test_evaluate_needs_exactly_one_of_checkpoint_and_model(argv, capsys):
    assert main(["evaluate", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "exactly one of --checkpoint PATH and --model NAME" in err


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from poselift.data.synthetic import SyntheticConfig, generate_synthetic_dataset
    out = tmp_path_factory.mktemp("synthetic")
    generate_synthetic_dataset(out, SyntheticConfig(subjects=("S1",), seconds_per_action=0.5, cameras_per_subject=1),
                               progress=False)
    return out


def test_evaluate_with_a_model(weights, synthetic, capsys, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(weights))
    data = ["--data-dir", str(synthetic), "--dataset", "synthetic", "--subjects-test", "S1", "--no-progress"]
    assert main(["evaluate", "--model", "tiny-h36m", *data, "--json"]) == 0
    by_model = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--checkpoint", str(weights / "tiny-h36m.safetensors"), *data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == by_model and math.isfinite(by_model["mpjpe"])
    # a COCO-input model on Human3.6M keypoints: refused, naming both layouts
    assert main(["evaluate", "--model", "tiny-coco", *data]) == 2
    err = capsys.readouterr().err
    assert "model tiny-coco: model takes coco keypoints" in err and "h36m" in err


# --- held-out check on the CMU data ----------------------------------------------------------------------------------

needs_cmu = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent")


@needs_cmu
@pytest.mark.parametrize("layout, noise", [("h36m", "gt"), ("coco", "noisy"), ("coco", "gt")])
def test_evaluate_heldout_on_a_tiny_model(tmp_path, layout, noise):
    clips = ["cmu-131/131_02.bvh", "cmu-mb/09_02.bvh"]
    card = save_pretrained(_tiny(), "tiny", tmp_path / "w", **_fields(input_layout=layout), heldout_clips=clips,
                           heldout_noise=noise, heldout_check={"mpjpe": 100.0, "margin": 0.1})
    report = evaluate_heldout(card, SHARED_DATA, tmp_path / "data")
    assert set(report.per_action) == {"131_02", "09_02"}
    assert math.isfinite(report.mean.mpjpe) and report.mean.mpjpe > 0
    expected_file = {"h36m": "data_2d_cmu_gt.npz"}.get(layout, f"data_2d_cmu_coco_{noise}.npz")
    assert (tmp_path / "data" / expected_file).is_file()


@needs_cmu
def test_shipped_models_meet_their_cards(tmp_path):
    """Every model shipped in the package re-measures within its card's held-out P1 (plus margin)."""
    cards = [read_card(p) for p in sorted(PACKAGE_WEIGHTS_DIR.glob("*.json"))]
    if not cards:
        pytest.skip(f"no pretrained models shipped in {PACKAGE_WEIGHTS_DIR} yet")
    failures = []
    for card in cards:
        if "heldout_check" not in card.raw:
            failures.append(f"{card.name}: the card has no heldout_clips/heldout_noise/heldout_check")
            continue
        report = evaluate_heldout(card, SHARED_DATA, tmp_path / card.name)
        check = card.raw["heldout_check"]
        limit = check["mpjpe"] * (1 + check["margin"])
        if not report.mean.mpjpe <= limit:
            failures.append(f"{card.name}: held-out P1 {report.mean.mpjpe:.2f} mm > {limit:.2f} mm "
                            f"(card {check['mpjpe']} mm + {check['margin']:.0%})")
    assert not failures, "\n".join(failures)
