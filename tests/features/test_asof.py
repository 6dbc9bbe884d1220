"""The shared as-of machinery: last state on or before a day, windows, least-squares slope."""

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.asof import PIDX, as_of, in_window, running_totals, slope_per_30_days


def landmarks(days_by_patient):
    pidx = [p for p, days in days_by_patient.items() for _ in days]
    day = [d for days in days_by_patient.values() for d in days]
    return pl.LazyFrame({PIDX: pl.Series(pidx, dtype=pl.UInt32), "day": pl.Series(day, dtype=pl.Int64)})


def state():
    daily = pl.LazyFrame(
        {
            PIDX: pl.Series([0, 0, 0, 1], dtype=pl.UInt32),
            "day": pl.Series([2, 5, 9, 0], dtype=pl.Int64),
            "n": [1, 2, 1, 4],
            "v": [10.0, None, 30.0, 5.0],
        }
    )
    return running_totals(daily, ["n"], latest=["v"])


def test_running_totals_are_per_patient():
    got = state().collect()
    assert got["n"].to_list() == [1, 3, 4, 4]
    assert got["v"].to_list() == [10.0, 10.0, 30.0, 5.0]


def test_as_of_takes_the_last_state_on_or_before_the_day_and_never_another_patients():
    lm = landmarks({0: [0, 2, 4, 5, 9, 20], 1: [0, 3], 2: [7]})
    got = as_of(lm, state(), ["n", "v"], prefix="now_").collect()
    assert got["now_n"].to_list() == [None, 1, 1, 3, 4, 4, 4, 4, None]
    assert got["now_v"].to_list() == [None, 10.0, 10.0, 10.0, 30.0, 30.0, 5.0, 5.0, None]


def test_window_is_the_difference_of_two_states():
    lm = landmarks({0: [5, 9, 12]})
    frame = as_of(lm, state(), ["n"], prefix="_now_")
    frame = as_of(frame, state(), ["n"], prefix="_then_", lag_days=4)  # days t-3 .. t
    got = frame.select(in_window("n").alias("w")).collect()
    # t=5: days 2..5 -> 1 + 2; t=9: days 6..9 -> 1; t=12: days 9..12 -> 1
    assert got["w"].to_list() == [3, 1, 1]


def test_as_of_keeps_the_last_row_of_a_day():
    daily = pl.LazyFrame({PIDX: pl.Series([0, 0, 0], dtype=pl.UInt32), "day": [1, 1, 3], "k": [1, 2, 3]})
    got = as_of(landmarks({0: [1, 2]}), daily.with_columns(pl.col("day").cast(pl.Int64)), ["k"], prefix="x_").collect()
    assert got["x_k"].to_list() == [2, 2]


@pytest.mark.parametrize("seed", range(5))
def test_slope_matches_numpy_least_squares(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.integers(0, 700, 12))
    y = rng.normal(30, 5, 12)
    sums = pl.DataFrame(
        {
            "n": [12],
            "sx": [int(x.sum())],
            "sy": [y.sum()],
            "sxx": [int((x * x).sum())],
            "sxy": [(x * y).sum()],
        }
    )
    got = sums.select(slope_per_30_days(*(pl.col(c) for c in ("n", "sx", "sy", "sxx", "sxy"))))[:, 0].item()
    assert got == pytest.approx(30 * np.polyfit(x, y, 1)[0], rel=1e-9)


def test_slope_needs_two_distinct_days():
    sums = pl.DataFrame(
        {
            "n": [0, 1, 2],
            "sx": [0, 5, 10],
            "sy": [0.0, 1.0, 3.0],
            "sxx": [0, 25, 50],
            "sxy": [0.0, 5.0, 15.0],
        }
    )
    got = sums.select(slope_per_30_days(*(pl.col(c) for c in ("n", "sx", "sy", "sxx", "sxy"))).alias("s"))
    assert_frame_equal(got, pl.DataFrame({"s": [None, None, None]}, schema={"s": pl.Float64}))
