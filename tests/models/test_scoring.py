"""Scores a clinic reads: calibrated risk, bands and reasons that follow the reason policy."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from features.catalog import FeatureInfo
from features.reasons import reason_policy
from models.bundle import ModelBundle, PhaseModel
from models.scoring import explain_scores, output_columns, risk_bands

BANDS = {"low": 0.0, "moderate": 0.1, "high": 0.25}
# the synthetic features as a clinic would see them: f1 and f3 one concept, f4 a measurement
# age, f5 a sensitive attribute
REGISTRY = {
    "f0": FeatureInfo("f0", "bdnf", "", "Marker zero", "Marker zero is {value:g}", kind="biomarker"),
    "f1": FeatureInfo("f1", "therapy", "", "Attendance one", "Attendance one is {value:g}", "modifiable", "att"),
    "f2": FeatureInfo("f2", "hrv", "", "Marker two", {"any": "Marker two is {value:g}", "missing": "F2 unknown"},
                      kind="biomarker"),
    "f3": FeatureInfo("f3", "therapy", "", "Attendance three", "Attendance three is {value:g}", "modifiable", "att"),
    "f4": FeatureInfo("f4", "hrv", "days", "Age of f2", "F2 is {value:.0f} days old", kind="measurement_age"),
    "f5": FeatureInfo("f5", "demographic", "", "Ethnicity", "Ethnicity {value:.0f}", kind="sensitive"),
}


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


@pytest.fixture(scope="module")
def policy(phase_data):
    return reason_policy(tuple(phase_data["feature_names"]), REGISTRY)


def rows(phase_data, phase: str, n: int = 40) -> pl.DataFrame:
    frame = pl.DataFrame(phase_data["X"][:n], schema=phase_data["feature_names"], orient="row")
    return frame.with_columns(pl.lit(phase).alias("phase"), pl.lit(30 if phase == "early" else 200).alias("day"))


def concept_shap(shap: np.ndarray) -> dict[str, np.ndarray]:
    return {"f0": shap[:, 0], "att": shap[:, 1] + shap[:, 3], "f2": shap[:, 2]}


def test_bands_follow_their_bounds_whatever_the_key_order():
    shuffled = {"high": 0.25, "low": 0.0, "moderate": 0.1}  # as read back from the bundle's sorted JSON
    assert risk_bands(np.array([0.05, 0.15, 0.3]), shuffled).tolist() == ["low", "moderate", "high"]


def test_bands_use_lower_bounds_inclusively():
    assert risk_bands(np.array([0.0, 0.0999, 0.1, 0.2499, 0.25, 0.9]), BANDS).tolist() == [
        "low",
        "low",
        "moderate",
        "moderate",
        "high",
        "high",
    ]


def test_reasons_are_the_largest_concepts_above_the_minimum_effect(bundle, policy, phase_data):
    min_effect = 0.01
    scores, shap = explain_scores(bundle, rows(phase_data, "early", 200), 3, BANDS, policy, min_effect)
    assert scores.columns == output_columns(3)
    np.testing.assert_allclose(
        shap.sum(axis=1) + scores["base_value"].to_numpy(), scores["margin"].to_numpy(), atol=1e-4
    )
    concepts, margin = concept_shap(shap), scores["margin"].to_numpy()
    shown = 0
    for i, row in enumerate(scores.iter_rows(named=True)):
        effect = {c: 1 / (1 + np.exp(-margin[i])) - 1 / (1 + np.exp(-(margin[i] - v[i]))) for c, v in concepts.items()}
        expected = sorted((c for c in effect if effect[c] >= min_effect), key=lambda c: -concepts[c][i])
        got = [row[f"reason_{k}_feature"] for k in (1, 2, 3) if row[f"reason_{k}_feature"] is not None]
        assert [("att" if f in ("f1", "f3") else f) for f in got] == expected
        for k, concept in enumerate(expected, start=1):
            assert row[f"reason_{k}_shap"] == pytest.approx(concepts[concept][i], abs=5e-4)
            assert row[f"reason_{k}_effect"] >= min_effect
        if "att" in expected:  # the member with the larger |SHAP| speaks for the concept
            k = expected.index("att") + 1
            assert row[f"reason_{k}_feature"] == ("f1" if abs(shap[i, 1]) >= abs(shap[i, 3]) else "f3")
        lowering = [c for c in effect if effect[c] <= -min_effect]
        if lowering:
            assert row["protective_shap"] == pytest.approx(min(concepts[c][i] for c in lowering), abs=5e-4)
        else:
            assert row["protective_factor"] is None
        shown += len(got)
    assert shown > 100
    never = scores.select(pl.concat_list(pl.col("^reason_._feature$", "protective_feature"))).to_series().explode()
    assert not never.is_in(["f4", "f5"]).any()


def test_a_missing_value_can_be_a_reason_and_says_so(bundle, policy, phase_data):
    frame = rows(phase_data, "early").with_columns(pl.lit(None, pl.Float64).alias("f0"))
    scores, _ = explain_scores(bundle, frame, 3, BANDS, policy, 0.0)
    mentioned = scores.filter(pl.col("reason_1_feature") == "f0")
    assert mentioned.height and (mentioned["reason_1"] == "Marker zero: not recorded").all()
    assert mentioned["reason_1_value"].is_null().all()


def test_a_group_missing_from_the_data_gives_no_reasons(bundle, policy, phase_data):
    frame = rows(phase_data, "early").with_columns(pl.lit(None, pl.Float64).alias("f0"))
    scores, _ = explain_scores(bundle, frame, 3, BANDS, policy, 0.0, unavailable=("bdnf",))
    features = scores.select(pl.concat_list(pl.col("^reason_._feature$", "protective_feature"))).to_series()
    assert not features.explode().is_in(["f0"]).any()


def test_a_higher_minimum_effect_shows_fewer_reasons(bundle, policy, phase_data):
    counts = []
    for min_effect in (0.0, 0.02, 0.99):
        scores, _ = explain_scores(bundle, rows(phase_data, "early"), 3, BANDS, policy, min_effect)
        counts.append(scores.select(pl.col("^reason_._feature$").is_not_null().sum()).sum_horizontal().item())
    assert counts[0] > counts[1] > counts[2] == 0


def test_fallback_phase_gives_its_rate_and_no_reasons(bundle, policy, phase_data):
    scores, shap = explain_scores(bundle, rows(phase_data, "late", 5), 3, BANDS, policy)
    assert scores["risk_30d"].to_list() == pytest.approx([0.02] * 5)
    assert scores["reason_1"].is_null().all() and not shap.any()


# --- a golden frame: three hand-made patients with hand-set SHAP values, the real registry ---
GOLDEN_NAMES = (
    "age_at_intake", "sex_female", "sex_male", "ethnicity_asian", "ethnicity_black", "housing_stable",
    "housing_unstable", "housing_homeless", "bdnf_latest", "bdnf_change_since_first_pct", "bdnf_latest_age_days",
    "therapy_sessions_scheduled", "therapy_sessions_attended", "therapy_attendance_rate", "assess_pcl5_latest",
    "assess_pcl5_age_days", "assess_craving_vas_latest",
)
GOLDEN_X = [
    [24, 0, 1, 0, 1, 0, 1, 0, 18.2, -31.0, 12, 18, 7, 7 / 18, 41, 321, 46],
    [52, 1, 0, 1, 0, 1, 0, 0, None, None, None, 10, 9, 0.9, 12, 30, 20],
    [35, 0, 1, 0, 0, 0, 0, 0, 30.0, 5.0, 3, 0, 0, None, None, None, 80],  # a housing level unseen at training
]
GOLDEN_SHAP = [
    # ethnicity +0.9 and the PCL-5 age -0.6 are never shown; attendance rate +0.2 and count -0.15 are one concept
    [0.05, 0.0, 0.02, 0.0, 0.9, 0.1, 0.3, 0.0, 0.0, 0.4, -0.5, 0.0, -0.15, 0.2, 0.25, -0.6, 0.001],
    [-0.3, 0.01, 0.0, 0.4, 0.0, -0.2, -0.05, 0.0, 0.35, 0.0, 0.0, -0.02, -0.3, -0.1, -0.01, 0.0, 0.02],
    [0.0, 0.0, 0.01, 0.0, 0.0, 0.05, 0.1, 0.15, -0.01, 0.0, 0.0, 0.0, 0.0, 0.02, 0.0, 0.0, 0.6],
]
GOLDEN_MARGIN = [-1.0, -2.0, -0.5]
GOLDEN = {
    "reason_1": ["Housing: unstable", "Latest serum BDNF: not recorded", "Latest craving (0–100 scale) is 80"],
    "reason_1_feature": ["housing_unstable", "bdnf_latest", "assess_craving_vas_latest"],
    "reason_1_shap": [0.4, 0.35, 0.6],
    "reason_1_effect": [0.0711, 0.0321, 0.1278],
    "reason_2": ["Serum BDNF has fallen 31% since the first sample", None, "Housing: another category"],
    "reason_2_shap": [0.4, None, 0.3],
    "reason_3": ["Latest PTSD checklist (PCL-5) score is 41", None, None],
    "reason_3_effect": [0.0462, None, None],
    "protective_factor": [None, "Attended 9 of 10 therapy sessions scheduled since intake", None],
    "protective_shap": [None, -0.42, None],
    "protective_effect": [None, -0.0516, None],
}


class StubBundle:
    """Returns hand-set SHAP values and margins, as `ModelBundle.predict` would."""

    feature_names = list(GOLDEN_NAMES)
    phase_models: dict = {}  # every phase explains

    def predict(self, X, phase, day):
        shap, margin = np.array(GOLDEN_SHAP, dtype=float), np.array(GOLDEN_MARGIN)
        return {"risk": 1 / (1 + np.exp(-margin)), "shap": shap, "margin": margin, "base": margin - shap.sum(axis=1)}


def golden_scores(unavailable=()):
    from features.registry import feature_registry
    from features.spec import FeatureSpec
    from features.tables import HOUSING

    spec = FeatureSpec(
        GOLDEN_NAMES,
        ("demographic", "bdnf", "therapy", "assessments"),
        categorical_levels={"sex": ("female", "male"), "ethnicity": ("asian", "black"), "housing": HOUSING},
        instruments=("PCL5", "craving_vas"),
        features_config={"demographic": {"sensitive": ["ethnicity"], "sensitive_as_predictor": True}},
    )
    frame = pl.DataFrame([dict(zip(GOLDEN_NAMES, x, strict=True)) for x in GOLDEN_X], schema=dict.fromkeys(GOLDEN_NAMES,
                         pl.Float64)).with_columns(phase=pl.lit("early"), day=pl.lit(20))
    policy = reason_policy(GOLDEN_NAMES, feature_registry(spec))
    return explain_scores(StubBundle(), frame, 3, BANDS, policy, 0.005, unavailable)[0]


def test_golden_reasons_for_three_patients():
    scores = golden_scores()
    assert scores.select(list(GOLDEN)).to_dict(as_series=False) == GOLDEN


def test_golden_patient_without_the_bdnf_table_gets_no_bdnf_reason():
    scores = golden_scores(unavailable=("bdnf",))
    assert scores["reason_1"].to_list() == [
        "Housing: unstable", None, "Latest craving (0–100 scale) is 80"
    ]
    assert scores["reason_2"].to_list()[0] == "Latest PTSD checklist (PCL-5) score is 41"


def test_a_phase_whose_calibration_gives_one_risk_gives_no_reasons(bundle, policy, phase_data):
    import dataclasses

    from models.calibration import Calibrator

    flat = Calibrator.from_dict({"method": "platt", "a": -4.28, "b": 0.0})  # the slope clamped to 0
    early = dataclasses.replace(bundle.phase_models["early"], calibrator=flat)
    muted = dataclasses.replace(bundle, phase_models={**bundle.phase_models, "early": early})
    assert bundle.phase_models["early"].explains and not early.explains
    frame = rows(phase_data, "early")
    before, _ = explain_scores(bundle, frame, 3, BANDS, policy, 0.0)
    after, _ = explain_scores(muted, frame, 3, BANDS, policy, 0.0)
    assert before["reason_1"].is_not_null().any()
    assert after["risk_30d"].n_unique() == 1  # every patient the same risk ...
    assert after.select(pl.col("^reason_.*$", "^protective_.*$")).null_count().row(0) == (after.height,) * len(
        after.select(pl.col("^reason_.*$", "^protective_.*$")).columns)  # ... and no reason that cannot move it
