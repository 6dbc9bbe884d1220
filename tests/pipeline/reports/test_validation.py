"""Unit tests: the pure analyses behind `relapse evaluate`."""

import numpy as np
import polars as pl
import pytest

from models.link import sigmoid
from pipeline.reports.validation import calibration_curve, metric_names, validation_metrics


def rows(n_patients: int = 400, shift: float = 0.0, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.repeat([f"P{i}" for i in range(n_patients)], 3)
    risk = sigmoid(rng.normal(-2, 1, ids.size))
    label = (rng.random(ids.size) < sigmoid(np.log(risk / (1 - risk)) + shift)).astype(int)
    phase = np.where(np.arange(ids.size) % 3 == 0, "acute", "early")
    return pl.DataFrame({"patient_id": ids, "phase": phase, "label": label, "risk": risk,
                         "ipcw_weight": np.ones(ids.size)})


def test_metrics_per_phase_and_pooled_with_observed_over_expected():
    table = validation_metrics(rows(shift=np.log(2)), ["acute", "early", "maintenance"], n_boot=50, seed=1)
    assert set(table["phase"]) == {"acute", "early", "pooled"}  # a phase without rows is left out
    oe = table.filter((pl.col("phase") == "pooled") & (pl.col("metric") == "oe_ratio")).row(0, named=True)
    frame = rows(shift=np.log(2))
    assert oe["estimate"] == pytest.approx(frame["label"].sum() / frame["risk"].sum())
    assert oe["lo"] > 1  # doubled odds: risk clearly under-predicted


def test_calibration_band_contains_the_binned_rate():
    frame = rows(seed=2)
    curve = calibration_curve(frame["label"], frame["risk"], frame["ipcw_weight"], frame["patient_id"], 100, 3)
    assert curve.height == 10 and curve["n"].sum() == frame.height
    assert ((curve["lo"] <= curve["observed"]) & (curve["observed"] <= curve["hi"])).all()


def test_metric_names_follow_training():
    table = validation_metrics(rows(seed=4), ["acute", "early"], n_boot=20, seed=5)
    counts = pl.DataFrame({"phase": ["acute"], "rows": [1], "patients": [1], "events": [0]})
    names = metric_names(table, counts)
    assert {"auroc_acute", "auroc_acute_lo", "oe_ratio_pooled_hi", "n_rows_acute"} <= set(names)


def test_a_constant_rate_phase_ranks_no_one_and_stays_out_of_the_pooled_rows():
    frame = rows(seed=6).with_columns(pl.when(pl.col("phase") == "early").then(0.03).otherwise("risk").alias("risk"))
    table = validation_metrics(frame, ["acute", "early"], n_boot=30, seed=1, constant=["early"])
    value = {(r["phase"], r["metric"]): r["estimate"] for r in table.iter_rows(named=True)}
    assert value["early", "auroc"] is None and value["early", "auprc"] is None  # not 0.5: not applicable
    assert value["early", "brier"] is not None  # its calibration on these rows is still measured
    acute_only = validation_metrics(frame.filter(pl.col("phase") == "acute"), ["acute"], n_boot=30, seed=1)
    assert value["pooled", "auroc"] == acute_only.filter((pl.col("phase") == "pooled") & (pl.col("metric") == "auroc")
                                                          )["estimate"][0]
    only_constant = validation_metrics(frame.filter(pl.col("phase") == "early"), ["early"], n_boot=30, seed=1,
                                       constant=["early"])
    assert set(only_constant["phase"]) == {"early"}  # nothing ranked, so no pooled row
    # the status decides the pooled rows; one risk on every row (a flat calibration) ranks no one either
    same = validation_metrics(frame, ["acute", "early"], n_boot=30, seed=1)
    assert same.filter((pl.col("phase") == "early") & (pl.col("metric") == "auroc"))["estimate"][0] is None
    assert same.filter(pl.col("phase") == "pooled")["estimate"].null_count() == 0  # early's rows are pooled


def test_the_subgroups_all_row_has_the_phase_tables_intervals():
    from pipeline.reports.validation import validation_result

    frame = rows(n_patients=600, seed=6).with_columns(age_at_intake=pl.lit(30.0), sex=pl.lit("female"))
    result = validation_result(frame, ["acute", "early"], n_boot=40, seed=7)
    auroc = result.metrics.filter(pl.col("metric") == "auroc")
    everyone = result.subgroups.filter(pl.col("attribute") == "all")
    for phase in ("acute", "early"):
        table = auroc.filter(pl.col("phase") == phase).row(0, named=True)
        row = everyone.filter(pl.col("phase") == phase).row(0, named=True)
        assert (row["auroc"], row["auroc_lo"], row["auroc_hi"]) == pytest.approx(
            (table["estimate"], table["lo"], table["hi"]), abs=1e-12)


def test_a_phase_given_one_risk_has_no_ranking_metric():
    frame = rows(seed=8).with_columns(
        pl.when(pl.col("phase") == "acute").then(pl.lit(0.12)).otherwise(pl.col("risk")).alias("risk"))
    table = validation_metrics(frame, ["acute", "early"], n_boot=20, seed=1)
    acute = {r["metric"]: r for r in table.filter(pl.col("phase") == "acute").to_dicts()}
    for name in ("auroc", "auprc", "calibration_slope"):
        assert acute[name]["estimate"] is None and acute[name]["lo"] is None, name
    assert acute["oe_ratio"]["estimate"] is not None and acute["brier"]["lo"] is not None
    early = table.filter((pl.col("phase") == "early") & (pl.col("metric") == "auroc"))
    assert early["estimate"][0] is not None
