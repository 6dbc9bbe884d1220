"""Unit tests: the temporal hold-out of the latest intakes."""

from datetime import date

import polars as pl

from models.evaluation import metrics_table
from pipeline.temporal import SCHEMA, latest_intakes, split
from tests.models.synthetic import small_model_config


def patients(n: int = 10) -> pl.DataFrame:
    return pl.DataFrame({"patient_id": [f"P{i:02d}" for i in range(n)],
                         "intake_date": [date(2024, 1, 1 + i) for i in range(n)]})


def test_latest_intakes_are_held_out_reproducibly():
    assert sorted(latest_intakes(patients(), 0.3).to_list()) == ["P07", "P08", "P09"]
    tied = patients(4).with_columns(pl.lit(date(2024, 1, 1)).alias("intake_date"))
    assert latest_intakes(tied, 0.5).to_list() == ["P03", "P02"]


def test_split_keeps_every_landmark_row_of_a_patient_on_one_side():
    landmarks = pl.DataFrame({"patient_id": [f"P{i % 10:02d}" for i in range(40)], "day": list(range(40))})
    cfg = small_model_config().model_copy(update={"validation": "temporal", "temporal_share": 0.2})
    dev, held = split(landmarks, patients(), cfg)
    assert set(held["patient_id"]) == {"P08", "P09"} and dev.height + held.height == 40
    assert not set(dev["patient_id"]) & set(held["patient_id"])
    assert split(landmarks, patients(), small_model_config())[1] is None


def test_held_out_rows_have_the_training_metrics_table_columns():
    # train.py stacks the two tables: the held-out rows must have the same columns and types
    oof = pl.DataFrame(schema={"patient_id": pl.String, "phase": pl.String, "label": pl.Float64,
                               "ipcw_weight": pl.Float64, "risk": pl.Float64, "risk_logistic": pl.Float64})
    assert metrics_table({}, oof, 1, 0).schema == pl.Schema(SCHEMA)
