"""BDNF as of a landmark: latest, first, change, trailing slope, count."""

import polars as pl
from polars.testing import assert_frame_equal

from features.asof import DAY, with_record_day
from features.bdnf import FEATURES, add_bdnf_features
from features.config import BdnfConfig
from tests.features.conftest import day, grid, typed

NULL = None


def test_bdnf_features_by_hand():
    people, lm = grid({"a": [0, 7, 10, 35, 40, 100], "b": [0]})
    samples = typed(
        "bdnf",
        {
            "patient_id": ["a", "a", "a", "a"],
            "sample_date": [day(0), day(10), day(10), day(40)],
            "bdnf_ng_ml": [20.0, 18.0, 16.0, 14.0],
        },
    )
    dated = with_record_day(samples.lazy(), people, "sample_date")
    got = add_bdnf_features(lm, dated, BdnfConfig(slope_window_days=31)).select("patient_id", DAY, *FEATURES).collect()
    # slope at day 10 over (0, 20), (10, 18), (10, 16): -0.3 per day -> -9 per 30 days
    expected = pl.DataFrame(
        {
            "patient_id": ["a"] * 6 + ["b"],
            DAY: [0, 7, 10, 35, 40, 100, 0],
            "bdnf_latest": [20.0, 20.0, 17.0, 17.0, 14.0, 14.0, NULL],
            "bdnf_latest_age_days": [0.0, 7.0, 0.0, 25.0, 0.0, 60.0, NULL],
            "bdnf_first": [20.0, 20.0, 20.0, 20.0, 20.0, 20.0, NULL],
            "bdnf_change_since_first": [0.0, 0.0, -3.0, -3.0, -6.0, -6.0, NULL],
            "bdnf_change_since_first_pct": [0.0, 0.0, -15.0, -15.0, -30.0, -30.0, NULL],
            # window of 31 days: t=35 sees only day 10 (one day: no slope); t=40 sees (10, 18),
            # (10, 16), (40, 14): -60 / 600 per day -> -3 per 30 days; t=100 sees none
            "bdnf_slope_30d": [NULL, NULL, -9.0, NULL, -3.0, NULL, NULL],
            "bdnf_n_samples": [1.0, 1.0, 3.0, 3.0, 4.0, 4.0, 0.0],
        }
    )
    assert_frame_equal(got, expected, check_dtypes=False, rel_tol=1e-12)


def test_no_table_gives_null_columns():
    _, lm = grid({"a": [0, 7]})
    got = add_bdnf_features(lm, None, BdnfConfig(slope_window_days=30)).collect()
    assert all(got[c].null_count() == 2 and got.schema[c] == pl.Float64 for c in FEATURES)
