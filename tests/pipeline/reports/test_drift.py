import json
import math

import numpy as np
import polars as pl
import pytest

from pipeline.reports.analysis import (
    DEFAULT_RANGES,
    drift_table,
    match_ranges,
    out_of_range,
    phase_profiles,
    psi,
    training_profile,
)
from pipeline.reports.drift import day_weights, psi_noise, under_follow_up


@pytest.fixture
def cohort() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    n = 5000
    rmssd = rng.lognormal(3.6, 0.5, n)
    bdnf = rng.lognormal(3.0, 0.4, n)
    bdnf[rng.random(n) < 0.25] = np.nan
    flag = (rng.random(n) < 0.3).astype(float)
    return pl.DataFrame({"hrv_rmssd_mean_28d": rmssd, "bdnf_last_ng_ml": bdnf, "flag": flag})


def test_psi_is_zero_for_the_training_distribution_itself(cohort):
    profile = training_profile(cohort, cohort.columns)
    for name, entry in profile.items():
        assert psi(entry["edges"], entry["proportions"], cohort[name].to_numpy()) == pytest.approx(
            0, abs=1e-12
        )


def test_psi_is_large_for_a_shifted_distribution_and_small_for_a_resample(cohort):
    entry = training_profile(cohort, ["hrv_rmssd_mean_28d"])["hrv_rmssd_mean_28d"]
    rng = np.random.default_rng(12)
    assert psi(entry["edges"], entry["proportions"], rng.lognormal(3.6, 0.5, 4000)) < 0.02
    assert psi(entry["edges"], entry["proportions"], rng.lognormal(4.2, 0.5, 4000)) > 0.25


def test_psi_ignores_missing_values_and_is_nan_without_values():
    assert psi([0.0], [0.5, 0.5], [-1.0, np.nan, 1.0]) == pytest.approx(0.0)
    assert math.isnan(psi([0.0], [0.5, 0.5], [np.nan]))
    with pytest.raises(ValueError, match="proportions"):
        psi([0.0, 1.0], [0.5, 0.5], [0.3])


def test_training_profile_is_json_ready_with_open_ended_quantile_bins(cohort):
    profile = training_profile(cohort, cohort.columns, bins=10)
    json.dumps(profile)
    bdnf = profile["bdnf_last_ng_ml"]
    assert len(bdnf["edges"]) == 9 and len(bdnf["proportions"]) == 10
    assert sum(bdnf["proportions"]) == pytest.approx(1.0)
    assert all(p == pytest.approx(0.1, abs=0.01) for p in bdnf["proportions"])
    assert bdnf["missing_fraction"] == pytest.approx(0.25, abs=0.02)
    assert bdnf["min"] < bdnf["edges"][0] and bdnf["edges"][-1] < bdnf["max"]
    flag = profile["flag"]  # ties merge cut points: 0/1 values give few bins
    assert len(flag["proportions"]) == len(flag["edges"]) + 1 <= 3
    assert sum(flag["proportions"]) == pytest.approx(1.0)


def test_training_profile_of_an_all_missing_feature():
    profile = training_profile(pl.DataFrame({"x": [None, None]}, schema={"x": pl.Float64}), ["x"])
    assert profile["x"] == {
        "edges": [],
        "proportions": [],
        "min": None,
        "max": None,
        "missing_fraction": 1.0,
    }


def _phased(frame: pl.DataFrame, rows_per_patient: int = 5) -> pl.DataFrame:
    n = frame.height
    return frame.with_columns(
        pl.Series("phase", ["early" if i % 2 else "consolidation" for i in range(n)]),
        pl.Series("patient_id", [f"P{i // (2 * rows_per_patient)}-{i % 2}" for i in range(n)]),
    )


def test_drift_is_per_phase_with_value_shift_and_missingness_apart(cohort):
    train = _phased(cohort)
    profile = phase_profiles(train, ["hrv_rmssd_mean_28d", "bdnf_last_ng_ml", "flag"])
    assert set(profile["by_phase"]) == {"early", "consolidation"}
    assert profile["by_phase"]["early"]["patients"] == 500 and profile["by_phase"]["early"]["rows"] == 2500
    json.dumps(profile)
    rng = np.random.default_rng(5)
    now = pl.DataFrame(
        {
            "phase": ["early"] * 400 + ["consolidation"] * 400,
            "hrv_rmssd_mean_28d": np.r_[rng.lognormal(4.3, 0.5, 400), rng.lognormal(3.6, 0.5, 400)],
            "bdnf_last_ng_ml": [None] * 400 + rng.lognormal(3.0, 0.4, 400).tolist(),
        },
    )
    table = drift_table(profile, now)
    assert table.columns[:6] == ["phase", "feature", "psi", "psi_noise", "missing_share_train", "missing_share_scored"]
    by = {(r["phase"], r["feature"]): r for r in table.to_dicts()}
    assert by[("early", "hrv_rmssd_mean_28d")]["flag"] == "major"  # shifted only in early
    assert by[("consolidation", "hrv_rmssd_mean_28d")]["flag"] == "none"
    bdnf = by[("early", "bdnf_last_ng_ml")]
    assert bdnf["missing_share_scored"] == 1.0 and bdnf["missing_shift"] and bdnf["psi"] is None
    assert bdnf["flag"] == "none" and "too few values" in bdnf["note"]
    assert by[("early", "flag")]["note"] == "absent from the scored data"
    assert table.row(0, named=True)["flag"] == "major"  # most severe first
    assert table["flag"].is_in(["none", "minor", "major"]).all()


def test_a_few_values_are_not_judged_however_large_their_psi(cohort):
    profile = phase_profiles(_phased(cohort), ["hrv_rmssd_mean_28d"])
    now = pl.DataFrame({"phase": ["early"] * 12, "hrv_rmssd_mean_28d": np.full(12, 500.0)})
    row = drift_table(profile, now, min_n=100).filter(pl.col("phase") == "early").row(0, named=True)
    assert row["flag"] == "none" and row["psi"] is None and "too few values" in row["note"]
    judged = drift_table(profile, now, min_n=10).filter(pl.col("phase") == "early").row(0, named=True)
    assert judged["psi"] > 3 and judged["flag"] == "major"


def test_resamples_of_the_training_rows_raise_no_flag(cohort):
    train = _phased(cohort)
    features = ["hrv_rmssd_mean_28d", "bdnf_last_ng_ml", "flag"]
    profile = phase_profiles(train, features)
    flags = 0
    for seed in range(5):
        now = train.sample(300, seed=seed)
        flags += drift_table(profile, now)["flag"].is_in(["minor", "major"]).sum()
    assert flags == 0


def _visits(rng: np.random.Generator, day: np.ndarray, level_shift: float = 0.0, missing: float | None = None):
    """One process at any day since intake: the days since the last visit grow with the day (visits
    thin out), a level that does not depend on the day, and a questionnaire more often missing early."""
    n = len(day)
    age = rng.uniform(0, 3 + day / 4.0)
    score = rng.normal(10 + 3 * level_shift, 3, n)
    p_missing = np.full(n, missing) if missing is not None else 0.6 - day / 200.0
    score[rng.random(n) < p_missing] = np.nan
    return pl.DataFrame({"phase": ["early"] * n, "day": day, "visit_age_days": age,
                         "level": rng.normal(level_shift, 1, n), "questionnaire": score})


@pytest.fixture
def weekly_rows() -> pl.DataFrame:
    """1,000 patients' weekly landmark rows on days 14..84 of one phase."""
    rng = np.random.default_rng(3)
    days = np.tile(np.arange(14, 85, 7), 1000)
    return _visits(rng, days).with_columns(pl.Series("patient_id", np.repeat(np.arange(1000), 11).astype(str)))


def _scored_early_in_phase(seed: int, **shift) -> pl.DataFrame:
    """600 patients on one calendar date, all in the first weeks of the phase (recent intakes)."""
    rng = np.random.default_rng(seed)
    return _visits(rng, rng.integers(14, 40, 600), **shift)


FEATURES = ["visit_age_days", "level", "questionnaire"]


def test_day_weights_take_each_scored_day_to_the_next_landmark():
    weights = day_weights([14, 21, 28], np.array([13, 14, 15, 21, 22, 100]))
    assert weights.tolist() == pytest.approx([2 / 6, 2 / 6, 2 / 6])


def test_the_profile_keeps_counts_per_landmark_day(weekly_rows):
    part = phase_profiles(weekly_rows, FEATURES)["by_phase"]["early"]
    assert part["days"] == list(range(14, 85, 7)) and part["day_rows"] == [1000] * 11
    entry = part["features"]["questionnaire"]
    counts = np.asarray(entry["day_counts"])
    assert counts.shape == (11, len(entry["proportions"]))
    assert counts.sum() == round(weekly_rows.height * (1 - entry["missing_fraction"]))
    assert np.allclose(counts.sum(axis=0) / counts.sum(), entry["proportions"])
    json.dumps(part)


def test_the_same_process_scored_early_in_the_phase_raises_no_flag_once_weighted_to_its_days(weekly_rows):
    profile = phase_profiles(weekly_rows, FEATURES)
    scored = _scored_early_in_phase(7)
    pooled = drift_table(profile, scored.drop("day"))  # as before: every day of the phase alike
    assert pooled.filter(pl.col("feature") == "visit_age_days")["flag"].item() != "none"
    assert pooled.filter(pl.col("feature") == "questionnaire")["missing_shift"].item()
    weighted = drift_table(profile, scored)
    assert (weighted["flag"] == "none").all() and not weighted["missing_shift"].any(), weighted
    assert weighted["psi"].is_not_null().all()  # judged, not skipped
    age = weighted.filter(pl.col("feature") == "visit_age_days").row(0, named=True)
    assert age["n_train"] < 1000  # the weighted rows' effective size, in patients


def test_a_genuine_shift_at_the_same_days_is_still_flagged(weekly_rows):
    profile = phase_profiles(weekly_rows, FEATURES)
    by = {r["feature"]: r for r in drift_table(profile, _scored_early_in_phase(8, level_shift=1.0)).to_dicts()}
    assert by["level"]["flag"] == "major" and by["questionnaire"]["flag"] != "none"
    assert by["visit_age_days"]["flag"] == "none"
    moved = {r["feature"]: r for r in drift_table(profile, _scored_early_in_phase(9, missing=0.05)).to_dicts()}
    assert moved["questionnaire"]["missing_shift"] and moved["questionnaire"]["missing_share_scored"] < 0.1
    assert not moved["level"]["missing_shift"]


def test_under_follow_up_keeps_patients_followed_on_the_date():
    from datetime import date

    scored = pl.DataFrame({"patient_id": ["a", "b", "c", "d"], "x": [1.0, 2.0, 3.0, 4.0]})
    outcomes = pl.DataFrame({"patient_id": ["a", "b", "c"],
                             "last_followup_date": [date(2024, 8, 31), date(2024, 9, 1), date(2024, 9, 2)]})
    kept = under_follow_up(scored, outcomes, date(2024, 9, 1))
    # b was seen on the day scored (a registry scored on its extract date): still in care, as score counts it
    assert kept["patient_id"].to_list() == ["b", "c", "d"] and kept.columns == scored.columns  # d: unknown
    assert under_follow_up(scored, None, date(2024, 9, 1)).equals(scored)


def test_psi_noise_shrinks_with_the_sample_sizes():
    assert psi_noise(10, 100, 100) > psi_noise(10, 1000, 1000) > 0
    assert psi_noise(10, 0, 50) == math.inf


def test_match_ranges_prefers_exact_names_and_skips_derived_features():
    columns = [
        "bdnf_last_ng_ml",
        "bdnf_slope_ng_ml_per_month",
        "bdnf_days_since_last",
        "hrv_rmssd_mean_28d",
        "hrv_rmssd_pct_of_baseline",
        "hrv_sdnn_mean_28d",
        "hrv_mean_hr_bpm",
        "phq9_last",
    ]
    matched = match_ranges(columns)
    assert matched == {
        "bdnf_last_ng_ml": (1.0, 100.0),
        "hrv_rmssd_mean_28d": (2.0, 250.0),
        "hrv_sdnn_mean_28d": (5.0, 300.0),
        "hrv_mean_hr_bpm": (30.0, 200.0),
    }
    custom = match_ranges(columns, {**DEFAULT_RANGES, "bdnf_days_since_last": (0, 730)})
    assert custom["bdnf_days_since_last"] == (0, 730)


def test_out_of_range_counts_values_below_and_above():
    frame = pl.DataFrame(
        {
            "bdnf_last_ng_ml": [0.5, 20.0, 150.0, None, float("nan")],
            "hrv_mean_hr_bpm": [25.0, 60.0, 70.0, 210.0, 80.0],
            "phq9_last": [0.0, 1.0, 2.0, 3.0, 99.0],
        }
    )
    table = out_of_range(frame).sort("feature")
    assert table.select("feature", "n_values", "n_below", "n_above", "n_out").rows() == [
        ("bdnf_last_ng_ml", 3, 1, 1, 2),
        ("hrv_mean_hr_bpm", 5, 1, 1, 2),
    ]
    assert table["fraction_out"].to_list() == pytest.approx([2 / 3, 2 / 5])


def test_default_ranges_pick_the_level_features_of_the_feature_builders():
    # names as features/bdnf.py and features/hrv.py build them
    bdnf = [
        "bdnf_latest",
        "bdnf_latest_age_days",
        "bdnf_first",
        "bdnf_change_since_first",
        "bdnf_change_since_first_pct",
        "bdnf_slope_30d",
        "bdnf_n_samples",
    ]
    stats = [
        "latest",
        "window_mean",
        "window_slope_30d",
        "change_from_baseline",
        "change_from_baseline_pct",
    ]
    hrv = [f"hrv_{m}_{s}" for m in ("rmssd", "sdnn", "lf_hf", "mean_hr", "pnn50") for s in stats]
    matched = match_ranges([*bdnf, *hrv, "hrv_latest_age_days", "hrv_recordings_per_week"])
    assert sorted(matched) == sorted(
        [
            "bdnf_latest",
            "bdnf_first",
            "hrv_rmssd_latest",
            "hrv_rmssd_window_mean",
            "hrv_sdnn_latest",
            "hrv_sdnn_window_mean",
            "hrv_mean_hr_latest",
            "hrv_mean_hr_window_mean",
        ]
    )
