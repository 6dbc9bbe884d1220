"""`relapse ablate`: what each feature group adds, phase by phase.

read → landmark table and censoring weights (as `relapse train`) → the full cross-validated
fit of all phases (`fit_phases`: the shared booster and the phases' own trees) and, for every
feature group present (demographic, bdnf, hrv, therapy, assessments), a refit of all phases
without that group's columns on the same patient folds (`fit_phases` deals folds from the
stacked patient ids, labels and seed alone; dropping columns changes none of them, and this is
checked) → per phase, paired patient-bootstrap ΔAUROC, ΔBrier and Δnet benefit at the
risk-band thresholds (`models.ablation`) on the cross-fitted calibrated out-of-fold predictions
→ one run in `<experiment>-ablation` with the table and a figure.

Both arms are fitted the same way, with the configured trees, depth, learning rate and early
stopping but without row or column subsampling (`deterministic_fit`): with `colsample_bytree`
< 1 the columns each tree may use are drawn from the feature list, so dropping a group changes
every later draw and the two fits differ by chance as well as by the group. The paired patient
bootstrap holds the two fitted models fixed and cannot see that chance: on the 800-patient test
cohort with the assessments given to other patients (no signal), the configured subsampling gave
ΔAUROC CIs excluding 0 in two phases, the deterministic fits in none. A separate command rather
than a train flag: it refits the whole model once per group, several times the cost of
training, and registers nothing. Phases whose full model is a constant rate or has no data have
nothing to ablate and are left out (named in the notes).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from features.registry import feature_registry
from features.spec import GROUPS, fit_feature_spec
from models.ablation import group_columns, paired_deltas
from models.config import ModelConfig
from models.fits import PhaseData, TrainedPhases
from models.folds import grouped_folds
from models.training import fit_phases
from pipeline import artifacts as names
from pipeline import io, tracking, tracking_eval
from pipeline.config import Config
from pipeline.reports.figures import ablation_figure
from pipeline.train import build_landmarks
from pipeline.weights import phase_data, with_censoring_weights

Progress = Callable[[str], None]
SCHEMA = {"phase": pl.String, "group": pl.String, "metric": pl.String, "estimate": pl.Float64,
          "lo": pl.Float64, "hi": pl.Float64, "n_dropped": pl.Int64}


@dataclass
class AblationSummary:
    run_id: str
    table: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False


def band_thresholds(bands: dict[str, float]) -> list[float]:
    """The risk-band lower bounds strictly between 0 and 1: the thresholds clinics act on."""
    return sorted(t for t in bands.values() if 0 < t < 1)


def without(data: dict[str, PhaseData], features: Sequence[str], dropped: Sequence[str]) -> dict[str, PhaseData]:
    """Every phase's arrays with the `dropped` feature columns removed (rows unchanged)."""
    keep = [i for i, f in enumerate(features) if f not in set(dropped)]
    return {p: PhaseData(d.X[:, keep], d.y, d.w, d.groups, d.day) for p, d in data.items()}


def deterministic_fit(cfg: ModelConfig) -> ModelConfig:
    """The model settings for both arms of an ablation: no row or column subsampling, so that
    the full and reduced fits differ only by the dropped columns (see the module docstring)."""
    return cfg.model_copy(update={"xgboost": cfg.xgboost.model_copy(update={"subsample": 1.0,
                                                                            "colsample_bytree": 1.0})})


def _folds(data: dict[str, PhaseData], cfg: ModelConfig) -> np.ndarray:
    """The folds `fit_phases` deals for these phases: from the stacked ids, labels and seed."""
    groups = np.concatenate([np.asarray(d.groups) for d in data.values()])
    y = np.concatenate([np.asarray(d.y, dtype=np.float64) for d in data.values()])
    return grouped_folds(groups, cfg.n_folds, cfg.seed, events=y)


def ablate_phases(data: dict[str, PhaseData], columns: dict[str, list[str]], features: Sequence[str],
                  cfg: ModelConfig, thresholds: Sequence[float],
                  progress: Progress = lambda _: None) -> tuple[list[dict], list[str]]:
    """Rows of the ablation table for every phase with a booster, and notes on those without;
    both arms are fitted with `deterministic_fit(cfg)`."""
    cfg = deterministic_fit(cfg)
    progress("the full model")
    full = fit_phases(data, list(features), cfg)
    phases = [p for p, f in full.fits.items() if f.status in ("phase_model", "shared")]
    notes = [f"phase '{p}': the full model is {f.status} (no booster); nothing to ablate"
             for p, f in full.fits.items() if p not in phases]
    if not phases:
        return [], notes
    folds = _folds(data, cfg)
    rows = []
    for group, dropped in columns.items():
        progress(f"the refit without {group}")
        reduced_data = without(data, features, dropped)
        if not np.array_equal(_folds(reduced_data, cfg), folds):
            raise RuntimeError(f"the refit without {group} would use different folds")
        kept = [f for f in features if f not in set(dropped)]
        reduced: TrainedPhases = fit_phases(reduced_data, kept, cfg)
        for phase in phases:
            d = data[phase]
            deltas = paired_deltas(d.y, full.fits[phase].oof_model, reduced.fits[phase].oof_model, d.w, d.groups,
                                   thresholds, cfg.bootstrap_samples, cfg.seed)
            rows += [{"phase": phase, "group": group, "metric": k, "estimate": e, "lo": lo, "hi": hi,
                      "n_dropped": len(dropped)} for k, (e, lo, hi) in deltas.items()]
    order = {p: i for i, p in enumerate(data)}
    rows.sort(key=lambda r: order[r["phase"]])
    return rows, notes


def ablate(data_dir: Path, config: Config, groups: Sequence[str] | None = None,
           progress: Progress = lambda _: None) -> AblationSummary:
    tracking.check_reachable(config.mlflow)  # an unreachable store fails before any work
    progress("validating input tables")
    validated, paths = io.load_tables(data_dir, required=("patients", "outcomes"))
    tables = io.drop_row_index(validated.tables)
    spec = fit_feature_spec(tables, config.features)
    group_of = {n: info.group for n, info in feature_registry(spec).items()}
    columns = group_columns(spec.feature_names, group_of)
    wanted = [g for g in GROUPS if g in columns and (groups is None or g in groups)]
    if groups is not None and (unknown := sorted(set(groups) - set(columns))):
        raise ValueError(f"--groups: {unknown} not among the feature groups present {sorted(columns)}")
    columns = {g: columns[g] for g in wanted}
    progress("building the landmark table")
    landmarks = build_landmarks(tables, spec, config)  # as train builds it (in shards for large cohorts)
    progress("fitting the censoring model")
    landmarks = with_censoring_weights(landmarks, tables["outcomes"], spec, config.model, config.landmarks.horizon_days)
    data = {phase: phase_data(landmarks, spec, phase)[1] for phase in config.phase_names}
    thresholds = band_thresholds(dict(config.scoring.risk_bands))
    rows, notes = ablate_phases(data, columns, spec.feature_names, config.model, thresholds,
                                lambda what: progress(f"fitting all phases: {what} ({len(columns)} refits)"))
    table = pl.DataFrame(rows, schema=SCHEMA)
    hashes = io.hash_files(paths)
    synthetic = io.read_simulation_metadata(data_dir) is not None
    run_id = _log(config, table, notes, hashes, synthetic, data_dir)
    return AblationSummary(run_id, table, notes, synthetic)


def _log(config: Config, table: pl.DataFrame, notes: list[str], hashes: dict[str, str], synthetic: bool,
         data_dir: Path) -> str:
    metrics = {}
    for r in table.iter_rows(named=True):
        base = f"{r['metric']}_{r['group']}_{r['phase']}"
        for suffix, value in (("", r["estimate"]), ("_lo", r["lo"]), ("_hi", r["hi"])):
            if value is not None and np.isfinite(value):
                metrics[base + suffix] = float(value)
    with tempfile.TemporaryDirectory(prefix="relapse-ablate-") as tmp:
        out = Path(tmp)
        io.write_frame(table, out / names.ABLATION)
        io.write_figure(ablation_figure(table, title="Without each feature group"), out / names.ABLATION_FIGURE)
        io.write_json({"notes": notes}, out / names.ABLATION_NOTES)
        record = tracking_eval.EvaluationRecord(
            run_name="ablate-groups",
            params={"data_dir": str(data_dir), "groups": ",".join(sorted(table["group"].unique().to_list())),
                    "bootstrap_samples": config.model.bootstrap_samples, "n_folds": config.model.n_folds},
            tags={"data_fingerprint": io.data_fingerprint(hashes), "synthetic_data": str(synthetic).lower()},
            metrics=metrics,
            artifact_dir=out,
        )
        return tracking.guarded(config.mlflow, "logging the ablation run",
                                lambda: tracking_eval.log_evaluation(config.mlflow, record, kind="ablation"))
