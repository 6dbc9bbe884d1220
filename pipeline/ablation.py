"""`relapse ablate`: what each feature group adds, phase by phase.

read → landmark table (as `relapse train`) → per phase, the full model's cross-validated fit
and, for every feature group present (demographic, bdnf, hrv, therapy, assessments), a refit
without that group's columns on the same patient folds (`fit_phase` deals folds from the
patient ids, labels and seed alone, and this is checked) → paired patient-bootstrap ΔAUROC,
ΔBrier and Δnet benefit at the risk-band thresholds (`models.ablation`) on the cross-fitted
calibrated out-of-fold predictions → one run in `<experiment>-ablation` with the table and a
figure. A separate command rather than a train flag: it refits 1 + groups models per phase,
several times the cost of training, and registers nothing. Phases whose full model falls back
to a constant rate have nothing to ablate and are left out (named in the notes).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from features.build import landmark_table
from features.registry import feature_registry
from features.spec import GROUPS, fit_feature_spec
from models.ablation import group_columns, paired_deltas
from models.config import ModelConfig
from models.training import PhaseFit, fit_phase
from pipeline import artifacts as names
from pipeline import io, tracking
from pipeline.config import Config
from pipeline.reports.figures import ablation_figure

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


def _fit(part: pl.DataFrame, columns: Sequence[str], cfg: ModelConfig, phase: str) -> PhaseFit:
    return fit_phase(
        part.select(columns).to_numpy().astype(np.float64), part["label"].to_numpy().astype(np.float64),
        part["ipcw_weight"].to_numpy(), part["patient_id"].to_numpy(), list(columns), cfg, phase,
    )


def ablate_phase(part: pl.DataFrame, columns: dict[str, list[str]], features: Sequence[str], cfg: ModelConfig,
                 phase: str, thresholds: Sequence[float]) -> tuple[list[dict], str | None]:
    """Rows of the ablation table for one phase, or a note saying why it has none."""
    full = _fit(part, features, cfg, phase)
    if full.booster is None:
        return [], f"phase '{phase}': the full model is a constant-rate fallback; nothing to ablate"
    y = part["label"].to_numpy().astype(np.float64)
    w, ids = part["ipcw_weight"].to_numpy(), part["patient_id"].to_numpy()
    rows = []
    for group, dropped in columns.items():
        kept = [f for f in features if f not in set(dropped)]
        reduced = _fit(part, kept, cfg, phase)
        if reduced.folds is not None and not np.array_equal(reduced.folds, full.folds):
            raise RuntimeError(f"phase '{phase}': the refit without {group} used different folds")
        deltas = paired_deltas(y, full.oof_model, reduced.oof_model, w, ids, thresholds,
                               cfg.bootstrap_samples, cfg.seed)
        rows += [{"phase": phase, "group": group, "metric": k, "estimate": e, "lo": lo, "hi": hi,
                  "n_dropped": len(dropped)} for k, (e, lo, hi) in deltas.items()]
    return rows, None


def ablate(data_dir: Path, config: Config, groups: Sequence[str] | None = None,
           progress: Progress = lambda _: None) -> AblationSummary:
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
    landmarks = landmark_table(tables, config.phases, config.landmarks, config.features, spec).collect()
    thresholds = band_thresholds(dict(config.scoring.risk_bands))
    rows, notes = [], []
    for phase in config.phase_names:
        progress(f"phase '{phase}': full model and {len(columns)} refits")
        part = landmarks.filter((pl.col("phase") == phase) & ~pl.col("censored"))
        found, note = ablate_phase(part, columns, spec.feature_names, config.model, phase, thresholds)
        rows += found
        notes += [note] if note else []
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
        record = tracking.EvaluationRecord(
            run_name="ablate-groups",
            params={"data_dir": str(data_dir), "groups": ",".join(sorted(table["group"].unique().to_list())),
                    "bootstrap_samples": config.model.bootstrap_samples, "n_folds": config.model.n_folds},
            tags={"data_fingerprint": io.data_fingerprint(hashes), "synthetic_data": str(synthetic).lower()},
            metrics=metrics,
            artifact_dir=out,
        )
        return tracking.log_evaluation(config.mlflow, record, kind="ablation")
