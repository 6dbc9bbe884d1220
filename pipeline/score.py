"""`relapse score`: a clinic's cohort as of a date → calibrated 30-day risk with reasons.

read (in patient batches) → feature groups the input lacks → validate → as-of features → risk,
bands, SHAP reasons → stage every output beside its destination → log the run to MLflow (no
identifiers in clear) → publish scores, SHAP, rejects and the manifest (last) together
(`pipeline.publish`): a failure, a lost MLflow server or a signal before that leaves the previous
outputs untouched.

Two outcomes write nothing: a required feature group missing from the input (`MissingGroups`;
otherwise a missing group is a warning and the manifest's `missing_groups`, as is a smaller input
the model reads and the data lack, a patients column, an instrument or an optional measurement
column: `unread_inputs`), and
nobody scorable on the as-of date (`NothingToScore`, with the counts by exclusion reason) unless
`allow_empty`.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import polars as pl

from models.bundle import MANIFEST as BUNDLE_MANIFEST
from pipeline import artifacts, io, publish, shard_files, tracking
from pipeline.config import Config
from pipeline.contract import validate
from pipeline.plausibility import RecordingFindings, implausible_values
from pipeline.problems import ContractViolation, OnInvalid, Problem, Validated, merge_problems
from pipeline.serving import EXCLUSIONS, BatchRows, LoadedModel, explain_rows, load_model, scoring_rows
from pipeline.shard_files import PatientBatches

PACKAGES = ("relapse-risk", "polars", "xgboost", "numpy", "mlflow")

Progress = Callable[[int, int], None]


EXCLUSION_WORDS = {
    "not_yet_in_treatment": "not yet in treatment",
    "relapsed": "already relapsed",
    "past_last_phase": "past the last phase",
}


class MissingGroups(ValueError):
    """Feature groups the run requires are absent from the scoring data."""


class NothingToScore(ValueError):
    """No patient is scorable on the as-of date."""


@dataclass
class ScoreSummary:
    output: Path
    manifest: dict[str, Any]
    rejects: Path | None
    scoring_run_id: str
    removed: Path | None = None  # the replaced scores' SHAP file, when this run wrote none there


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
    require_groups: Collection[str] | None = None,
    allow_empty: bool = False,
) -> ScoreSummary:
    """Score the cohort in `data_dir` as of `as_of`; `require_groups` (default: the config's)
    turns a missing feature group into `MissingGroups`; an empty result raises `NothingToScore`
    unless `allow_empty`. Both are raised before anything is written or logged."""
    started = time.perf_counter()
    out = Path(out)
    for path in (out, shap_out):
        if path is not None and path.suffix not in (".parquet", ".csv"):
            raise ValueError(f"{path}: output must end in .parquet or .csv")
    n_reasons = config.scoring.reasons if n_reasons is None else n_reasons
    replaced_shap = _replaced_shap(out, shap_out)
    owned = [*_outputs(out, shap_out), *([replaced_shap] if replaced_shap else [])]
    io.refuse_overwriting_inputs(data_dir, [*owned, artifacts.manifest_path(out)])
    tracking.check_reachable(config.mlflow)  # an unreachable store fails before any work
    with (
        publish.Publication(owned, marker=artifacts.manifest_path(out)) as pub,
        tempfile.TemporaryDirectory(prefix="relapse-score-") as tmp,
    ):
        work = Path(tmp)
        batches, model = _split_and_load(data_dir, model_uri, work, config)
        missing, unread, never_reasons = model.unavailable(batches.scans())
        _check_required(missing, config.scoring.require_groups if require_groups is None else require_groups)
        done = _score_batches(
            batches, model, as_of, n_reasons, config, on_invalid, never_reasons, work, shap_out is not None, progress
        )
        checked = Validated({}, merge_problems(done.problems))
        if checked.blocking(on_invalid):
            raise ContractViolation(checked.blocking(on_invalid))
        risks = _risks(done.parts)
        rejects = checked.rejects().sort("table", "row")
        if risks.height == 0 and not allow_empty:
            in_input = batches.row_counts["patients"] - done.empty["patients"]
            raise NothingToScore(_nobody_message(in_input, as_of, done.exclusions, rejects))
        outputs = {out: done.parts} if shap_out is None else {out: done.parts, shap_out: done.shap_parts}
        _gather_outputs(pub, batches, outputs)
        rejects_path = None
        if on_invalid == OnInvalid.quarantine:
            rejects_path = artifacts.rejects_path(out)
            pub.write(rejects_path, lambda p: io.write_frame(rejects, p))
        manifest = _manifest(
            batches, model, config, as_of, risks.height, done.exclusions, rejects, done.empty, out, shap_out,
            rejects_path, pub.stage,
        )
        manifest["missing_groups"] = missing
        manifest["unread_inputs"] = unread
        manifest["implausible_values"] = {label: {"values": int(n), "first": first}
                                          for label, (n, first) in done.implausible.items()}
        manifest["beat_recordings"] = done.recordings.to_dict()
        manifest["patients"]["scored_past_last_followup"] = done.past_followup
        manifest["patients"]["beyond_trained_days"] = {
            p: {"patients": n, "latest_day": latest, "last_trained_day": trained}
            for p, (n, latest, trained) in sorted(done.beyond.items())}
        record = _record(config, manifest, risks, out)
        run_id = tracking.guarded(
            config.mlflow, "logging the scoring run", lambda: tracking.log_scoring(config.mlflow, record)
        )
        manifest["scoring_run_id"] = run_id
        manifest["duration_s"] = round(time.perf_counter() - started, 3)
        pub.write(artifacts.manifest_path(out), lambda p: io.write_json(manifest, p))
        pub.commit()  # scores, SHAP, rejects, then the manifest: all published or none
    return ScoreSummary(out, manifest, rejects_path, run_id, replaced_shap)


def _split_and_load(data_dir: Path, model_uri: str, work: Path, config: Config) -> tuple[PatientBatches, LoadedModel]:
    """The input split into patient batches and the model, loaded (Python, mostly) in a thread
    while Polars splits; an input error is raised first."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="relapse-model") as pool:
        loading = pool.submit(load_model, model_uri, work / "model", config.mlflow)
        batches = shard_files.split_by_patient(data_dir, config.scoring.batch_patients, work / "input")
        return batches, loading.result()


@dataclass
class _Scored:
    """What the batches of a scoring run left: work files and the counts the manifest reports."""

    parts: list[Path]
    shap_parts: list[Path]
    problems: list[Problem]
    exclusions: dict[str, int]  # patients not scored, by reason
    empty: dict[str, int]  # empty records skipped, by table
    implausible: dict[str, list[float]] = field(default_factory=dict)  # label -> [count, first value]
    recordings: RecordingFindings = RecordingFindings()
    beyond: dict[str, list[int]] = field(default_factory=dict)  # phase -> [patients, latest day, last trained day]
    past_followup: int = 0  # scored patients whose last follow-up is before the as-of date


def _score_batches(
    batches: PatientBatches,
    model: LoadedModel,
    as_of: date,
    n_reasons: int,
    config: Config,
    on_invalid: OnInvalid,
    unavailable: tuple[str, ...],
    work: Path,
    with_shap: bool,
    progress: Progress,
) -> _Scored:
    """Validate, build the features of, explain and write every batch: each batch is validated
    and its features built in a thread while the batch before is explained and written
    (`PatientBatches.each_ahead`)."""
    done = _Scored([], [], [], dict.fromkeys(EXCLUSIONS, 0), dict.fromkeys(batches.paths, 0))

    def prepare(raw: dict[str, pl.DataFrame]) -> tuple[Validated, BatchRows | None, dict, RecordingFindings, int]:
        checked = validate(raw, required=("patients",))
        implausible, recordings = implausible_values(checked.tables), RecordingFindings.of(checked.tables)
        if checked.blocking(on_invalid):
            return checked, None, implausible, recordings, 0
        tables = io.drop_row_index(checked.tables)
        rows = scoring_rows(model, tables, as_of)
        return checked, rows, implausible, recordings, _past_followup(rows.rows, tables.get("outcomes"), as_of)

    with closing(batches.each_ahead(prepare)) as prepared:  # closed at once on an error or a signal
        for index, (checked, rows, implausible, recordings, past) in enumerate(prepared):
            done.problems += checked.problems
            done.recordings += recordings
            done.past_followup += past
            for label, (count, first) in implausible.items():
                done.implausible.setdefault(label, [0, first])[0] += count
            for table, empty_rows in checked.empty_rows.items():
                done.empty[table] += len(empty_rows)
            if rows is not None:
                bands, min_effect = config.scoring.risk_bands, config.scoring.min_effect
                batch = explain_rows(model, rows, n_reasons, bands, min_effect, unavailable)
                for phase, (n, latest, trained) in model.beyond_trained_days(batch.scored).items():
                    seen = done.beyond.setdefault(phase, [0, latest, trained])
                    seen[0], seen[1] = seen[0] + n, max(seen[1], latest)
                for reason, n in batch.excluded.items():
                    done.exclusions[reason] += n
                done.parts.append(_write_part(batch.scored, work / "parts", index, batches.n_batches))
                if with_shap:
                    done.shap_parts.append(_write_part(batch.shap, work / "shap", index, batches.n_batches))
            progress(index + 1, batches.n_batches)
    return done


def _past_followup(rows: pl.DataFrame, outcomes: pl.DataFrame | None, as_of: date) -> int:
    """Scored patients whose last follow-up (last contact) is before the as-of date: scored on what
    was known then, they may have left treatment since (the model never saw anyone after drop-out)."""
    if outcomes is None or rows.height == 0:
        return 0
    gone = outcomes.filter(pl.col("last_followup_date") < as_of).select("patient_id")
    return rows.select("patient_id").unique().join(gone, on="patient_id", how="semi").height


def _gather_outputs(pub: publish.Publication, batches: PatientBatches, outputs: dict[Path, list[Path]]) -> None:
    """Each output gathered from its batches' work files in patient order, staged by `pub`; the
    outputs are written side by side, one thread each (mostly Polars and Arrow, GIL released)."""
    def gather(files: list[Path]) -> Callable[[Path], None]:
        return lambda p: shard_files.write_in_order(files, batches.bounds, ("patient_id",), p)

    with ThreadPoolExecutor(max_workers=len(outputs), thread_name_prefix="relapse-output") as pool:
        for written in [pool.submit(pub.write, path, gather(files)) for path, files in outputs.items()]:
            written.result()


def _check_required(missing: dict[str, str], required: Collection[str]) -> None:
    refused = {g: why for g, why in missing.items() if g in set(required)}
    if refused:
        shown = "; ".join(f"{g} ({why})" for g, why in refused.items())
        raise MissingGroups(f"required feature group(s) missing from the scoring data: {shown}; nothing written")


def _nobody_message(n_patients: int, as_of: date, exclusions: dict[str, int], rejects: pl.DataFrame) -> str:
    """ "0 of 2,000 patients at risk on 2030-01-01: 2,000 past the last phase; nothing written"."""
    counts = [f"{n:,} {EXCLUSION_WORDS.get(k, k)}" for k, n in exclusions.items() if n]
    rejected = rejects.filter(pl.col("table") == "patients").height if rejects.height else 0
    if rejected:
        counts.append(f"{rejected:,} rejected")
    why = ", ".join(counts) or "no patient rows"
    return (
        f"0 of {n_patients:,} patients at risk on {as_of.isoformat()}: {why}; nothing written "
        "(--allow-empty writes the empty result)"
    )


def _outputs(out: Path, shap_out: Path | None) -> list[Path]:
    """Every file a scoring job owns: its rejects file is removed when a new run has none."""
    return [out, artifacts.rejects_path(out), *([shap_out] if shap_out is not None else [])]


def _replaced_shap(out: Path, shap_out: Path | None) -> Path | None:
    """The SHAP file of the scores this run replaces at `out`, when this run writes none there.

    The replaced manifest is the only record of which scores that file explains: left beside the
    new scores, nothing would say it is older, so it is removed with the commit, like a stale
    rejects file. Only when its bytes are still those the manifest recorded: a file edited or
    replaced since, or a relative path that names another file from this folder, is left alone.
    """
    try:
        entry = io.read_json(artifacts.manifest_path(out))["shap_output"]
        path, digest = Path(entry["file"]), str(entry["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if shap_out is not None and path.absolute() == Path(shap_out).absolute():
        return None
    if not path.is_file() or io.file_sha256(path) != digest:
        return None
    return path


def _write_part(frame: pl.DataFrame, folder: Path, index: int, ranges: int) -> Path:
    """One batch's rows as a work file sorted by patient, ready for the range-by-range write."""
    return shard_files.write_shard_output(frame.sort("patient_id"), folder, index, ranges, compression="uncompressed")


def _risks(parts: list[Path]) -> pl.DataFrame:
    """Every scored row's risk and band, in patient order (the order the run's statistics are
    computed in); the few columns the run logs, not the whole result."""
    return pl.scan_parquet(parts).select("patient_id", "risk_30d", "risk_band").sort("patient_id").collect()


def _hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _manifest(
    batches,
    model: LoadedModel,
    config: Config,
    as_of,
    scored: int,
    exclusions,
    rejects,
    empty: dict[str, int],
    out,
    shap_out,
    rejects_path,
    staged: Callable[[Path], Path] = lambda p: p,
):
    """The scoring manifest; output hashes are read from where the files are staged (`staged`).
    Per table, `rows` counts the file's records: `rows_used` + `rows_rejected` + `rows_empty`
    (records with no value, skipped); `in_input` counts the patients, empty records left out."""
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
                "rows_empty": empty[t],
                "rows_used": batches.row_counts[t] - rejected.get(t, 0) - empty[t],
            }
            for t, p in sorted(batches.paths.items())
        },
        "patients": {
            "in_input": batches.row_counts["patients"] - empty["patients"],
            "scored": scored,
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
        "output": {"file": str(out), "sha256": io.file_sha256(staged(out)), "rows": scored},
    }
    if shap_out is not None:
        manifest["shap_output"] = {"file": str(shap_out), "sha256": io.file_sha256(staged(shap_out))}
    if rejects_path is not None:
        manifest["rejects"] = {
            "file": str(rejects_path),
            "sha256": io.file_sha256(staged(rejects_path)),
            "rows": rejects.height,
        }
    return manifest


def _record(config: Config, manifest: dict, risks: pl.DataFrame, out: Path) -> tracking.ScoringRecord:
    """What the scoring run logs: as-of, model, counts, risk distribution, the manifest (no ids)."""
    metrics = {
        "patients_scored": risks.height,
        "patients_rejected": manifest["patients"]["rejected"],
        **{f"excluded_{k}": v for k, v in manifest["patients"]["excluded"].items()},
    }
    if risks.height:
        risk = risks["risk_30d"]
        metrics |= {
            "risk_mean": risk.mean(),
            **{f"risk_p{q}": risk.quantile(q / 100) for q in (10, 50, 90)},
            **{f"band_{b}": int((risks["risk_band"] == b).sum()) for b in config.scoring.risk_bands},
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
