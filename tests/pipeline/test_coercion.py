"""Blank text is no value, in eager frames and in lazy scans alike; dates read as documented."""

from datetime import UTC, date, datetime

import polars as pl

from features.tables import ROW
from pipeline.coercion import blank_as_null, coerce, has_values


def test_blank_text_of_any_whitespace_is_missing_and_other_text_is_kept():
    frame = pl.DataFrame({"id": ["", " ", "\t\n", " a ", None, "b"], "n": [None, None, None, None, None, 1]})
    assert blank_as_null(frame)["id"].to_list() == [None, None, None, " a ", None, "b"]
    assert blank_as_null(frame)["n"].to_list() == frame["n"].to_list()
    assert blank_as_null(frame, skip=("id",))["id"].to_list() == frame["id"].to_list()


def test_whitespace_beyond_ascii_and_columns_without_blanks():
    """The min/max shortcut must not miss a blank that sorts high (non-ASCII whitespace) or low."""
    frame = pl.DataFrame({"ideographic": ["\u3000", "P1"], "nbsp": ["x", "\u00a0 "], "tab": ["\t", "a"],
                          "accented": ["a", "é"], "plain": ["P2", "P1"], "control": ["\x1f", "a"]})
    kept = blank_as_null(frame)
    assert kept.null_count().row(0, named=True) == {"ideographic": 1, "nbsp": 1, "tab": 1, "accented": 0,
                                                     "plain": 0, "control": 0}


def test_a_record_has_values_when_any_column_but_the_row_number_holds_one():
    frame = pl.DataFrame({ROW: [1, 2, 3, 4], "id": ["  ", None, "x", ""], "n": [None, None, None, 0.0]})
    assert frame.select(has_values(frame.schema)).to_series().to_list() == [False, False, True, True]
    lazy = frame.lazy()
    assert lazy.select(has_values(lazy.collect_schema()).any()).collect().item()
    assert not frame.head(2).select(has_values(frame.schema).any()).item()
    assert not pl.DataFrame({ROW: [1]}).select(has_values({ROW: pl.Int64})).item()


def test_a_date_column_written_as_an_instant_with_a_time_zone_is_dated_in_utc_like_recorded_at():
    instant = pl.Series("intake_date", [datetime(2023, 7, 1, 0, 30)]).dt.replace_time_zone("UTC")
    frame = pl.DataFrame({"intake_date": instant.dt.convert_time_zone("America/New_York"),
                          "naive": [datetime(2023, 6, 30, 20, 30)]})
    out = frame.select(coerce("intake_date", frame.schema["intake_date"], pl.Date),
                       coerce("naive", frame.schema["naive"], pl.Date))
    assert out.row(0) == (date(2023, 7, 1), date(2023, 6, 30))  # New York's 20:30 on 30 June is 1 July in UTC
    stamp = frame.select(coerce("intake_date", frame.schema["intake_date"], pl.Datetime("us", "UTC")))
    assert stamp.item().date() == out.item(0, 0)  # the date recorded_at would get for the same instant


def test_text_with_an_offset_is_one_instant_with_one_date_in_every_column():
    text = ["2024-01-31T02:00:00+05:00", "2024-01-31 23:30Z", "2024-01-31T02:05", "2024-01-31", "2024-01-31x"]
    frame = pl.DataFrame({"day": text, "at": text})
    out = frame.select(coerce("day", pl.String, pl.Date), coerce("at", pl.String, pl.Datetime("us", "UTC")))
    assert out["day"].to_list() == [date(2024, 1, 30), date(2024, 1, 31), date(2024, 1, 31), date(2024, 1, 31), None]
    assert out["at"].dt.date().to_list() == out["day"].to_list()  # recorded_at's date for the same text
    assert out["at"][2] == datetime(2024, 1, 31, 2, 5, tzinfo=UTC)  # seconds may be left out
