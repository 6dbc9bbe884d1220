"""`relapse score`: a clinic's cohort as of a date → calibrated 30-day risk with reasons.

read (in patient batches) → validate → as-of features → risk, bands, SHAP reasons → write
atomically → log the run to MLflow (no identifiers in clear) → the manifest, last.
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

from models.bundle import MANIFEST as BUNDLE_MANIFEST
from pipeline import artifacts, io, tracking
from pipeline.config import Config
from pipeline.contract import ContractViolation, OnInvalid, Validated, merge_problems, validate
from pipeline.serving import EXCLUSIONS, IDENTITY, KEYS, LoadedModel, load_model, score_tables

PACKAGES = ("relapse-risk", "polars", "xgboost", "numpy", "mlflow")

Progress = Callable[[int, int], None]


@dataclass
class ScoreSummary:
    output: Path
    manifest: dict[str, Any]
    rejects: Path | None
    scoring_run_id: str


def score(
    data_dir: Path,
    as_of: date,
    model_uri: str,
    out: Path,
    config: Config,
    n_reasons: int | None = None,
    on_invalid: OnInvalid = OnInvalid.fail,
    shap_out: Path | None = None,
    progress: Progress = lambda done, total: None,
) -> ScoreSummary:
    started = time.perf_counter()
    out = Path(out)
    for path in (out, shap_out):
        if path is not None and path.suffix not in (".parquet", ".csv"):
            raise ValueError(f"{path}: output must end in .parquet or .csv")
    n_reasons = config.scoring.reasons if n_reasons is None else n_reasons
    bands = config.scoring.risk_bands
    with tempfile.TemporaryDirectory(prefix="relapse-score-") as tmp:
        work = Path(tmp)
        batches = io.split_by_patient(data_dir, config.scoring.batch_patients, work / "input")
        model = load_model(model_uri, work / "model", config.mlflow)
        parts, problems, exclusions = [], [], dict.fromkeys(EXCLUSIONS, 0)
        for index in range(batches.n_batches):
            checked = validate(batches.batch(index), required=("patients",))
            problems += checked.problems
            if not checked.blocking(on_invalid):
                batch = score_tables(model, io.drop_row_index(checked.tables), as_of, n_reasons, bands)
                for reason, n in batch.excluded.items():
                    exclusions[reason] += n
                parts.append(_write_part(work / "parts" / f"{index}.parquet", batch.scored))
                if shap_out is not None:
                    _write_part(work / "shap" / f"{index}.parquet", batch.shap)
            progress(index + 1, batches.n_batches)
        checked = Validated({}, merge_problems(problems))
        if checked.blocking(on_invalid):
            raise ContractViolation(checked.blocking(on_invalid))
        result = _concat(parts, KEYS, IDENTITY)
        rejects = checked.rejects().sort("table", "row")
        io.write_frame(result, out)
        if shap_out is not None:
            io.write_frame(_concat(sorted((work / "shap").glob("*.parquet")), ("patient_id",)), shap_out)
        rejects_path = None
        if on_invalid == OnInvalid.quarantine:
            rejects_path = artifacts.rejects_path(out)
            io.write_frame(rejects, rejects_path)
        manifest = _manifest(batches, model, config, as_of, result, exclusions, rejects, out, shap_out, rejects_path)
        run_id = tracking.log_scoring(config.mlflow, _record(config, manifest, result, out))
        manifest["scoring_run_id"] = run_id
        manifest["duration_s"] = round(time.perf_counter() - started, 3)
        io.write_json(manifest, artifacts.manifest_path(out))
    return ScoreSummary(out, manifest, rejects_path, run_id)


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


def _hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _manifest(
    batches, model: LoadedModel, config: Config, as_of, result, exclusions, rejects, out, shap_out, rejects_path
):
    r = model.resolved
    bundle_files = io.read_json(r.bundle_dir / BUNDLE_MANIFEST)
    rejected = dict(rejects.group_by("table").len().iter_rows()) if rejects.height else {}
    input_hashes = io.hash_files(batches.paths)
    manifest = {
        "as_of": as_of.isoformat(),
        "synthetic": bool(model.bundle.metadata.get("synthetic")),
        "inputs": {
            t: {
                "file": str(p),
                "sha256": input_hashes[t],
                "rows": batches.row_counts[t],
                "rows_rejected": rejected.get(t, 0),
                "rows_used": batches.row_counts[t] - rejected.get(t, 0),
            }
            for t, p in sorted(batches.paths.items())
        },
        "patients": {
            "in_input": batches.row_counts["patients"],
            "scored": result.height,
            "excluded": exclusions,
            "rejected": rejected.get("patients", 0),
        },
        "model": {
            "uri": r.uri,
            "name": model.name,
            "version": r.version,
            "run_id": r.run_id,
            "bundle_files_sha256": bundle_files,
            "bundle_manifest_sha256": io.file_sha256(r.bundle_dir / BUNDLE_MANIFEST),
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


def _record(config: Config, manifest: dict, result: pl.DataFrame, out: Path) -> tracking.ScoringRecord:
    """What the scoring run logs: as-of, model, counts, risk distribution, the manifest (no ids)."""
    metrics = {
        "patients_scored": result.height,
        "patients_rejected": manifest["patients"]["rejected"],
        **{f"excluded_{k}": v for k, v in manifest["patients"]["excluded"].items()},
    }
    if result.height:
        risk = result["risk_30d"]
        metrics |= {
            "risk_mean": risk.mean(),
            **{f"risk_p{q}": risk.quantile(q / 100) for q in (10, 50, 90)},
            **{f"band_{b}": int((result["risk_band"] == b).sum()) for b in config.scoring.risk_bands},
        }
    model = manifest["model"]
    return tracking.ScoringRecord(
        run_name=f"score-{manifest['as_of']}",
        params={"as_of": manifest["as_of"], "model_uri": model["uri"], "model_version": model["version"],
                "output": out.name},
        tags={"model_run_id": model["run_id"] or "", "synthetic_data": str(manifest["synthetic"]).lower()},
        metrics={k: float(v) for k, v in metrics.items()},
        manifest=manifest,
    )
