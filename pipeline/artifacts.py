"""The catalogue of what a training or scoring run writes: every file name and format, once.

The writers (`pipeline.io`, `pipeline.tracking`) and the readers (`pipeline.audit`) take names
from here, so an artifact is never spelled twice. `TrainingArtifacts` is the typed set a training
run produces; the train stage builds it with pure code and `io.write_training_artifacts` writes
it in one go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

# Training run artifacts (MLflow run root)
METRICS = "metrics.csv"  # phase, model, metric, estimate, lo, hi
PHASE_COUNTS = "phase_counts.csv"  # per phase: rows, patients, events, event patients, fallback
OOF_PREDICTIONS = "oof_predictions.parquet"  # out-of-fold predictions, keyed-hash patient ids
FEATURE_REGISTRY = "feature_registry.json"  # every column's group, unit, description, template
TRAINING_PROFILE = "training_profile.json"  # feature distributions for drift checks
MODEL_CARD = "model_card.json"
SHAP_SAMPLE = "shap_sample.parquet"  # a sample of rows per phase with exact SHAP values
WARNINGS = "warnings.txt"
MODEL = "model"  # the logged pyfunc model, inside the run
BUNDLE = "bundle"  # the model bundle, an artifact of the pyfunc model


def calibration_figure_name(phase: str) -> str:
    return f"calibration_{phase}.png"


def shap_figure_name(phase: str) -> str:
    return f"shap_summary_{phase}.png"


# Evaluation run artifacts (`relapse evaluate`, and before/after in `relapse recalibrate`)
EVALUATION_METRICS = "evaluation_metrics.csv"  # phase (and pooled), metric, estimate, lo, hi
EVALUATION_COUNTS = "evaluation_counts.csv"  # per phase: rows, patients, events, event patients
CALIBRATION_CURVES = "calibration_curves.csv"  # phase, bin, predicted, observed, lo, hi, n
DECISION_CURVES = "decision_curves.csv"  # phase, threshold, net benefit of model / treat all / none
SUBGROUPS = "subgroups.csv"  # per phase and subgroup: n, events, AUROC, calibration-in-the-large
EVALUATION_SUMMARY = "evaluation.json"  # the run's tags, metrics and counts as one document
RECALIBRATION = "recalibration.json"  # per phase: the closed test's choice, coefficients, p-values


def evaluation_figure_names(phase: str) -> tuple[str, str]:
    return f"calibration_{phase}.png", f"decision_curve_{phase}.png"


# Feature-group ablation run artifacts (`relapse ablate`)
ABLATION = "ablation.csv"  # phase, group, metric (delta_…), estimate, lo, hi, n_dropped
ABLATION_FIGURE = "ablation_auroc.png"  # ΔAUROC with paired CIs per phase and group
ABLATION_NOTES = "ablation_notes.json"  # phases left out and why


# Scoring outputs, beside the scores file FILE
SCORING_MANIFEST = "manifest.json"  # the manifest as logged to the scoring run


def manifest_path(out: Path) -> Path:
    """FILE.manifest.json: input and output hashes, counts, exclusions, the model."""
    return Path(out).with_name(Path(out).name + ".manifest.json")


def rejects_path(out: Path) -> Path:
    """FILE.rejects.parquet: every quarantined input row with its table, row, column and reason."""
    return Path(out).with_name(Path(out).name + ".rejects.parquet")


@dataclass
class TrainingArtifacts:
    """Everything a training run logs as files besides the model (see the names above)."""

    metrics: pl.DataFrame
    phase_counts: pl.DataFrame
    oof_predictions: pl.DataFrame
    feature_registry: dict[str, Any]
    training_profile: dict[str, Any]
    model_card: dict[str, Any]
    shap_sample: pl.DataFrame | None = None
    figures: dict[str, Any] = field(default_factory=dict)  # file name -> matplotlib Figure


@dataclass
class EvaluationArtifacts:
    """Everything an evaluation run logs as files (see the names above)."""

    metrics: pl.DataFrame
    counts: pl.DataFrame
    calibration: pl.DataFrame
    decision_curves: pl.DataFrame
    subgroups: pl.DataFrame
    summary: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)  # file name -> matplotlib Figure
