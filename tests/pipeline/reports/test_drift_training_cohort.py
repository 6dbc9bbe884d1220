"""Drift of a simulated training cohort against itself, scored on one calendar date as the audit does:
its training profile from the landmark table, its scoring table as of a date inside follow-up, the
patients still followed then. 2,000 patients are enough to show the problem: the unweighted profile
of every scored patient raised 7 value flags and 14 missingness changes on this cohort."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from features import ENGINE
from features.build import landmark_table, scoring_table
from features.spec import fit_feature_spec
from pipeline import io
from pipeline.config import load_config
from pipeline.reports.drift import drift_table, phase_profiles, under_follow_up
from pipeline.simulator import load_simulation_config, simulate_cohort

pytestmark = pytest.mark.slow
AS_OF = date(2024, 9, 1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    data = tmp_path_factory.mktemp("drift") / "data"
    io.write_tables(simulate_cohort(2000, 1, load_simulation_config(None)).tables, data)
    validated, _ = io.load_tables(data, required=("patients", "outcomes"))
    tables = io.drop_row_index(validated.tables)
    config = load_config()
    spec = fit_feature_spec(tables, config.features)
    landmarks = landmark_table(tables, config.phases, config.landmarks, config.features, spec).collect(engine=ENGINE)
    scored = scoring_table(tables, config.phases, config.features, spec, AS_OF).collect(engine=ENGINE)
    return tables, phase_profiles(landmarks, spec.feature_names), scored.filter(pl.col("exclusion").is_null())


def test_scoring_the_training_cohort_raises_at_most_one_flag(cohort):
    tables, profile, scored = cohort
    followed = under_follow_up(scored, tables["outcomes"], AS_OF)
    assert 0 < followed.height < scored.height  # some scored patients had left follow-up by then
    table = drift_table(profile, followed)
    flagged = table.filter(pl.col("flag") != "none").select("phase", "feature", "psi", "psi_noise")
    assert flagged.height <= 1, flagged
    assert table["missing_shift"].sum() <= 1, table.filter(pl.col("missing_shift"))
    assert table["psi"].is_not_null().sum() > 150  # judged, not skipped for want of values


def test_a_shifted_feature_and_a_missingness_change_in_that_cohort_are_flagged(cohort):
    tables, profile, scored = cohort
    followed = under_follow_up(scored, tables["outcomes"], AS_OF)
    shifted = followed.with_columns(
        pl.col("therapy_attendance_rate") * 0.5,
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(None).otherwise(pl.col("bdnf_latest")).alias("bdnf_latest"),
    )
    table = drift_table(profile, shifted)
    attendance = table.filter((pl.col("feature") == "therapy_attendance_rate") & pl.col("psi").is_not_null())
    assert (attendance["flag"] != "none").any(), attendance
    bdnf = table.filter(pl.col("feature") == "bdnf_latest")
    assert bdnf["missing_shift"].any(), bdnf
