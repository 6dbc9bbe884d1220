"""A cohort with nothing to learn from is refused before anything is fitted or registered."""

import sqlite3
from contextlib import closing
from datetime import date

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.io import drop_row_index, write_tables
from tests.pipeline.cli.conftest import write_config
from tests.pipeline.test_contract import tables


def _train(folder, outcomes: dict) -> tuple:
    valid = drop_row_index(tables())
    valid["outcomes"] = valid["outcomes"].with_columns(**{k: pl.Series(v, dtype=pl.Date) for k, v in outcomes.items()})
    write_tables(valid, folder / "data")
    store = folder / "mlflow.db"
    config = write_config(folder / "config.yaml", f"sqlite:///{store}")
    return CliRunner().invoke(app, ["train", "--data", str(folder / "data"), "--config", str(config)]), store


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        # every patient relapses on the day of intake: no landmark has a known outcome
        ({"relapse_date": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)],
          "last_followup_date": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]},
         "no landmark row to train on has a known 30-day outcome"),
        # a year of follow-up each and nobody relapses
        ({"relapse_date": [None, None, None],
          "last_followup_date": [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]},
         "have no relapse: one outcome class, nothing to learn"),
    ],
    ids=["no-known-outcome", "one-class"],
)
def test_nothing_to_learn_exits_2_and_registers_nothing(tmp_path, outcomes, message):
    result, store = _train(tmp_path, outcomes)
    assert result.exit_code == 2, result.output
    assert message in result.output and "nothing trained or registered" in result.output
    assert _registered(store) == []


def _registered(store) -> list:
    """The registered model names in a SQLite MLflow store (none when it holds no registry yet)."""
    if not store.exists():
        return []
    with closing(sqlite3.connect(store)) as db:
        if not db.execute("select 1 from sqlite_master where name = 'registered_models'").fetchall():
            return []
        return db.execute("select name from registered_models").fetchall()
