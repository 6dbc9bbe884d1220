"""HRV as of a landmark: latest per metric, trailing mean and trend, baseline change, adherence."""

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.asof import DAY, with_record_day
from features.config import HrvConfig
from features.hrv import add_hrv_features, feature_names, hrv_recordings
from tests.features.conftest import at, grid, typed

NULL = None
CFG = HrvConfig(window_days=14, baseline_days=7, rr_min_ms=300, rr_max_ms=2000, rr_max_change=0.2)
METRICS = ("rmssd", "sdnn", "lf_hf", "mean_hr")


def summaries():
    return typed(
        "hrv",
        {
            "patient_id": ["a"] * 5,
            "recorded_at": [at(0, 8), at(3, 8), at(3, 20), at(10, 8), at(10, 8)],
            "rmssd_ms": [40.0, 30.0, 20.0, 50.0, 30.0],
            "sdnn_ms": [50.0, 40.0, 30.0, 60.0, 40.0],
            "lf_hf": [1.0, None, None, 2.0, 4.0],
            "mean_hr_bpm": [70.0, 80.0, None, 60.0, 64.0],
        },
    )


def build(hrv=None, rr=None, metrics=METRICS, landmarks=None):
    people, lm = grid(landmarks or {"a": [0, 3, 7, 10, 20, 30], "b": [0]})
    recordings = hrv_recordings(None if hrv is None else hrv.lazy(), None if rr is None else rr.lazy(), CFG)
    dated = None if recordings is None else with_record_day(recordings, people, "recorded_at")
    return add_hrv_features(lm, dated, metrics, CFG).select("patient_id", DAY, *feature_names(metrics)).collect()


def slope(points):
    x, y = np.array(points, dtype=float).T
    return 30 * np.polyfit(x, y, 1)[0]


def test_rmssd_features_by_hand():
    got = build(summaries()).select(
        "patient_id",
        DAY,
        pl.col("^hrv_rmssd_.*$"),
        "hrv_latest_age_days",
        "hrv_recordings_per_week",
    )
    late = [(0, 40), (3, 30), (3, 20), (10, 50), (10, 30)]
    expected = pl.DataFrame(
        {
            "patient_id": ["a"] * 6 + ["b"],
            DAY: [0, 3, 7, 10, 20, 30, 0],
            # the latest recording; the two at day 10 08:00 share a time stamp: their mean
            "hrv_rmssd_latest": [40.0, 20.0, 20.0, 40.0, 40.0, 40.0, NULL],
            # window of 14 days (t-13 .. t)
            "hrv_rmssd_window_mean": [40.0, 30.0, 30.0, 34.0, 40.0, NULL, NULL],
            "hrv_rmssd_window_slope_30d": [NULL, -150.0, -150.0, slope(late), NULL, NULL, NULL],
            # baseline: days 0..6 recorded on or before t -> 40 at t=0, then 30
            "hrv_rmssd_change_from_baseline": [0.0, 0.0, 0.0, 4.0, 10.0, NULL, NULL],
            "hrv_rmssd_change_from_baseline_pct": [0.0, 0.0, 0.0, 400 / 30, 1000 / 30, NULL, NULL],
            "hrv_latest_age_days": [0.0, 0.0, 4.0, 0.0, 10.0, 20.0, NULL],
            # recordings in the window * 7 / min(14, t + 1)
            "hrv_recordings_per_week": [7.0, 21 / 4, 21 / 8, 35 / 11, 1.0, 0.0, 0.0],
        }
    )
    assert_frame_equal(got, expected, check_dtypes=False, rel_tol=1e-12)


def test_each_metric_takes_its_own_latest_value():
    got = build(summaries()).filter(pl.col(DAY).is_in([3, 10]))
    assert got["hrv_lf_hf_latest"].to_list() == [1.0, 3.0]  # day 3 has no LF/HF: day 0's
    assert got["hrv_mean_hr_latest"].to_list() == [80.0, 62.0]  # 20:00 on day 3 has no HR: 08:00's
    assert got["hrv_sdnn_latest"].to_list() == [30.0, 50.0]
    assert got["hrv_mean_hr_window_slope_30d"].to_list()[0] == pytest.approx(100.0)
    assert got["hrv_lf_hf_window_mean"].to_list() == [1.0, pytest.approx(7.0 / 3)]


def test_no_recordings_gives_null_columns():
    got = build(None)
    assert all(got[c].null_count() == got.height for c in feature_names(METRICS))


def test_raw_beats_become_recordings():
    rr = typed(
        "rr_intervals",
        {
            "patient_id": ["a"] * 4,
            "recording_id": ["r1"] * 4,
            "recorded_at": [at(5, 12)] * 4,
            "rr_ms": [800.0, 860.0, 820.0, 840.0],
        },
    )
    metrics = ("rmssd", "sdnn", "lf_hf", "mean_hr", "pnn50")
    got = build(summaries(), rr, metrics=metrics).filter(pl.col(DAY) == 7)
    diffs = np.diff([800.0, 860.0, 820.0, 840.0])
    assert got["hrv_rmssd_latest"].item() == pytest.approx(np.sqrt(np.mean(diffs**2)))
    assert got["hrv_pnn50_latest"].item() == pytest.approx(100 * 1 / 4)
    assert got["hrv_mean_hr_latest"].item() == pytest.approx(60_000 / 830)
    assert got["hrv_lf_hf_latest"].item() == 1.0  # raw beats have no LF/HF
    assert got["hrv_recordings_per_week"].item() == pytest.approx(4 * 7 / 8)


def test_raw_beats_alone():
    rr = typed(
        "rr_intervals",
        {
            "patient_id": ["a"] * 3,
            "recording_id": ["r1"] * 3,
            "recorded_at": [at(1)] * 3,
            "rr_ms": [800.0, 810.0, 790.0],
        },
    )
    got = build(None, rr, metrics=("rmssd", "sdnn", "mean_hr", "pnn50"), landmarks={"a": [0, 1]})
    assert got["hrv_rmssd_latest"].to_list() == [None, pytest.approx(np.sqrt((100 + 400) / 2))]
