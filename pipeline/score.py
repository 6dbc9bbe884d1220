"""`relapse score`: a clinic's cohort as of a date → calibrated 30-day risk with reasons.

read (in patient batches) → validate → as-of features → risk, bands, SHAP reasons → write
atomically with a manifest → log the run to MLflow (no identifiers in clear).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import polars as pl

from features.build import EXCLUSIONS, scoring_table
from features.config import FeaturesConfig, Phase
from features.registry import describe
from features.spec import FeatureSpec
from models.bundle import ModelBundle
from models.scoring import explain_scores
from pipeline import io, tracking
from pipeline.config import Config
from pipeline.contract import ContractViolation, Problem, Validated, validate

KEYS = ("patient_id", "as_of", "day", "phase")
IDENTITY = ("model_name", "model_version", "run_id")
PACKAGES = ("relapse-risk", "polars", "xgboost", "numpy", "mlflow")

Progress = Callable[[int, int], None]


@dataclass
class ScoreSummary:
    output: Path
    manifest: dict[str, Any]
    rejects: Path | None
    scoring_run_id: str


@dataclass
class LoadedModel:
    bundle: ModelBundle
    spec: FeatureSpec
    features: FeaturesConfig
    phases: list[Phase]
    resolved: tracking.ResolvedModel


def score(
    data_dir: Path,
    as_of: date,
    model_uri: str,
    out: Path,
    config: Config,
    n_reasons: int | None = None,
    on_invalid: str = "fail",
    shap_out: Path | None = None,
    progress: Progress = lambda done, total: None,
) -> ScoreSummary:
    started = time.perf_counter()
    out = Path(out)
    for path in (out, shap_out):
        if path is not None and path.suffix not in (".parquet", ".csv"):
            raise ValueError(f"{path}: output must end in .parquet or .csv")
    n_reasons = config.scoring.reasons if n_reasons is None else n_reasons
    with tempfile.TemporaryDirectory(prefix="relapse-score-") as tmp:
        work = Path(tmp)
        batches = io.split_by_patient(data_dir, config.scoring.batch_patients, work / "input")
        model = load_model(config, model_uri, work / "model")
        parts, problems, exclusions = [], [], dict.fromkeys(EXCLUSIONS, 0)
        for index in range(batches.n_batches):
            checked = validate(batches.batch(index), required=("patients",))
            problems += checked.problems
            if any(p.fatal for p in checked.problems) or (checked.problems and on_invalid == "fail"):
                progress(index + 1, batches.n_batches)
                continue
            batch = score_tables(model, io.drop_row_index(checked.tables), as_of, n_reasons, config)
            for reason, n in batch.excluded.items():
                exclusions[reason] += n
            parts.append(_write_part(work / "parts" / f"{index}.parquet", batch.scored))
            if shap_out is not None:
                _write_part(work / "shap" / f"{index}.parquet", batch.shap)
            progress(index + 1, batches.n_batches)
        fatal = [p for p in problems if p.fatal]
        if fatal or (problems and on_invalid == "fail"):
            raise ContractViolation(_merge(fatal or problems))
        result = _concat(parts, KEYS, IDENTITY)
        rejects = _rejects(problems)
        io.write_frame(result, out)
        if shap_out is not None:
            io.write_frame(_concat(sorted((work / "shap").glob("*.parquet")), ("patient_id",)), shap_out)
        rejects_path = None
        if on_invalid == "quarantine":
            rejects_path = out.with_name(out.name + ".rejects.parquet")
            io.write_frame(rejects, rejects_path)
        manifest = _manifest(batches, model, config, as_of, result, exclusions, rejects, out, shap_out, rejects_path)
        with tracking.scoring_run(config.mlflow, f"score-{as_of.isoformat()}") as mlflow:
            manifest["scoring_run_id"] = mlflow.active_run().info.run_id
            manifest["duration_s"] = round(time.perf_counter() - started, 3)
            io.write_json(manifest, manifest_path(out))
            _log(mlflow, config, manifest, result, out)
    return ScoreSummary(out, manifest, rejects_path, manifest["scoring_run_id"])


def manifest_path(out: Path) -> Path:
    return Path(out).with_name(Path(out).name + ".manifest.json")


def load_model(config: Config, uri: str, dst: Path) -> LoadedModel:
    """Resolve a model URI, verify its bundle and rebuild the feature settings it was trained with."""
    dst.mkdir(parents=True)
    resolved = tracking.resolve_model(config.mlflow, uri, dst)
    bundle = ModelBundle.load(resolved.bundle_dir)
    spec = FeatureSpec.from_dict(bundle.feature_spec)
    features = FeaturesConfig.model_validate(spec.features_config)
    return LoadedModel(bundle, spec, features, [Phase(**p) for p in bundle.phases], resolved)


@dataclass
class BatchScores:
    scored: pl.DataFrame  # the output rows
    shap: pl.DataFrame  # patient_id, phase, shap__<feature>..., base_value, margin
    features: pl.DataFrame  # patient_id and the feature values the model saw
    excluded: dict[str, int]  # patients not scored, by reason


def score_tables(model: LoadedModel, tables, as_of: date, n_reasons: int, config: Config) -> BatchScores:
    """Score validated tables (no `_row`) as of a date with a loaded model."""
    frame = scoring_table(tables, model.phases, model.features, model.spec, as_of).collect()
    excluded = dict(frame.group_by("exclusion").len().drop_nulls("exclusion").iter_rows())
    rows = frame.filter(pl.col("exclusion").is_null())
    spec = model.spec
    scores, shap = explain_scores(
        model.bundle,
        rows,
        n_reasons,
        config.scoring.risk_bands,
        lambda name, value, row: describe(name, value, spec=spec, row=row),
    )
    r = model.resolved
    identity = [
        pl.lit(model.bundle.metadata.get("model_name", r.name), pl.String).alias("model_name"),
        pl.lit(r.version, pl.String).alias("model_version"),
        pl.lit(r.run_id, pl.String).alias("run_id"),
    ]
    scored = rows.select(KEYS).hstack(scores).with_columns(identity)
    shap_wide = (
        rows.select("patient_id", "phase")
        .hstack(pl.DataFrame(shap, schema=[f"shap__{n}" for n in model.bundle.feature_names]))
        .with_columns(scores["base_value"], scores["margin"])
    )
    features = rows.select("patient_id", *model.bundle.feature_names)
    return BatchScores(scored, shap_wide, features, excluded)


def _write_part(path: Path, frame: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return path


def _concat(paths: list[Path], first: tuple[str, ...], last: tuple[str, ...] = ()) -> pl.DataFrame:
    """The batch files as one frame sorted by patient, `first` columns first, `last` last."""
    if not paths:
        return pl.DataFrame()
    frame = pl.read_parquet(paths).sort("patient_id")
    return frame.select(*first, pl.exclude(*first, *last), *last)


def _merge(problems: list[Problem]) -> list[Problem]:
    """One problem per (table, column, reason) across batches, rows in file order."""
    merged: dict[tuple, Problem] = {}
    for p in problems:
        key = (p.table, p.column, p.reason, p.fatal)
        if key not in merged:
            merged[key] = Problem(p.table, p.column, p.reason, [], [], p.fatal)
        merged[key].rows += p.rows
        merged[key].examples += p.examples
    for p in merged.values():
        order = sorted(range(len(p.rows)), key=p.rows.__getitem__)
        p.rows = [p.rows[i] for i in order]
        p.examples = sorted(p.examples, key=lambda ex: ex.get("_row", 0))[:3]
    return list(merged.values())


def _rejects(problems: list[Problem]) -> pl.DataFrame:
    return Validated({}, _merge(problems)).rejects().sort("table", "row")


def _hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _manifest(
    batches, model: LoadedModel, config: Config, as_of, result, exclusions, rejects, out, shap_out, rejects_path
):
    r = model.resolved
    bundle_files = io.read_json(r.bundle_dir / "manifest.json")
    rejected = dict(rejects.group_by("table").len().iter_rows()) if rejects.height else {}
    rejected_patients = rejected.get("patients", 0)
    n_patients = batches.row_counts["patients"]
    manifest = {
        "as_of": as_of.isoformat(),
        "synthetic": bool(model.bundle.metadata.get("synthetic")),
        "inputs": {
            t: {
                "file": str(p),
                "sha256": io.file_sha256(p),
                "rows": batches.row_counts[t],
                "rows_rejected": rejected.get(t, 0),
                "rows_used": batches.row_counts[t] - rejected.get(t, 0),
            }
            for t, p in sorted(batches.paths.items())
        },
        "patients": {
            "in_input": n_patients,
            "scored": result.height,
            "excluded": exclusions,
            "rejected": rejected_patients,
        },
        "model": {
            "uri": r.uri,
            "name": model.bundle.metadata.get("model_name", r.name),
            "version": r.version,
            "run_id": r.run_id,
            "bundle_files_sha256": bundle_files,
            "bundle_manifest_sha256": io.file_sha256(r.bundle_dir / "manifest.json"),
        },
        "config_sha256": _hash_text(config.model_dump_json()),
        "packages": {p: version(p) for p in PACKAGES},
        "output": {"file": str(out), "sha256": io.file_sha256(out), "rows": result.height},
    }
    if shap_out is not None:
        manifest["shap_output"] = {"file": str(shap_out), "sha256": io.file_sha256(shap_out)}
    if rejects_path is not None:
        manifest["rejects"] = {
            "file": str(rejects_path),
            "sha256": io.file_sha256(rejects_path),
            "rows": rejects.height,
        }
    return manifest


def _log(mlflow, config: Config, manifest: dict, result: pl.DataFrame, out: Path) -> None:
    """Log the run: as-of, model, counts, risk distribution and the manifest (no patient ids)."""
    risk = result["risk_30d"] if result.height else pl.Series([], dtype=pl.Float64)
    metrics = {
        "patients_scored": result.height,
        "patients_rejected": manifest["patients"]["rejected"],
        **{f"excluded_{k}": v for k, v in manifest["patients"]["excluded"].items()},
    }
    if result.height:
        metrics |= {
            "risk_mean": risk.mean(),
            **{f"risk_p{q}": risk.quantile(q / 100) for q in (10, 50, 90)},
            **{f"band_{b}": int((result["risk_band"] == b).sum()) for b in config.scoring.risk_bands},
        }
    mlflow.log_params(
        {
            "as_of": manifest["as_of"],
            "model_uri": manifest["model"]["uri"],
            "model_version": manifest["model"]["version"],
            "output": out.name,
        }
    )
    mlflow.set_tags(
        {"model_run_id": manifest["model"]["run_id"] or "", "synthetic_data": str(manifest["synthetic"]).lower()}
    )
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    mlflow.log_dict(manifest, "manifest.json")
