"""Small synthetic landmark-style data and a unit-test-sized model config (numpy only)."""

from __future__ import annotations

import numpy as np

from models.config import LogisticParams, ModelConfig, XGBoostParams


def synthetic_phase(
    n_patients: int = 300, rows_per_patient: int = 4, n_features: int = 6, seed: int = 0,
    intercept: float = -1.5,
) -> dict[str, np.ndarray]:
    """Patients with several correlated rows; risk rises with feature 0, falls with feature 1;
    feature 2 is 30% missing; the rest are noise; IPCW-like weights in [1, 2]."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.array([f"p{i:05d}" for i in range(n_patients)]), rows_per_patient)
    patient_effect = rng.normal(size=n_patients)[np.repeat(np.arange(n_patients),
                                                           rows_per_patient)]
    n = groups.size
    X = rng.normal(size=(n, n_features))
    X[:, 0] += patient_effect
    X[rng.random(n) < 0.3, 2] = np.nan
    eta = intercept + 1.2 * X[:, 0] - 0.8 * X[:, 1]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.float64)
    w = rng.uniform(1.0, 2.0, n)
    names = [f"f{j}" for j in range(n_features)]
    return {"X": X, "y": y, "w": w, "groups": groups, "feature_names": names}


def small_model_config(**overrides: object) -> ModelConfig:
    """Like configs/default.yaml, but small enough for unit tests."""
    settings = dict(
        seed=42, n_folds=3, bootstrap_samples=20, calibration="platt", min_events=20,
        low_epv_warning=1, validation_fraction=0.2,
        xgboost=XGBoostParams(
            n_estimators=60, learning_rate=0.1, max_depth=3, min_child_weight=5.0,
            subsample=0.8, colsample_bytree=0.8, reg_lambda=5.0, reg_alpha=0.0,
            early_stopping_rounds=10),
        logistic=LogisticParams(C=0.1),
    )
    return ModelConfig(**(settings | overrides))


EARLY_DAY, ACUTE_DAY = 30.0, 7.0


def synthetic_phases(seed: int = 0) -> dict:
    """Three phases for `fit_phases`: `early` (the `synthetic_phase` signal, 300 patients),
    `acute` (200 other patients, the same signal plus a strong effect of feature 3 found only
    there, so its own booster has something to add) and `late` with no rows at all."""
    from models.fits import PhaseData

    early = synthetic_phase(seed=seed)
    acute = synthetic_phase(n_patients=200, seed=seed + 1)
    rng = np.random.default_rng(seed + 2)
    eta = -1.5 + 1.2 * acute["X"][:, 0] - 0.8 * acute["X"][:, 1] + 2.0 * (acute["X"][:, 3] > 0.5)
    acute["y"] = (rng.random(eta.size) < 1 / (1 + np.exp(-eta))).astype(np.float64)
    acute["groups"] = np.array([f"a{g}" for g in acute["groups"]])
    k = early["X"].shape[1]

    def data(d, day):
        return PhaseData(d["X"], d["y"], d["w"], d["groups"], np.full(d["y"].size, day))

    empty = PhaseData(np.empty((0, k)), np.empty(0), np.empty(0), np.empty(0, dtype=object), np.empty(0))
    return {"phases": {"acute": data(acute, ACUTE_DAY), "early": data(early, EARLY_DAY), "late": empty},
            "feature_names": early["feature_names"]}
