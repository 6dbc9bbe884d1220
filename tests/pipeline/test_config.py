from pathlib import Path

import pytest

from pipeline.config import ConfigError, config_as_params, deep_merge, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "override.yaml"
    path.write_text(text)
    return path


def test_defaults_load_with_the_four_phases():
    config = load_config()
    assert config.phase_names == ["acute", "early", "consolidation", "maintenance"]
    assert config.landmarks.horizon_days == 30


def test_override_merges_deeply_and_keeps_siblings(tmp_path):
    config = load_config(write(tmp_path, "model:\n  xgboost:\n    max_depth: 4\n"))
    assert config.model.xgboost.max_depth == 4
    assert config.model.xgboost.learning_rate == 0.1  # sibling default kept
    assert config.model.n_folds == 5


def test_lists_are_replaced_not_merged(tmp_path):
    text = "phases:\n  - {name: early, start_day: 0, end_day: 89}\n  - {name: late, start_day: 90, end_day: 729}\n"
    assert load_config(write(tmp_path, text)).phase_names == ["early", "late"]


def test_unknown_key_is_named_with_its_file(tmp_path):
    path = write(tmp_path, "features:\n  bdnf:\n    slope_windw_days: 30\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "features.bdnf.slope_windw_days" in str(err.value)
    assert str(path) in str(err.value)


def test_wrong_type_is_rejected_with_key(tmp_path):
    with pytest.raises(ConfigError, match="model.n_folds"):
        load_config(write(tmp_path, "model:\n  n_folds: many\n"))


@pytest.mark.parametrize(("text", "message"), [
    ("model:\n  n_folds: '3'\n", "model.n_folds"),  # a quoted number is text, not 3
    ("features:\n  bdnf:\n    enabled: 'yes'\n", "features.bdnf.enabled"),
    ("model:\n  seed: -1\n", "model.seed"),
    ("phases: []\n", "at least one phase"),
    ("landmarks:\n  horizon_days: 400\n", "every output is a 30-day risk"),
    ("scoring:\n  risk_bands: {low: 0.0, moderate: 0.10, high: 0.10}\n", "rise strictly"),
    ("model:\n  seed: 4294967296\n", "model.seed"),  # above the 32-bit seeds NumPy and scikit-learn take
    ("mlflow:\n  experiment: ''\n", "mlflow.experiment"),
])
def test_plausible_looking_values_of_the_wrong_kind_are_rejected(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))
    assert load_config(write(tmp_path, "model:\n  xgboost:\n    learning_rate: 1\n")).model.xgboost.learning_rate == 1


def test_gapped_phases_are_rejected(tmp_path):
    text = "phases:\n  - {name: a, start_day: 0, end_day: 10}\n  - {name: b, start_day: 20, end_day: 30}\n"
    with pytest.raises(ConfigError, match="contiguous"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(("name", "message"), [
    ("pooled", "reserved"),  # would overwrite the all-phase metrics
    ("acute_lo", "reserved"),  # auroc_acute_lo is the acute phase's lower bound
    ("", "letters, digits"),
    ("acute phase/1", "letters, digits"),  # names a bundle file
])
def test_phase_names_that_collide_in_metrics_or_files_are_refused(tmp_path, name, message):
    text = (f"phases:\n  - {{name: '{name}', start_day: 0, end_day: 13}}\n"
            "  - {name: rest, start_day: 14, end_day: 729}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"))


def test_deep_merge_does_not_mutate_inputs():
    base = {"a": {"b": 1}}
    deep_merge(base, {"a": {"b": 2}})
    assert base == {"a": {"b": 1}}


def test_params_are_flat_strings():
    params = config_as_params(load_config())
    assert params["model.xgboost.max_depth"] == "2"
    assert params["phases.0.name"] == "acute"


def test_risk_bands_of_the_users_own_names_replace_the_default_bands(tmp_path):
    config = load_config(write(tmp_path, "scoring:\n  risk_bands: {calm: 0.0, watch: 0.15, act: 0.4}\n"))
    assert config.scoring.risk_bands == {"calm": 0.0, "watch": 0.15, "act": 0.4}
    assert config.scoring.reasons == load_config().scoring.reasons  # the rest of the section merges
    with pytest.raises(ConfigError, match="risk_bands must start at 0.0"):
        load_config(write(tmp_path, "scoring:\n  risk_bands: {}\n"))  # no band at all, not the defaults kept


@pytest.mark.parametrize(("text", "message"), [
    ('phases:\n  - {name: "acute\\n", start_day: 0, end_day: 13}\n  - {name: b, start_day: 14, end_day: 729}\n',
     r"phase name 'acute\\n'"),
    ("phases:\n  - {name: a, start_day: 0, end_day: 13}\n  - {name: b, start_day: 14, end_day: 10}\n",
     r"phase 'b' ends on day 10, before it starts \(day 14\)"),
    ("features:\n  hrv: {rr_min_ms: 2000, rr_max_ms: 300}\n", r"'features.hrv': rr_min_ms \(2000\) must be below"),
    ("scoring:\n  reasons: 100000000\n", r"'scoring.reasons': Input should be less than or equal to 20"),
    ("scoring:\n  risk_bands: {0: 0.0, 1: 0.5}\n", r"override.yaml: 'scoring.risk_bands.0.\[key\]'"),
])
def test_impossible_settings_are_refused_naming_the_users_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(write(tmp_path, text))
    assert str(tmp_path / "override.yaml") in str(err.value) and "Value error" not in str(err.value)


def test_a_simulation_config_error_names_the_users_file(tmp_path):
    from pipeline.simulator.config import load_simulation_config

    with pytest.raises(ConfigError, match=r"override.yaml: '\(top level\)': at least one phase is needed"):
        load_simulation_config(write(tmp_path, "phases: []\n"))
