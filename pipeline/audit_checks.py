"""What `relapse audit` checks before it explains anything: that the report will be about the
scores the clinic holds and the model that wrote them (module doc of `pipeline.audit`).

Each check raises a `ValueError` naming what differs and what to give instead; none writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from models.bundle import MANIFEST as BUNDLE_MANIFEST
from pipeline import io, tracking
from pipeline.artifacts import SCORING_MANIFEST


def check_scores_file(scores: Path, manifest: dict[str, Any]) -> None:
    """The scores file is byte for byte the one `relapse score` wrote (an edited or replaced
    file would have the report explain risks nobody computed)."""
    expected = (manifest.get("output") or {}).get("sha256")
    if expected != io.file_sha256(Path(scores)):
        raise ValueError(f"--scores {scores}: the file is not the one `relapse score` wrote (its SHA-256 differs "
                         f"from the manifest's): it was edited or replaced; audit the scores as they were written")


def check_logged_manifest(scores: Path, manifest: dict[str, Any], mlflow_config, work: Path) -> None:
    """The scores file's SHA-256 is also the one logged to its scoring run in MLflow, so a file
    edited together with its manifest beside it is refused too. A manifest that names no scoring
    run, or one this store does not hold, is refused as well: every `relapse score` logs its run,
    so the file cannot then be checked against what was logged (a manifest edited to name another
    run, or scores from another site's store: audit them with the store they were scored with)."""
    from mlflow.exceptions import MlflowException

    run_id = manifest.get("scoring_run_id")
    where = mlflow_config.tracking_uri or "the configured store"
    if not run_id:
        raise ValueError(f"--scores {scores}: its manifest names no scoring run, so the file cannot be checked "
                         "against what its scoring run logged; audit the scores as `relapse score` wrote them")
    try:
        logged = io.read_json(tracking.download_run_file(mlflow_config, run_id, SCORING_MANIFEST, work))
    except (MlflowException, OSError):
        raise ValueError(f"--scores {scores}: its scoring run {run_id} is not in the MLflow store {where} (or "
                         "logged no manifest), so the file cannot be checked against what was logged; audit with "
                         "the store the scores were written with") from None
    if (logged.get("output") or {}).get("sha256") != io.file_sha256(Path(scores)):
        raise ValueError(f"--scores {scores}: the file is not the one its scoring run {run_id} logged to MLflow (the "
                         "SHA-256 differs): the file and its manifest were edited or replaced")


def scores_model(scores: Path, manifest: dict[str, Any]) -> str:
    """The URI of the model that wrote the scores: its registered version, else the URI it was given."""
    written_by = manifest.get("model") or {}
    if written_by.get("name") and written_by.get("version"):
        return f"models:/{written_by['name']}/{written_by['version']}"
    if written_by.get("uri"):
        return str(written_by["uri"])
    raise ValueError(f"--scores {scores}: its manifest names no model; give --model")


def evaluated_model(tags: dict[str, Any]) -> str:
    """The URI of the model an evaluation run evaluated: its registered version, else its URI."""
    if tags.get("model_name") not in (None, "None") and tags.get("model_version") not in (None, "None"):
        return f"models:/{tags['model_name']}/{tags['model_version']}"
    return str(tags.get("model_uri"))


def check_same_model(scores: Path, manifest: dict[str, Any], model, model_uri: str) -> None:
    """`model` is the bundle that wrote the scores (the SHA-256 of its bundle manifest)."""
    written_by = manifest.get("model") or {}
    found = io.file_sha256(model.resolved.bundle_dir / BUNDLE_MANIFEST)
    if written_by.get("bundle_manifest_sha256") != found:
        version = model.resolved.version or "unregistered"
        raise ValueError(
            f"--scores {scores} were written by {written_by.get('name')} version {written_by.get('version')} "
            f"({written_by.get('uri')}); --model {model_uri} is another model ({model.name} version {version}): "
            f"leave out --model to audit them with the model that wrote them"
        )


def changed_tables(manifest: dict[str, Any], hashes: dict[str, str]) -> list[str]:
    """The input tables whose files (by SHA-256) differ from the scoring run's, or are new or gone."""
    then = {t: (entry or {}).get("sha256") for t, entry in (manifest.get("inputs") or {}).items()}
    return sorted(t for t in set(then) | set(hashes) if then.get(t) != hashes.get(t))


def since_scoring(manifest: dict[str, Any], hashes: dict[str, str]) -> str:
    """What differs from the scoring run: input files (by SHA-256) and package versions, as text."""
    from importlib.metadata import version

    tables = changed_tables(manifest, hashes)
    packages = [f"{p} {v} → {version(p)}" for p, v in sorted((manifest.get("packages") or {}).items())
                if version(p) != v]
    parts = ([f"input tables changed since scoring: {', '.join(tables)}"] if tables else []) + (
        [f"package versions differ: {', '.join(packages)}"] if packages else [])
    return "; ".join(parts) or "the input files and package versions are those of the scoring run"


def check_same_inputs(data_dir: Path, manifest: dict[str, Any], hashes: dict[str, str]) -> None:
    """`data_dir` holds the input files the scores were computed from (by SHA-256): the report's
    cohort numbers (drift, follow-up, flow) come from it, so a cohort changed since scoring would
    describe other patients than the scores, even where every risk comes out the same."""
    if tables := changed_tables(manifest, hashes):
        raise ValueError(f"--data {data_dir} is not the cohort the scores were computed from (input tables changed "
                         f"since scoring: {', '.join(tables)}); give the folder the scores were computed from, as it "
                         "was then")


def reason_columns(columns) -> list[str]:
    """The reason sentence columns among `columns` (reason_1 … reason_N), in order."""
    return sorted((c for c in columns if c.startswith("reason_") and c[7:].isdigit()), key=lambda c: int(c[7:]))


def reason_count(scored: pl.DataFrame) -> int:
    """How many reasons the scores file holds per patient."""
    return len(reason_columns(scored.columns))


# What a clinic reads beside the risk: each must come out of the rescoring as it is in the file.
_SHOWN = ("phase", "risk_band", "protective_factor", "protective_feature")


def check_reproduced(scores: Path, data_dir: Path, scored: pl.DataFrame, rescored: pl.DataFrame,
                     since: str = "") -> None:
    """The file holds every patient `data_dir` scores, and each gets the file's risk (to 1e-9),
    band, phase and reasons again; `since` says what changed since scoring, for the refusal. A
    deleted row, or a band or reason edited with the risk kept, is refused like an edited risk."""
    file_ids = scored["patient_id"].cast(pl.String)
    missing = rescored.filter(~pl.col("patient_id").is_in(file_ids.implode()))
    if missing.height:
        raise ValueError(f"--scores {scores} lacks {missing.height:,} patient(s) that --data {data_dir} scores as of "
                         f"the same date (e.g. {missing['patient_id'][0]}): rows were removed from the file")
    reasons = [c + suffix for c in reason_columns(scored.columns) for suffix in ("", "_feature")]
    shown = [c for c in (*_SHOWN, *reasons) if c in scored.columns and c in rescored.columns]
    now = rescored.select("patient_id", pl.col("risk_30d").alias("_now"),
                          *(pl.col(c).alias(f"_now_{c}") for c in shown))
    file = scored.select(pl.col("patient_id").cast(pl.String), pl.col("risk_30d").cast(pl.Float64), *shown)
    joined = file.join(now, on="patient_id", how="left", maintain_order="left")

    def text(c: str) -> pl.Expr:
        return pl.col(c).cast(pl.String).fill_null("")

    differs = [pl.col("_now").is_null() | ((pl.col("risk_30d") - pl.col("_now")).abs() > 1e-9),
               *(text(c) != text(f"_now_{c}") for c in shown)]
    off = joined.filter(pl.any_horizontal(differs))
    if off.height:
        first = off.row(0, named=True)
        if first["_now"] is None:
            what = f"{first['risk_30d']:.4f} in the file, not scored now"
        elif abs(first["risk_30d"] - first["_now"]) > 1e-9:
            what = f"{first['risk_30d']:.4f} in the file, {first['_now']:.4f} now"
        else:
            what = ", ".join(c for c in shown if (first[c] or "") != (first[f"_now_{c}"] or "")) + " differ"
        raise ValueError(
            f"--data {data_dir} does not reproduce --scores {scores}: {off.height:,} of {joined.height:,} patient(s) "
            f"get another risk, band or reason, or none (e.g. {first['patient_id']}: {what}; "
            f"{since or 'see the scoring manifest'}); give the folder the scores were computed from, as it was "
            "then, with the packages of the scoring run"
        )


def check_evaluated_model(run_id: str, tags: dict[str, Any], reviewed: dict[str, str]) -> None:
    """An `--evaluation` run is of the audited model (the same model run: registered or not), not of
    another one."""
    if str(tags.get("model_run_id")) != reviewed["training_run_id"]:
        registered = reviewed["model_name"] not in (None, "None") and reviewed["model_version"] != "unregistered"
        audited = f"models:/{reviewed['model_name']}/{reviewed['model_version']}" if registered else "model folder"
        raise ValueError(
            f"--evaluation {run_id} evaluates {evaluated_model(tags)}, not the audited {audited}: give --model "
            f"{evaluated_model(tags)} to audit the evaluated model"
        )
