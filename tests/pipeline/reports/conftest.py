"""A small synthetic report context, built from the audit's own pure functions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipeline.privacy import DEVELOPMENT_KEY, keyed_hash
from pipeline.reports import figures
from pipeline.reports.analysis import (
    drift_table,
    out_of_range,
    phase_profiles,
    subgroup_table,
)
from pipeline.reports.render import render_report

PHASES = [
    ("acute", 0, 13),
    ("early", 14, 89),
    ("consolidation", 90, 364),
    ("maintenance", 365, 729),
]
FEATURES = [
    "bdnf_latest",
    "bdnf_change_since_first_pct",
    "hrv_rmssd_window_mean",
    "hrv_sdnn_window_mean",
    "hrv_mean_hr_latest",
    "cbt_sessions_28d",
    "phq9_last",
    "age_at_intake",
]
METRICS = [
    # phase, model, metric, estimate, lo, hi
    ("acute", "xgboost", "auroc", 0.7312, 0.7015, 0.7598),
    ("acute", "logistic", "auroc", 0.6843, 0.6511, 0.7166),
    ("acute", "oracle", "auroc", 0.7741, 0.7480, 0.8002),
    ("acute", "xgboost", "brier", 0.1127, 0.1049, 0.1203),
    ("acute", "logistic", "brier", 0.1189, 0.1101, 0.1270),
]


def feature_matrix(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    x = np.column_stack(
        [
            rng.lognormal(3.0 + shift, 0.4, n),  # BDNF ng/mL
            rng.normal(-5, 15, n),
            rng.lognormal(3.6 - shift, 0.5, n),  # RMSSD ms
            rng.lognormal(3.9, 0.4, n),
            rng.normal(72, 10, n),
            rng.poisson(3, n).astype(float),
            rng.integers(0, 28, n).astype(float),
            rng.uniform(14, 60, n),
        ]
    )
    x[rng.random(n) < 0.2, 0] = np.nan  # BDNF often missing
    return x


def build_context(seed: int = 7, n: int = 800, patients: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    calibration, shap, oof_parts, metrics = {}, {}, [], list(METRICS)
    for k, (phase, _, _) in enumerate(PHASES):
        features = feature_matrix(rng, n)
        margin = (
            -2.0
            + 0.03 * (30 - np.nan_to_num(features[:, 0], nan=30))
            - 0.02 * (features[:, 2] - 36)
            + rng.normal(0, 0.5, n)
        )
        p = 1 / (1 + np.exp(-margin))
        y = (rng.random(n) < p).astype(float)
        w = rng.uniform(1.0, 1.3, n)
        calibration[phase] = {"y": y, "p": p, "w": w}
        values = rng.normal(0, 0.1, (n, len(FEATURES)))
        values[:, 0] = -0.03 * (np.nan_to_num(features[:, 0], nan=30) - 30)
        values[:, 2] = -0.02 * (features[:, 2] - 36)
        shap[phase] = {"values": values, "features": features, "feature_names": FEATURES}
        oof_parts.append(
            pl.DataFrame(
                {
                    "phase": phase,
                    "patient_id": [f"P{i % (n // 4):04d}" for i in range(n)],  # four rows per patient
                    "label": y.astype(np.int8),
                    "ipcw_weight": w,
                    "risk": p,
                    "age_at_intake": features[:, 7],
                    "sex": rng.choice(["female", "male", "other"], n, p=[0.45, 0.5, 0.05]),
                    "polysubstance": rng.random(n) < 0.4,
                    "deprivation_decile": rng.integers(1, 11, n),
                }
            )
        )
        if k:
            metrics.append((phase, "xgboost", "auroc", 0.70 - 0.01 * k, 0.66, 0.74))
            metrics.append((phase, "logistic", "auroc", 0.65 - 0.01 * k, 0.61, 0.69))
    phase_names = [p for p, _, _ in PHASES]
    train = pl.DataFrame(feature_matrix(rng, 2000), schema=FEATURES, orient="row").with_columns(
        pl.Series("phase", [phase_names[i % 2] for i in range(2000)]),
        pl.Series("patient_id", [f"P{i // 4:04d}" for i in range(2000)]),
    )
    now = pl.DataFrame(feature_matrix(rng, 500, shift=0.4), schema=FEATURES, orient="row").with_columns(
        pl.Series("phase", [phase_names[i % 2] for i in range(500)])
    )
    profile = phase_profiles(train, FEATURES)
    patient_rows = []
    for i in range(patients):
        pid = keyed_hash(f"P{i:04d}", DEVELOPMENT_KEY)
        x = now.select(FEATURES).row(i)
        patient_rows.append(
            {
                "id": pid,
                "risk": 0.31 - 0.05 * i,
                "risk_band": "high",
                "phase": "early",
                "day": 21 + 7 * i,
                "reasons": ["Serum BDNF is low (12 ng/mL).", "Heart-rate variability has fallen."],
                "base_value": -1.9,
                "feature_names": FEATURES,
                "shap_values": rng.normal(0, 0.3, len(FEATURES)),
                "feature_values": list(x),
            }
        )
    return {
        "title": "Relapse-risk audit report (test)",
        "generated_at": "2025-06-01T12:00:00Z",
        "synthetic": True,
        "model_card": {
            "model_name": "relapse-risk",
            "model_version": "3",
            "run_id": "abc123",
            "intended_use": "Rank patients by 30-day relapse risk to prioritise review.",
            "intended_users": "Clinicians and key workers in addiction services",
            "training_data": {
                "source": "simulated cohort",
                "fingerprint": "sha256:0f3a9c",
                "date_start": "2022-01-03",
                "date_end": "2024-12-30",
                "n_patients": 3000,
            },
            "events_per_phase": [
                {"phase": p, "patients": 700 + k, "rows": n, "events": 90 + k}
                for k, (p, _, _) in enumerate(PHASES)
            ],
            "phases": [{"name": p, "start_day": a, "end_day": b} for p, a, b in PHASES],
            "horizon_days": 30,
            "landmark_spacing_days": 7,
            "feature_groups_used": ["demographic", "bdnf", "hrv", "therapy", "assessments"],
            "feature_groups_absent": [],
            "missing_data": "Left missing; XGBoost learns a default direction.",
            "calibration": "Isotonic regression on out-of-fold predictions, per phase.",
            "explanation_scale": "Exact TreeSHAP values in log-odds (the margin).",
            "limitations": ["Trained on simulated data.", "Internal validation only."],
            "validation": "5-fold patient-grouped cross-validation.",
        },
        "metrics": pl.DataFrame(
            metrics, schema=["phase", "model", "metric", "estimate", "lo", "hi"], orient="row"
        ),
        "calibration": calibration,
        "subgroups": subgroup_table(pl.concat(oof_parts)),
        "shap": shap,
        "scoring": {"as_of": "2025-05-31", "n_scored": 500, "n_excluded": 12},
        "drift": drift_table(profile, now),
        "out_of_range": out_of_range(now),
        "patients": patient_rows,
        "id_note": "keyed hash (HMAC-SHA256, development key)",
    }


@pytest.fixture(scope="session")
def sample_context() -> dict:
    return build_context()


UNDRAWN = "data:image/png;base64,"


def _undrawn(fig) -> str:
    """Stands in for `figures.to_data_uri` where a test reads the HTML around the figures: the
    figure is still built (its data and axes), only the PNG rasterising (most of a report's time)
    is skipped. test_figures.py and the offline-browser test check the drawn PNGs."""
    return UNDRAWN


@pytest.fixture
def undrawn_figures(monkeypatch):
    monkeypatch.setattr(figures, "to_data_uri", _undrawn)


@pytest.fixture(scope="session")
def sample_html(sample_context) -> str:
    """The report's HTML with every figure built but not rasterised."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(figures, "to_data_uri", _undrawn)
        return render_report(sample_context)


@pytest.fixture(scope="session")
def drawn_html(sample_context) -> str:
    """The report as an auditor opens it, every figure a real PNG."""
    return render_report(sample_context)
