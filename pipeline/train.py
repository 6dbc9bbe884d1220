"""`relapse train`: read → landmark table → per-phase models → one MLflow run and a new
registered version (alias `challenger`). Pure steps live in features/ and models/; MLflow
calls in pipeline/tracking.py.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.registry import feature_registry
from features.shards import landmark_table_bounded
from features.spec import FeatureSpec, fit_feature_spec
from features.time import phase_expr
from models.bundle import ModelBundle, PhaseModel
from models.evaluation import count_table, metrics_table, mlflow_metrics, oof_frame
from models.fits import PhaseFit, TrainedPhases
from models.training import fit_phases
from pipeline import artifacts as names
from pipeline import io, temporal, tracking
from pipeline.artifacts import TrainingArtifacts
from pipeline.config import Config, config_as_params
from pipeline.plausibility import input_warnings
from pipeline.privacy import HashKey, hash_key_from_env, with_hashed_ids
from pipeline.registry import version_description
from pipeline.reports.cohort import accrual, participant_flow
from pipeline.reports.drift import phase_profiles
from pipeline.reports.figures import calibration_figure, curve_with_band, shap_beeswarm_figure
from pipeline.serving import LoadedModel
from pipeline.weights import censoring_sensitivity, phase_data, with_censoring_weights

SUBGROUP_COLUMNS = ("age_at_intake", "sex", "polysubstance", "deprivation_decile", "ethnicity")
SHAP_SAMPLE_ROWS = 2000
PACKAGES = ("polars", "xgboost", "scikit-learn", "shap", "mlflow", "numpy")
ORACLE = "risk_oracle"

Progress = Callable[[str], None]  # called with the name of each step as it starts
# the fits as they finish: what is being fitted ("all": every phase together), fits done, fits
# in all (the cross-validation folds and the final fit)
FoldProgress = Callable[[str, int, int], None]


@dataclass
class TrainSummary:
    run_id: str
    version: str
    metrics: pl.DataFrame
    counts: pl.DataFrame
    warnings: list[str]
    synthetic: bool
    censoring_sensitivity: dict[str, float]


def train(
    data_dir: Path,
    config: Config,
    progress: Progress = lambda _: None,
    on_fold: FoldProgress = lambda *_: None,
    run_name: str | None = None,
) -> TrainSummary:
    """Train and register a model; `run_name` defaults to the data folder's name and the UTC time."""
    tracking.check_reachable(config.mlflow)  # an unreachable store fails before any work
    progress("validating input tables")
    validated, paths = io.load_tables(data_dir, required=("patients", "outcomes"))
    tables = io.drop_row_index(validated.tables)
    simulation = io.read_simulation_metadata(data_dir)

    progress("building the landmark table")
    spec = fit_feature_spec(tables, config.features)
    landmarks = build_landmarks(tables, spec, config)
    truth = io.read_truth_risk(data_dir) if simulation else None
    progress("fitting the censoring model")
    landmarks = with_censoring_weights(landmarks, tables["outcomes"], spec, config.model, config.landmarks.horizon_days)
    landmarks, held_out = temporal.split(landmarks, tables["patients"], config.model)

    progress("fitting the shared and per-phase boosters")
    rows, data = {}, {}
    for phase in config.phase_names:
        part, data[phase] = phase_data(landmarks, spec, phase)
        rows[phase] = _evaluation_rows(part, tables["patients"])
    _check_learnable(np.concatenate([d.y for d in data.values()]), data_dir, config.landmarks.horizon_days)
    trained = fit_phases(data, list(spec.feature_names), config.model,
                         on_fold=lambda done, total: on_fold("all", done, total))
    fits = trained.fits

    progress("evaluating out-of-fold predictions")
    oof = _with_oracle(oof_frame(rows, fits), truth)
    oracle = ORACLE if truth is not None else None
    table = metrics_table(fits, oof, config.model.bootstrap_samples, config.model.seed, oracle, config.model.workers)
    if held_out is not None:
        progress("scoring the held-out latest intakes (temporal validation)")
        table = pl.concat([table, temporal.held_out_metrics(trained, held_out, spec.feature_names,
                                                            config.phases, config.model)])
    counts = count_table(fits)
    warnings = io.stray_files(data_dir) + input_warnings(validated.tables) + trained.warnings
    warnings += [w for fit in fits.values() for w in fit.warnings]

    hashes = io.hash_files(paths)
    run = _TrainingRun(landmarks, oof, trained, rows, spec, config, simulation, paths, hashes,
                       tables["patients"], tables["outcomes"])
    bundle = _bundle(run)
    artifacts = training_artifacts(run, bundle, table, counts, hash_key_from_env())
    sensitivity = censoring_sensitivity(landmarks, truth)
    with tempfile.TemporaryDirectory(prefix="relapse-train-") as tmp:
        work = Path(tmp)
        bundle.save(work / "bundle")
        io.write_training_artifacts(artifacts, work / "artifacts")
        example = _serving_example(landmarks, spec, bundle)
        progress("logging the run and registering the model in MLflow")
        record = tracking.TrainingRecord(
            run_name=run_name or default_run_name(data_dir),
            params=config_as_params(config),
            tags=_tags(run),
            metrics=mlflow_metrics(table, counts) | sensitivity | {"warnings": float(len(warnings)),
                                                                  "shared_trees": float(trained.shared_trees)},
            datasets=[
                tracking.DatasetInput(name, tables[name], str(path), hashes[name]) for name, path in paths.items()
            ],
            artifact_dir=work / "artifacts",
            bundle_dir=work / "bundle",
            input_example=example,
            output_example=_example_output(bundle, example, config),
            feature_names=list(spec.feature_names),
            warnings=warnings,
            description=version_description([p.model_dump() for p in config.phases]),
            version_tags=version_tags(run, table),
        )
        outcome = tracking.guarded(
            config.mlflow, "logging the training run", lambda: tracking.log_training(config.mlflow, record)
        )
    return TrainSummary(outcome.run_id, outcome.version, table, counts, warnings, simulation is not None,
                        sensitivity)


def _check_learnable(labels: np.ndarray, data_dir: Path, horizon: int) -> None:
    """Refuse a cohort with nothing to learn from, before any booster is fitted or anything is
    registered: no landmark row to train on with a known outcome, or every one with the same
    outcome. (A cohort with a few events is learnable: it gets the pooled constant rate, which
    says how few.) The rows are those left after a temporal hold-out."""
    if labels.size == 0:
        raise ValueError(
            f"{data_dir}: no landmark row to train on has a known {horizon}-day outcome (each patient relapsed, "
            "or their follow-up ended, before a landmark's horizon could be seen; with model.validation: temporal, "
            "outside the held-out latest intakes); nothing trained or registered"
        )
    if labels.min() == labels.max():
        which = "relapse" if labels[0] == 1 else "no relapse"
        raise ValueError(
            f"{data_dir}: all {labels.size:,} landmark rows with a known {horizon}-day outcome have {which}: "
            "one outcome class, nothing to learn; nothing trained or registered"
        )


def build_landmarks(tables: dict[str, pl.DataFrame], spec: FeatureSpec, config: Config) -> pl.DataFrame:
    """The landmark table, once; shard by shard (the same frame) when the cohort has more
    patients than `shards.patients_per_shard`, so building it never holds the whole cohort's
    intermediate frames at once."""
    return landmark_table_bounded(tables, config.phases, config.landmarks, config.features, spec,
                                  config.shards.patients_per_shard)


@dataclass
class _TrainingRun:
    """What the fits produced and what they were fitted on: the inputs of the run's outputs."""

    landmarks: pl.DataFrame
    oof: pl.DataFrame
    trained: TrainedPhases
    rows: dict[str, pl.DataFrame]
    spec: FeatureSpec
    config: Config
    simulation: dict[str, Any] | None
    paths: dict[str, Path]
    hashes: dict[str, str]  # SHA-256 of each input file, computed once
    patients: pl.DataFrame
    outcomes: pl.DataFrame

    @property
    def fits(self) -> dict[str, PhaseFit]:
        return self.trained.fits


def _with_oracle(oof: pl.DataFrame, truth: pl.DataFrame | None) -> pl.DataFrame:
    """The out-of-fold rows with the simulator's true risk beside them, when there is a truth."""
    if truth is None:
        return oof
    true_risk = truth.select("patient_id", "landmark_date", pl.col("true_risk_30d").alias(ORACLE))
    return oof.join(true_risk, on=["patient_id", "landmark_date"], how="left")


def _evaluation_rows(part: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
    """A phase's fitted rows as kept for evaluation: keys, label, weight and subgroup columns."""
    attributes = patients.select("patient_id", *[c for c in SUBGROUP_COLUMNS if c in patients.columns])
    return part.select("patient_id", "landmark_date", "day", "label", "ipcw_weight").join(
        attributes, on="patient_id", how="left", maintain_order="left"
    )


def _bundle(run: _TrainingRun) -> ModelBundle:
    config = run.config
    return ModelBundle(
        phase_models={p: PhaseModel.from_fit(f) for p, f in run.fits.items()},
        feature_names=list(run.spec.feature_names),
        phases=list(config.phases),
        feature_spec=run.spec.to_dict(),
        shared=run.trained.shared,
        metadata={
            "model_name": config.mlflow.registered_model,
            "synthetic": run.simulation is not None,
            "horizon_days": config.landmarks.horizon_days,
            "landmark_spacing_days": config.landmarks.spacing_days,
            "calibration": config.model.calibration,
            "censoring_weights": config.model.censoring_weights,
            "scoring": {
                "reasons": config.scoring.reasons,
                "risk_bands": dict(config.scoring.risk_bands),
                "min_effect": config.scoring.min_effect,
            },
            "data_sha256": run.hashes,
            # per phase, the first and last day of the rows fitted: scoring past the last one extrapolates
            "trained_days": {p: [int(r["day"].min()), int(r["day"].max())] for p, r in run.rows.items() if r.height},
        },
    )


def training_artifacts(
    run: _TrainingRun, bundle: ModelBundle, table: pl.DataFrame, counts: pl.DataFrame, key: HashKey
) -> TrainingArtifacts:
    """The run's artifacts as data (pure): tables, JSON documents and figures."""
    spec, oof = run.spec, run.oof
    hashed = with_hashed_ids(oof, key)
    figures: dict[str, Any] = {}
    shap_frames = []
    for phase, fit in run.fits.items():
        part = oof.filter(pl.col("phase") == phase)
        if part.height:
            y, p, w, g = (part[c].to_numpy() for c in ("label", "risk", "ipcw_weight", "patient_id"))
            figures[names.calibration_figure_name(phase)] = calibration_figure(
                curve_with_band(y, p, w, groups=g), p, title=f"Calibration: {phase}")
        if fit.status not in ("phase_model", "shared"):
            continue
        sample = _shap_sample(run.landmarks, run.rows[phase], bundle, phase, run.config.model.seed)
        shap_frames.append(sample)
        values = sample.select([f"shap__{n}" for n in spec.feature_names]).to_numpy()
        features = sample.select(spec.feature_names).to_numpy()
        figures[names.shap_figure_name(phase)] = shap_beeswarm_figure(
            values, features, list(spec.feature_names), title=f"SHAP: {phase}"
        )
    return TrainingArtifacts(
        metrics=table,
        phase_counts=counts,
        oof_predictions=hashed,
        feature_registry={n: vars(info) for n, info in feature_registry(spec).items()},
        training_profile=phase_profiles(run.landmarks, spec.feature_names),
        model_card=_model_card(run, counts, key.label),
        shap_sample=pl.concat(shap_frames) if shap_frames else None,
        figures=figures,
    )


def _shap_sample(landmarks, phase_rows: pl.DataFrame, bundle: ModelBundle, phase: str, seed: int) -> pl.DataFrame:
    """Up to SHAP_SAMPLE_ROWS of the phase's rows with feature values and exact SHAP values of
    the phase's model (shared booster plus its own trees)."""
    keys = phase_rows.select("patient_id", "landmark_date")
    if keys.height > SHAP_SAMPLE_ROWS:
        keys = keys.sample(SHAP_SAMPLE_ROWS, seed=seed)
    names_ = bundle.feature_names
    part = keys.join(landmarks, on=["patient_id", "landmark_date"], how="left", maintain_order="left")
    X = part.select(names_).to_numpy().astype(np.float64)
    out = bundle.predict(X, np.full(part.height, phase, dtype=object), part["day"].to_numpy())
    shap = pl.DataFrame(out["shap"], schema=[f"shap__{n}" for n in names_])
    return (
        part.select(pl.lit(phase).alias("phase"), *names_)
        .hstack(shap)
        .with_columns(pl.Series("shap_base", out["base"]))
    )


def _model_card(run: _TrainingRun, counts: pl.DataFrame, id_label: str) -> dict[str, Any]:
    config, simulation, dates = run.config, run.simulation, run.landmarks["landmark_date"]
    return {
        "synthetic": simulation is not None,
        "simulation": {k: simulation[k] for k in ("seed", "n_patients") if k in simulation} if simulation else None,
        "training_data": {
            "source": str(Path(next(iter(run.paths.values()))).parent),
            "fingerprint": io.data_fingerprint(run.hashes),
            "date_start": str(dates.min()),
            "date_end": str(dates.max()),
            "n_patients": run.landmarks["patient_id"].n_unique(),
            **accrual(run.patients, run.outcomes),
        },
        "participant_flow": participant_flow(run.patients, run.outcomes, run.landmarks, config.phase_names),
        # `events` counts event rows (a relapse within 30 days of a landmark: ~4 rows per
        # relapse); `event_patients` counts the independent events
        "events_per_phase": counts.select("phase", "model", "patients", "event_patients", "rows", "events").to_dicts(),
        "fallback_phases": [
            {"phase": p, "rate": f.fallback_rate, "reason": "; ".join(f.warnings)}
            for p, f in run.fits.items()
            if f.status == "constant"
        ],
        "n_features": len(run.spec.feature_names),
        "phase_status": counts.select(
            "phase", "status", "event_patients", "predictors", "epv", "added_trees", "fallback_rate"
        ).to_dicts(),
        "shared_booster_trees": run.trained.shared_trees,
        "censoring_weights": config.model.censoring_weights,
        "phases": [p.model_dump() for p in config.phases],
        "horizon_days": config.landmarks.horizon_days,
        "landmark_spacing_days": config.landmarks.spacing_days,
        "feature_groups_used": list(run.spec.groups_used),
        "feature_groups_absent": list(run.spec.groups_absent) + list(run.spec.groups_disabled),
        "calibration": config.model.calibration,
        "id_hashing": id_label,
    }


def _tags(run: _TrainingRun) -> dict[str, str]:
    tags = {
        "git_commit": _git_commit(),
        "synthetic_data": str(run.simulation is not None).lower(),
        "data_fingerprint": io.data_fingerprint(run.hashes),
        "feature_groups": ",".join(run.spec.groups_used),
        **{f"phase_status.{p}": f.status for p, f in run.fits.items()},
        **{f"version.{p}": version(p) for p in PACKAGES},
        **{f"data_sha256.{name}": sha for name, sha in run.hashes.items()},
    }
    if run.simulation:
        tags["simulation.seed"] = str(run.simulation.get("seed"))
    return tags


def default_run_name(data_dir: Path) -> str:
    """`<data folder name>-<UTC time>`, so runs on different data or at different times tell apart."""
    return f"{Path(data_dir).resolve().name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def version_tags(run: _TrainingRun, table: pl.DataFrame) -> dict[str, str]:
    """Tags of the registered version: provenance and the model's AUROC (95% CI) pooled and per phase."""
    auroc = table.filter((pl.col("metric") == "auroc") & (pl.col("model").is_in(["xgboost", "constant_rate"])))
    tags = {
        "synthetic_data": str(run.simulation is not None).lower(),
        "data_fingerprint": io.data_fingerprint(run.hashes),
        "feature_groups": ",".join(run.spec.groups_used) or "none",
    }
    for r in auroc.iter_rows(named=True):
        if not _finite(r["estimate"]):
            continue
        ci = f" (95% CI {r['lo']:.3f}-{r['hi']:.3f})" if _finite(r["lo"]) and _finite(r["hi"]) else ""
        tags[f"auroc_{r['phase']}"] = f"{r['estimate']:.3f}{ci}"
    return tags


def _finite(value: float | None) -> bool:
    return value is not None and bool(np.isfinite(value))


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _serving_example(landmarks: pl.DataFrame, spec: FeatureSpec, bundle: ModelBundle) -> pl.DataFrame:
    """Three rows of the REST input (from phases that have a model): patient_id, day, features."""
    scorable = [p for p, pm in bundle.phase_models.items() if pm.scorable]
    return (
        landmarks.filter(pl.col("phase").is_in(scorable))
        .head(3)
        .select(pl.col("patient_id"), pl.col("day"), *[pl.col(n).cast(pl.Float64) for n in spec.feature_names])
        .with_columns(pl.lit("example").alias("patient_id"))
    )


def _example_output(bundle: ModelBundle, example: pl.DataFrame, config: Config) -> pl.DataFrame:
    frame = example.with_columns(phase_expr(pl.col("day"), config.phases).alias("phase"))
    scores, _ = LoadedModel.from_bundle(bundle).explain(
        frame, config.scoring.reasons, config.scoring.risk_bands, config.scoring.min_effect
    )
    return frame.select("patient_id", "day", "phase").hstack(scores)
