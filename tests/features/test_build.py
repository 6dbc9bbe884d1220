"""The landmark and scoring tables: columns, types, exclusions, missing tables, point in time."""

from datetime import date, timedelta
from unittest.mock import patch

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features import ENGINE, build
from features.build import SCORING_KEYS, landmark_table, scoring_table
from features.landmarks import LANDMARK_KEYS
from features.spec import fit_feature_spec
from features.tables import SPECS
from tests.features.conftest import (
    INTAKE,
    at,
    cohort,
    day,
    features_config,
    outcomes,
    patients,
    typed,
)

KEY_TYPES = {
    "patient_id": pl.String,
    "landmark_date": pl.Date,
    "day": pl.Int64,
    "phase": pl.String,
    "label": pl.Int8,
    "censored": pl.Boolean,
    "ipcw_weight": pl.Float64,
}


def training(tables, config, features=None):
    features = features or config.features
    spec = fit_feature_spec(tables, features)
    return spec, landmark_table(tables, config.phases, config.landmarks, features, spec).collect(engine=ENGINE)


def test_landmark_table_columns_and_types(config):
    spec, table = training(cohort(), config)
    assert table.columns == [*LANDMARK_KEYS, *spec.feature_names]
    assert {k: table.schema[k] for k in LANDMARK_KEYS} == KEY_TYPES
    assert all(table.schema[c] == pl.Float64 for c in spec.feature_names)
    assert table.select("patient_id", "day").is_duplicated().sum() == 0
    assert table["patient_id"].unique(maintain_order=True).to_list() == ["p1", "p2", "p3", "p4"]
    assert table.filter(pl.col("patient_id") == "p1")["day"].to_list() == [
        0,
        7,
        14,
        21,
        28,
        35,
        42,
        49,
        56,
    ]


def test_scoring_row_equals_the_landmark_row_of_the_same_date(config):
    tables = cohort()
    spec, table = training(tables, config)
    row = table.filter((pl.col("patient_id") == "p2") & (pl.col("day") == 35))
    as_of = row["landmark_date"].item()
    scored = scoring_table(tables, config.phases, config.features, spec, as_of).collect(engine=ENGINE)
    assert_frame_equal(
        scored.filter(pl.col("patient_id") == "p2").select(spec.feature_names),
        row.select(spec.feature_names),
    )


def test_scoring_exclusions(config):
    tables = cohort()
    spec = fit_feature_spec(tables, config.features)
    as_of = day(65)  # p1 relapsed on day 60; p2 is on day 55; p3 on day 45; p4 is past day 729
    scored = scoring_table(tables, config.phases, config.features, spec, as_of).collect(engine=ENGINE)
    assert scored.columns == [*SCORING_KEYS, *spec.feature_names]
    assert scored.select("patient_id", "day", "phase", "exclusion").rows() == [
        ("p1", 65, "early", "relapsed"),
        ("p2", 55, "early", None),
        ("p3", 45, "early", None),
        ("p4", 865, None, "past_last_phase"),
    ]
    early = scoring_table(tables, config.phases, config.features, spec, day(5)).collect(engine=ENGINE)
    assert early.filter(pl.col("patient_id") == "p3").select("day", "phase", "exclusion").row(0) == (
        -15,
        None,
        "not_yet_in_treatment",
    )
    assert early["as_of"].unique().to_list() == [day(5)]


def test_scoring_needs_no_outcomes(config):
    tables = cohort()
    spec = fit_feature_spec(tables, config.features)
    del tables["outcomes"]
    scored = scoring_table(tables, config.phases, config.features, spec, day(65)).collect(engine=ENGINE)
    assert scored["exclusion"].to_list() == [None, None, None, "past_last_phase"]


def test_landmark_table_needs_outcomes(config):
    tables = cohort()
    spec = fit_feature_spec(tables, config.features)
    del tables["outcomes"]
    with pytest.raises(ValueError, match="outcomes"):
        landmark_table(tables, config.phases, config.landmarks, config.features, spec)


def test_only_patients_and_outcomes(config):
    tables = {k: v for k, v in cohort().items() if k in ("patients", "outcomes")}
    spec, table = training(tables, config)
    assert spec.groups_used == ("demographic",)
    assert table.width == len(LANDMARK_KEYS) + len(spec.feature_names)


def test_disabled_groups_give_no_columns(config):
    features = features_config(config, bdnf={"enabled": False}, demographic={"enabled": False})
    spec, table = training(cohort(), config, features)
    assert not any(c.startswith("bdnf") or c.startswith("sex_") or c == "age_at_intake" for c in table.columns)
    assert "hrv_rmssd_latest" in table.columns


def test_a_table_missing_at_scoring_gives_nulls_not_zeros(config):
    tables = cohort()
    spec = fit_feature_spec(tables, config.features)
    del tables["therapy_sessions"], tables["hrv"], tables["rr_intervals"]
    scored = scoring_table(tables, config.phases, config.features, spec, day(40)).collect(engine=ENGINE)
    therapy = [c for c in spec.feature_names if c.startswith(("therapy_", "hrv_"))]
    assert scored.select(therapy).null_count().row(0) == (scored.height,) * len(therapy)


def test_a_table_the_spec_does_not_use_is_ignored(config):
    tables = cohort()
    spec = fit_feature_spec({k: v for k, v in tables.items() if k != "bdnf"}, config.features)
    table = landmark_table(tables, config.phases, config.landmarks, config.features, spec).collect(engine=ENGINE)
    assert not any(c.startswith("bdnf") for c in table.columns)


def test_extra_columns_and_unseen_levels(config):
    features = features_config(config, demographic={"extra": ["region"], "sensitive_as_predictor": True})
    tables = cohort()
    spec = fit_feature_spec(tables, features)
    tables["patients"] = tables["patients"].with_columns(
        pl.when(pl.col("patient_id") == "p2").then(pl.lit("east")).otherwise(pl.col("region")).alias("region"),
        pl.when(pl.col("patient_id") == "p2").then(pl.lit("Mixed")).otherwise(pl.col("ethnicity")).alias("ethnicity"),
    )
    scored = (
        scoring_table(tables, config.phases, features, spec, day(40))
        .collect(engine=ENGINE)
        .filter(pl.col("patient_id") == "p2")
    )
    assert (
        scored.select("region_north", "region_south", "ethnicity_asian", "ethnicity_white_british").row(0) == (0.0,) * 4
    )


def test_an_exports_own_columns_are_not_read_whatever_their_names(config):
    """Columns beyond the contract named like the builders' working columns change nothing."""
    tables = cohort()
    spec, expected = training(tables, config)
    clash = {"_pidx": 7, "day": -1, "phase": "x", "bdnf_latest": 99.0, "_now_value": 1.0, "label": 1, "_row": 3}
    with_own = {name: t.with_columns(pl.lit(v).alias(k) for k, v in clash.items()) for name, t in tables.items()}
    got = landmark_table(with_own, config.phases, config.landmarks, config.features, spec).collect(engine=ENGINE)
    assert_frame_equal(got, expected)
    scored = [scoring_table(t, config.phases, config.features, spec, day(40)).collect(engine=ENGINE)
              for t in (tables, with_own)]
    assert_frame_equal(scored[1], scored[0])


def test_a_features_config_other_than_the_specs_is_refused(config):
    spec = fit_feature_spec(cohort(), config.features)
    with pytest.raises(ValueError, match="therapy.window_days"):
        landmark_table(
            cohort(),
            config.phases,
            config.landmarks,
            features_config(config, therapy={"window_days": 7}),
            spec,
        )


def test_lazy_and_eager_inputs_agree(config):
    tables = cohort()
    spec, eager = training(tables, config)
    lazy = landmark_table(
        {k: v.lazy() for k, v in tables.items()},
        config.phases,
        config.landmarks,
        config.features,
        spec,
    )
    assert_frame_equal(lazy.collect(), eager)


# --- point in time: records dated after a date never change features as of that date ---

DATE_COLUMNS = {
    name: SPECS[name].date_column for name in ("bdnf", "hrv", "rr_intervals", "therapy_sessions", "assessments")
}


def record_day(frame: pl.DataFrame, table: str) -> pl.Expr:
    col = pl.col(DATE_COLUMNS[table])
    return col.dt.date() if frame.schema[DATE_COLUMNS[table]] != pl.Date else col


def up_to(tables: dict[str, pl.DataFrame], cutoff: date) -> dict[str, pl.DataFrame]:
    return {k: v.filter(record_day(v, k) <= cutoff) if k in DATE_COLUMNS else v for k, v in tables.items()}


small = st.integers(0, 90)


@st.composite
def random_cohorts(draw):
    n = draw(st.integers(1, 3))
    ids = [f"q{i}" for i in range(n)]
    starts = [INTAKE + timedelta(days=draw(st.integers(0, 10))) for _ in ids]
    follow = [draw(st.integers(1, 120)) for _ in ids]
    relapse = [draw(st.one_of(st.none(), st.integers(0, f))) for f in follow]

    def records(k):
        return [(i, draw(small)) for i in range(n) for _ in range(draw(st.integers(0, k)))]

    bdnf = records(4)
    hrv = records(6)
    beats = records(2)
    sessions = records(6)
    tests = records(4)
    f = st.floats(5, 80)
    tables = {
        "patients": patients(ids, starts, ethnicity=[draw(st.sampled_from(["A", "B", None])) for _ in ids]),
        "outcomes": outcomes(ids, relapse, follow, starts),
        "bdnf": typed(
            "bdnf",
            {
                "patient_id": [ids[i] for i, _ in bdnf],
                "sample_date": [day(d, starts[i]) for i, d in bdnf],
                "bdnf_ng_ml": [draw(f) for _ in bdnf],
            },
        ),
        "hrv": typed(
            "hrv",
            {
                "patient_id": [ids[i] for i, _ in hrv],
                "recorded_at": [at(d, draw(st.integers(0, 23)), start=starts[i]) for i, d in hrv],
                "rmssd_ms": [draw(f) for _ in hrv],
                "sdnn_ms": [draw(f) for _ in hrv],
                "lf_hf": [draw(st.one_of(st.none(), f)) for _ in hrv],
                "mean_hr_bpm": [draw(st.one_of(st.none(), st.floats(40, 120))) for _ in hrv],
            },
        ),
        "therapy_sessions": typed(
            "therapy_sessions",
            {
                "patient_id": [ids[i] for i, _ in sessions],
                "session_date": [day(d, starts[i]) for i, d in sessions],
                "modality": [draw(st.sampled_from(["CBT", "MBI", "EMDR", "group"])) for _ in sessions],
                "attended": [draw(st.booleans()) for _ in sessions],
                "duration_min": [draw(st.one_of(st.none(), st.just(50.0))) for _ in sessions],
            },
        ),
        "assessments": typed(
            "assessments",
            {
                "patient_id": [ids[i] for i, _ in tests],
                "assessed_on": [day(d, starts[i]) for i, d in tests],
                "instrument": [draw(st.sampled_from(["PHQ9", "GAD7"])) for _ in tests],
                "score": [float(draw(st.integers(0, 27))) for _ in tests],
            },
        ),
    }
    rr = {"patient_id": [], "recording_id": [], "recorded_at": [], "rr_ms": []}
    for k, (i, d) in enumerate(beats):
        values = draw(st.lists(st.floats(250, 2000), min_size=2, max_size=12))
        rr["patient_id"] += [ids[i]] * len(values)
        rr["recording_id"] += [f"r{k}"] * len(values)
        rr["recorded_at"] += [at(d, 12, start=starts[i])] * len(values)
        rr["rr_ms"] += values
    tables["rr_intervals"] = typed("rr_intervals", rr)
    cutoff = INTAKE + timedelta(days=draw(st.integers(0, 100)))
    return tables, cutoff


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(random_cohorts())
def test_records_after_a_date_never_change_features_as_of_it(config, example):
    tables, cutoff = example
    spec = fit_feature_spec(tables, config.features)  # one spec for both, as at scoring
    # The full cohort and its copy without later records side by side, so one build serves both;
    # each copy has the same patients and outcomes, so the censoring weights are those of either.
    both = side_by_side(tables, up_to(tables, cutoff))
    landmarks = landmark_table(both, config.phases, config.landmarks, config.features, spec).filter(
        pl.col("landmark_date") <= cutoff
    )
    scored = scoring_table(both, config.phases, config.features, spec, cutoff)
    for frame in pl.collect_all([landmarks, scored], engine=ENGINE):
        full, cut = (
            frame.filter(pl.col("patient_id").str.starts_with(tag)).with_columns(
                pl.col("patient_id").str.strip_prefix(tag)
            )
            for tag in ("full:", "cut:")
        )
        assert 2 * full.height == frame.height  # every row belongs to one copy or the other
        assert_frame_equal(full, cut)


def side_by_side(full: dict[str, pl.DataFrame], cut: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """One cohort holding both versions, patient ids tagged `full:` and `cut:`."""

    def tagged(tables: dict[str, pl.DataFrame], tag: str) -> dict[str, pl.DataFrame]:
        return {k: v.with_columns((pl.lit(tag) + pl.col("patient_id")).alias("patient_id")) for k, v in tables.items()}

    a, b = tagged(full, "full:"), tagged(cut, "cut:")
    return {k: pl.concat([a[k], b[k]]) for k in full}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_cohorts())
def test_dropping_later_records_and_excluded_patients_leaves_the_scored_rows_bit_for_bit(config, example):
    tables, cutoff = example
    spec = fit_feature_spec(tables, config.features)
    fast = scoring_table(tables, config.phases, config.features, spec, cutoff, only_at_risk=True).collect(engine=ENGINE)
    with patch.object(build, "records_up_to", lambda frames, as_of: frames):  # every record, as before
        full = scoring_table(tables, config.phases, config.features, spec, cutoff).collect(engine=ENGINE)
    assert_frame_equal(fast.select(SCORING_KEYS), full.select(SCORING_KEYS))
    at_risk = pl.col("exclusion").is_null()
    assert_frame_equal(fast.filter(at_risk), full.filter(at_risk), check_exact=True)
    excluded = fast.filter(~at_risk).select(spec.feature_names)
    assert excluded.null_count().sum_horizontal().sum() == excluded.height * excluded.width


def test_records_up_to_keeps_the_as_of_day_and_whole_recordings():
    cutoff = day(5)
    tables = {
        "patients": patients(["p1"]).lazy(),
        "outcomes": outcomes(["p1"], [9], [9]).lazy(),
        "bdnf": typed("bdnf", {"patient_id": ["p1"] * 3, "sample_date": [day(5), day(6), None],
                               "bdnf_ng_ml": [1.0, 2.0, 3.0]}).lazy(),
        "hrv": typed("hrv", {"patient_id": ["p1"] * 2, "recorded_at": [at(5, 23, 59), at(6, 0, 0)],
                             "rmssd_ms": [1.0, 2.0], "sdnn_ms": [1.0, 2.0]}).lazy(),
        "rr_intervals": typed("rr_intervals", {
            "patient_id": ["p1"] * 4, "recording_id": ["a", "a", "b", "b"],
            "recorded_at": [at(5, 23, 59), at(6, 0, 1), at(6, 8), at(6, 9)], "rr_ms": [800.0, 810.0, 820.0, 830.0],
        }).lazy(),
    }
    kept = {name: frame.collect() for name, frame in build.records_up_to(tables, cutoff).items()}
    assert kept["bdnf"]["bdnf_ng_ml"].to_list() == [1.0, 3.0]  # the as-of day and an undated record stay
    assert kept["hrv"]["rmssd_ms"].to_list() == [1.0]  # 23:59 UTC on the day stays, midnight after goes
    assert kept["rr_intervals"]["rr_ms"].to_list() == [800.0, 810.0]  # recording a whole, by its first beat
    assert kept["outcomes"].height == kept["patients"].height == 1  # never filtered by date
