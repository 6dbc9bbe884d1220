"""The metrics a training run reports: per-phase rows from the fits, pooled and oracle rows,
and the MLflow names `{metric}_{phase}`."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.evaluation import count_table, metrics_table, mlflow_metrics, oof_frame

# shares the session fixture's one expensive build with the other tests of its group
pytestmark = pytest.mark.xdist_group("fitted_phase")


@pytest.fixture(scope="module")
def oof(fitted_phase, phase_data) -> pl.DataFrame:
    rows = pl.DataFrame({"patient_id": phase_data["groups"], "label": phase_data["y"], "ipcw_weight": phase_data["w"]})
    frame = oof_frame({"early": rows}, {"early": fitted_phase})
    return frame.with_columns(pl.Series("risk_oracle", np.clip(fitted_phase.oof_raw, 0, 1)))


def test_oof_frame_stacks_calibrated_and_baseline_predictions(oof, fitted_phase):
    assert oof["phase"].unique().to_list() == ["early"]
    np.testing.assert_array_equal(oof["risk"].to_numpy(), fitted_phase.oof_model)
    np.testing.assert_array_equal(oof["risk_logistic"].to_numpy(), fitted_phase.oof_baseline)


def test_metrics_table_has_phase_pooled_and_oracle_rows(oof, fitted_phase):
    table = metrics_table({"early": fitted_phase}, oof, n_boot=10, seed=1, oracle_column="risk_oracle")
    models = set(table.filter(pl.col("phase") == "early")["model"])
    assert models == {"xgboost", "logistic", "oracle"}
    assert set(table.filter(pl.col("phase") == "pooled")["model"]) == {"xgboost", "logistic", "oracle"}
    phase_auroc = table.filter(
        (pl.col("phase") == "early") & (pl.col("model") == "xgboost") & (pl.col("metric") == "auroc")
    )
    assert phase_auroc["estimate"].item() == pytest.approx(fitted_phase.metrics["xgboost_calibrated"]["auroc"][0])
    auroc = table.filter(pl.col("metric") == "auroc")  # (ECE's bootstrap is biased upward, so not all metrics)
    assert (auroc["lo"] <= auroc["estimate"]).all() and (auroc["estimate"] <= auroc["hi"]).all()


def test_mlflow_names(oof, fitted_phase):
    table = metrics_table({"early": fitted_phase}, oof, n_boot=10, seed=1, oracle_column="risk_oracle")
    names = mlflow_metrics(table, count_table({"early": fitted_phase}))
    for name in (
        "auroc_early",
        "auroc_early_lo",
        "auroc_early_hi",
        "logistic_auroc_early",
        "oracle_auroc_early",
        "auroc_pooled",
        "auroc_gap_to_oracle_early",
        "n_rows_early",
        "n_events_early",
        "epv_early",
    ):
        assert name in names, name
    assert names["auroc_gap_to_oracle_early"] == pytest.approx(names["oracle_auroc_early"] - names["auroc_early"])
    assert names["n_rows_early"] == fitted_phase.n_rows


@pytest.fixture(scope="module")
def fallback_phase(model_config, fitted_phase, phase_data):
    """A constant-rate phase: the weighted event rate for every row, metrics in-sample."""
    import dataclasses

    from models.metrics import evaluate

    d = phase_data
    rate = float(np.average(d["y"], weights=d["w"]))
    oof = np.full(d["y"].shape, rate)
    fit = dataclasses.replace(
        fitted_phase, phase="maintenance", status="constant", booster=None, calibrator=None, fallback_rate=rate,
        oof_model=oof, oof_raw=oof.copy(), oof_baseline=None,
        metrics={"constant_rate": evaluate(d["y"], oof, d["w"], d["groups"], 10, 1)},
    )
    rows = pl.DataFrame({"patient_id": d["groups"], "label": d["y"], "ipcw_weight": d["w"]})
    return fit, rows


def test_a_fallback_phase_is_constant_rate_in_sample_and_left_out_of_pooled(oof, fitted_phase, fallback_phase):
    fallback, fallback_rows = fallback_phase
    fits = {"early": fitted_phase, "maintenance": fallback}
    early_rows = oof.select("patient_id", "label", "ipcw_weight")
    frame = oof_frame({"early": early_rows, "maintenance": fallback_rows}, fits)
    table = metrics_table(fits, frame, n_boot=10, seed=1)
    maintenance = table.filter(pl.col("phase") == "maintenance")
    assert set(maintenance["model"]) == {"constant_rate"}  # never labelled xgboost
    assert maintenance["in_sample"].all()
    auroc = maintenance.filter(pl.col("metric").is_in(["auroc", "auprc"]))
    assert auroc.height == 2 and auroc["estimate"].null_count() == 2  # not applicable, not 0.5
    assert not table.filter(pl.col("model") == "xgboost")["in_sample"].any()
    xgb_auroc = (pl.col("model") == "xgboost") & (pl.col("metric") == "auroc")
    pooled = table.filter((pl.col("phase") == "pooled") & xgb_auroc)
    early = table.filter((pl.col("phase") == "early") & xgb_auroc)
    assert pooled["estimate"].item() == pytest.approx(early["estimate"].item())  # early rows only
    counts = count_table(fits)
    kinds = dict(zip(counts["phase"], counts["model"], strict=True))
    assert kinds == {"early": "xgboost", "maintenance": "constant_rate"}
    names = mlflow_metrics(table, counts)
    assert "auroc_maintenance" not in names and "constant_rate_brier_maintenance" in names
