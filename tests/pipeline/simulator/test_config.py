"""The simulation parameters: validation, rationale comments, and key order that never matters."""

from __future__ import annotations

import re

import pytest
from polars.testing import assert_frame_equal

from pipeline.config import ConfigError
from pipeline.simulator import SimulationConfig, simulate_cohort
from pipeline.simulator.config import DEFAULT_SIMULATION_CONFIG, load_simulation_config


def test_key_order_in_the_config_does_not_change_the_cohort(config):
    data = config.model_dump()
    for section, key in (("therapy", "modalities"), ("assessments", "instruments"), ("cohort", "ethnicity_shares")):
        data[section][key] = dict(reversed(list(data[section][key].items())))
    first, second = (simulate_cohort(200, 4, c) for c in (config, SimulationConfig.model_validate(data)))
    for name, frame in first.tables.items():
        assert_frame_equal(frame, second.tables[name])


@pytest.mark.parametrize(
    "override",
    [
        "therapy:\n  modalities:\n    yoga: {share: 0.1, start_day: [0, 5], sessions: [1, 2], interval_days: 7, "
        "duration_min: [30, 60], attendance_log_odds: 1.0}\n",
        "cohort:\n  sex_shares: {female: 0.5, martian: 0.5}\n",
        "assessments:\n  instruments:\n    PHQ9: {visits: [3]}\n",
        "cohort:\n  extract_date: 2022-01-01\n",
        "cohort:\n  sex_shares: {female: -1, male: 2, other: 0, unknown: 0}\n",
        "cohort:\n  sex_shares: {female: 0.5, male: 0.2}\n",  # merged with the defaults: 0.73 in all
        "cohort:\n  extract_date: 2999-01-01\n  intake_end: 2998-06-01\n",
    ],
    ids=["unknown-modality", "unknown-sex", "visit-not-scheduled", "extract-before-intake", "negative-share",
         "shares-not-adding-up", "extract-in-the-future"],
)
def test_rejects_inconsistent_parameters(tmp_path, override):
    path = tmp_path / "override.yaml"
    path.write_text(override)
    with pytest.raises(ConfigError):
        load_simulation_config(path)


def test_every_parameter_in_simulation_yaml_has_a_rationale_comment():
    leaf = re.compile(r"^\s*(- )?[\w-]+:\s*[^\s#]|^\s*- \{")
    bare = [line for line in DEFAULT_SIMULATION_CONFIG.read_text().splitlines() if leaf.match(line) and "#" not in line]
    assert bare == []
