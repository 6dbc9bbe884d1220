"""Scores a clinic reads: calibrated risk, bands and reasons that agree with the SHAP values."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.bundle import ModelBundle, PhaseModel
from models.scoring import explain_scores, output_columns, risk_bands

BANDS = {"low": 0.0, "moderate": 0.1, "high": 0.25}


# shares the session fixture's one expensive build with the other tests of its group
pytestmark = pytest.mark.xdist_group("fitted_phase")


@pytest.fixture(scope="module")
def bundle(trained, phase_data) -> ModelBundle:
    phases = [{"name": "early", "start_day": 0, "end_day": 89}, {"name": "late", "start_day": 90, "end_day": 729}]
    return ModelBundle(
        phase_models={"early": PhaseModel.from_fit(trained.fits["early"]),
                      "late": PhaseModel("constant", fallback_rate=0.02)},
        feature_names=phase_data["feature_names"],
        phases=phases,
        shared=trained.shared,
    )


def describe(name, value, row):
    return f"{name} is {'missing' if value is None else f'{value:.2f}'}"


def rows(phase_data, phase: str, n: int = 40) -> pl.DataFrame:
    frame = pl.DataFrame(phase_data["X"][:n], schema=phase_data["feature_names"], orient="row")
    return frame.with_columns(pl.lit(phase).alias("phase"), pl.lit(30 if phase == "early" else 200).alias("day"))


def test_bands_use_lower_bounds_inclusively():
    assert risk_bands(np.array([0.0, 0.0999, 0.1, 0.2499, 0.25, 0.9]), BANDS).tolist() == [
        "low",
        "low",
        "moderate",
        "moderate",
        "high",
        "high",
    ]


def test_reasons_are_the_largest_risk_raising_contributions(bundle, phase_data):
    scores, shap = explain_scores(bundle, rows(phase_data, "early"), 2, BANDS, describe)
    assert scores.columns == output_columns(2)
    np.testing.assert_allclose(
        shap.sum(axis=1) + scores["base_value"].to_numpy(), scores["margin"].to_numpy(), atol=1e-4
    )
    names = phase_data["feature_names"]
    for i, row in enumerate(scores.iter_rows(named=True)):
        order = np.argsort(-shap[i])
        if shap[i, order[0]] > 0:
            assert row["reason_1_feature"] == names[order[0]]
            assert row["reason_1_shap"] == pytest.approx(shap[i, order[0]])
            assert row["reason_1"] == describe(names[order[0]], row["reason_1_value"], None)
            assert row["reason_1_effect"] > 0
        if row["reason_2_shap"] is not None:
            assert 0 < row["reason_2_shap"] <= row["reason_1_shap"]
        if row["protective_shap"] is not None:
            assert row["protective_shap"] == pytest.approx(shap[i].min()) and row["protective_effect"] < 0
    assert scores["risk_30d"].is_between(0, 1).all()
    assert scores["risk_band"].to_list() == risk_bands(scores["risk_30d"].to_numpy(), BANDS).tolist()


def test_a_missing_value_can_be_a_reason_and_says_so(bundle, phase_data):
    frame = rows(phase_data, "early").with_columns(pl.lit(None, pl.Float64).alias("f0"))
    scores, _ = explain_scores(bundle, frame, 6, BANDS, describe)
    mentioned = scores.filter(pl.col("reason_1_feature") == "f0")
    assert (mentioned["reason_1"] == "f0 is missing").all()
    assert mentioned["reason_1_value"].is_null().all()


def test_fallback_phase_gives_its_rate_and_no_reasons(bundle, phase_data):
    scores, shap = explain_scores(bundle, rows(phase_data, "late", 5), 3, BANDS, describe)
    assert scores["risk_30d"].to_list() == pytest.approx([0.02] * 5)
    assert scores["reason_1"].is_null().all() and not shap.any()
