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
    psi,
    training_profile,
)


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


def test_drift_table_statuses(cohort):
    profile = training_profile(cohort, cohort.columns)
    rng = np.random.default_rng(5)
    now = pl.DataFrame(
        {
            "hrv_rmssd_mean_28d": rng.lognormal(4.3, 0.5, 800),  # major shift
            "bdnf_last_ng_ml": [None] * 800,  # no values now
        },
        schema={"hrv_rmssd_mean_28d": pl.Float64, "bdnf_last_ng_ml": pl.Float64},
    )
    table = drift_table(profile, now)
    assert table.columns == [
        "feature",
        "psi",
        "missing_fraction_train",
        "missing_fraction_now",
        "status",
    ]
    status = dict(zip(table["feature"], table["status"], strict=True))
    assert status == {
        "hrv_rmssd_mean_28d": "major shift",
        "bdnf_last_ng_ml": "no values now",
        "flag": "absent now",
    }
    row = table.filter(pl.col("feature") == "bdnf_last_ng_ml").row(0, named=True)
    assert row["missing_fraction_now"] == 1.0 and row["psi"] is None
    same = drift_table(profile, cohort)
    assert (same["status"] == "stable").all()


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
