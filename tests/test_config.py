import pytest

from poselift.errors import ConfigError
from poselift.train.config import ExperimentConfig, apply_overrides, config_from_dict, load_config, validate


def test_yaml_then_cli_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("data:\n  subjects_train: [S1, S5]\nmodel:\n  architecture: [3, 3, 3, 3]\ntrain:\n  epochs: 7\n  lr: 0.002\n")
    cfg = load_config(path)
    assert cfg.data.subjects_train == ["S1", "S5"] and cfg.model.architecture == [3, 3, 3, 3]
    apply_overrides(cfg, {"train.epochs": "3", "data.subjects_test": "S9,S11", "model.causal": True})
    assert cfg.train.epochs == 3 and cfg.train.lr == 0.002
    assert cfg.data.subjects_test == ["S9", "S11"] and cfg.model.causal is True
    validate(cfg)


@pytest.mark.parametrize("raw,fragment", [
    ({"train": {"epochz": 3}}, "epochz"),
    ({"trian": {}}, "trian"),
    ({"train": {"epochs": "many"}}, "train.epochs"),
    ({"train": {"epochs": 2.5}}, "integer"),
    ({"model": {"causal": "maybe"}}, "model.causal"),
])
def test_bad_values_name_the_field(raw, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config_from_dict(raw)


def test_validate_rejects_even_widths_and_unknown_override():
    cfg = ExperimentConfig()
    cfg.model.architecture = [3, 4]
    with pytest.raises(ConfigError, match="odd"):
        validate(cfg)
    with pytest.raises(ConfigError, match="unknown option"):
        apply_overrides(ExperimentConfig(), {"train.nope": 1})
