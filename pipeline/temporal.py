"""Temporal validation inside `relapse train` (`model.validation: temporal`).

The `temporal_share` of patients with the latest intake dates (ties broken by patient id, so
the split is reproducible) is held out before fitting; the models are trained and
cross-validated on the earlier patients as usual, and the final models (boosters and
calibrators as shipped) are then scored on the held-out patients' uncensored landmark rows.
Their metrics appear beside the cross-validated ones as model `temporal` (MLflow names
`temporal_auroc_<phase>`, `temporal_oe_ratio_pooled_lo`, …), showing how the model ages on
later intakes. The IPCW weights of the held-out rows come from the whole cohort's censoring
(KM or censoring model, as configured), computed before the split.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from features.config import Phase
from models.bundle import ModelBundle, PhaseModel
from models.config import ModelConfig
from models.fits import TrainedPhases
from pipeline.reports.validation import validation_metrics

MODEL = "temporal"
SCHEMA = {"phase": pl.String, "model": pl.String, "metric": pl.String, "estimate": pl.Float64, "lo": pl.Float64,
          "hi": pl.Float64, "in_sample": pl.Boolean}  # that of `models.evaluation.metrics_table`


def latest_intakes(patients: pl.DataFrame, share: float) -> pl.Series:
    """The ids of the `share` of patients with the latest intake dates (at least one)."""
    n = max(1, round(share * patients.height))
    return patients.sort(["intake_date", "patient_id"], descending=True).head(n)["patient_id"]


def split(
    landmarks: pl.DataFrame, patients: pl.DataFrame, cfg: ModelConfig
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(development rows, held-out rows); held-out is None unless `cfg.validation` is temporal."""
    if cfg.validation != "temporal":
        return landmarks, None
    held = landmarks["patient_id"].is_in(latest_intakes(patients, cfg.temporal_share).implode())
    return landmarks.filter(~held), landmarks.filter(held)


def held_out_metrics(
    trained: TrainedPhases, held_out: pl.DataFrame, feature_names: Sequence[str], phases: Sequence[Phase],
    cfg: ModelConfig,
) -> pl.DataFrame:
    """The final models' metrics on the held-out rows, in the training metrics table's form
    (phase, model = "temporal", metric, estimate, lo, hi, in_sample = false: the held-out
    patients were never fitted on), per phase and pooled; rows of a phase without a model
    (`no_data`) are left out."""
    bundle = ModelBundle({p: PhaseModel.from_fit(f) for p, f in trained.fits.items()}, list(feature_names),
                         list(phases), shared=trained.shared)
    scorable = [p for p, pm in bundle.phase_models.items() if pm.scorable]
    rows = held_out.filter(~pl.col("censored") & pl.col("phase").is_in(scorable))
    if rows.height == 0 or rows["label"].n_unique() < 2:
        return pl.DataFrame(schema=SCHEMA)
    X = rows.select(feature_names).to_numpy().astype("float64")
    risk = bundle.predict(X, rows["phase"].to_numpy(), rows["day"].to_numpy())["risk"]
    scored = rows.select("patient_id", "phase", "label", "ipcw_weight").with_columns(pl.Series("risk", risk))
    table = validation_metrics(scored, [p.name for p in phases], cfg.bootstrap_samples, cfg.seed,
                               bundle.constant_phases)
    return table.select("phase", pl.lit(MODEL).alias("model"), "metric", "estimate", "lo", "hi",
                        pl.lit(False).alias("in_sample")).cast(SCHEMA)
