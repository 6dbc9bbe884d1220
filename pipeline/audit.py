"""`relapse audit` (the stage): gather a model's training run (and optionally a scoring run) into one
self-contained HTML report, and log it back to MLflow.

read (run artifacts, scores, data) → pure analysis → render → stage beside the destination → log
to MLflow → publish (`pipeline.publish`): a failure or a signal before that leaves the old report.
With `--scores`, `--data` must name the scored cohort's folder: drift and the per-patient
waterfalls need the feature values, which are rebuilt as of the scores' date with the same model.
The report explains the scores the clinic holds, or nothing: the scores file must be the one
`relapse score` wrote (its SHA-256 in the manifest), the model is the one that wrote them (by
default its registered version from the manifest, not whichever is champion now; a `--model`
that is another bundle is refused), and rescoring `--data` must give every patient in the file
the risk the file holds. An `--evaluation` run must evaluate the audited version.

Beside the HTML the stage writes `report.json` (same stem, `.json`): every number the report
shows, in the documented format of docs/report.schema.json, logged with the HTML.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.registry import feature_registry
from features.spec import FeatureSpec
from pipeline import artifacts, io, publish, tracking
from pipeline.audit_checks import (
    check_evaluated_model,
    check_logged_manifest,
    check_reproduced,
    check_same_inputs,
    check_same_model,
    check_scores_file,
    evaluated_model,
    reason_columns,
    reason_count,
    scores_model,
    since_scoring,
)
from pipeline.config import Config
from pipeline.privacy import hash_key_from_env, keyed_hash
from pipeline.problems import OnInvalid
from pipeline.reports.analysis import out_of_range, subgroup_table
from pipeline.reports.document import report_document
from pipeline.reports.drift import drift_table, under_follow_up
from pipeline.reports.intervals import calibration_bands, net_benefit_intervals
from pipeline.reports.render import find_external_references, render_report
from pipeline.reports.sample_size import phase_sample_sizes
from pipeline.reports.tripod import tripod_checklist
from pipeline.serving import load_model, score_tables

INTENDED_USE = (
    "Estimate each patient's probability of relapse in the next 30 days, in the recovery phase "
    "they are in, to help clinicians prioritise contact and time phase-specific therapy "
    "(CBT, mindfulness-based relapse prevention, EMDR). Decision support only: never a sole "
    "decision maker; every score is read with the clinician's own assessment."
)
INTENDED_USERS = "Clinicians and care teams in ketamine-addiction treatment services; auditors; data scientists."
MISSING_DATA = (
    "Nothing is imputed: a value not recorded by the landmark date stays missing and XGBoost learns "
    "a default direction for it; the logistic baseline uses median imputation with missing-value "
    "indicators. Absent tables remove their whole feature group."
)
EXPLANATION_SCALE = (
    "Reasons are exact TreeSHAP contributions in log-odds of the phase model's raw output; with the "
    "base value they add up to the model's margin. 'Effect' is the change in the raw probability "
    "from that one contribution. Calibration maps the raw probability to the reported risk and is "
    "monotone, so it never reverses a reason's direction."
)
LIMITATIONS = [
    "Validated internally only (patient-grouped cross-validation); external validation in each "
    "clinic's population is needed before use.",
    "Landmark rows of one patient are correlated; confidence intervals resample patients to account for it.",
    "Drop-out is handled by inverse probability of censoring weights, which assume censoring "
    "is explained by time alone.",
    "Small subgroups are marked 'too small to judge' rather than reported as equitable.",
    "Feature groups absent from the training data cannot inform scores even when a clinic records them later.",
]


@dataclass
class AuditResult:
    path: Path
    json_path: Path  # report.json beside the HTML
    logged_to_run: str  # the audit's own run, in the `<experiment>-audit` experiment
    synthetic: bool
    patients: int
    reviewed: dict[str, str]  # the audit run's tags: model name/version, training and scoring run ids


def check_inputs(out: Path, scores: Path | None, data_dir: Path | None, patients: Sequence[str] = ()) -> None:
    """Refuse missing or unusable inputs before anything is downloaded or written (a clear `ValueError`)."""
    if scores is not None and data_dir is None:
        raise ValueError("--scores needs --data: the scored cohort's folder, to rebuild its feature values")
    if scores is None and (data_dir is not None or patients):
        given = " and ".join(o for o, v in (("--data", data_dir), ("--patient", patients)) if v)
        raise ValueError(f"{given} need{'s' if ' and ' not in given else ''} --scores: the drift section and the "
                         "patient pages are of a scored cohort (a scores file from `relapse score`)")
    if Path(out).suffix != ".html":
        raise ValueError(f"{out}: the report must be an .html file")
    if scores is not None:
        if not Path(scores).is_file():
            raise ValueError(f"--scores {scores}: file not found")
        manifest = artifacts.manifest_path(scores)
        if not manifest.is_file():
            raise ValueError(
                f"--scores {scores}: no manifest {manifest.name} beside it; give a file written by `relapse score`"
            )
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ValueError(f"--data {data_dir}: folder not found")


def audit(
    config: Config,
    out: Path,
    model_uri: str | None = None,
    scores: Path | None = None,
    data_dir: Path | None = None,
    patient_ids: list[str] | None = None,
    include_ids: bool = False,
    top_patients: int = 10,
    evaluation_run: str | None = None,
) -> AuditResult:
    """Write the report to `out` and log it to a new run of the audit experiment; the training and
    scoring runs it reviews are read, never written (their ids are tags of the audit run).

    `model_uri` None: the model that wrote `scores`, else the one `evaluation_run` evaluated, else
    the champion."""
    check_inputs(out, scores, data_dir)
    key = hash_key_from_env()
    manifest = _read_manifest(scores) if scores is not None else None
    if manifest is not None:
        check_scores_file(scores, manifest)
    tracking.check_reachable(config.mlflow)  # an unreachable store fails before any work
    outputs = [Path(out), report_json_path(Path(out))]
    with publish.Publication(outputs) as pub, tempfile.TemporaryDirectory(prefix="relapse-audit-") as tmp:
        work = Path(tmp)
        evaluation = evaluation_context(config, evaluation_run, work / "evaluation") if evaluation_run else None
        if model_uri is None:
            model_uri = (scores_model(scores, manifest) if manifest else evaluated_model(evaluation["tags"])
                         if evaluation else f"models:/{config.mlflow.registered_model}@champion")
        model = load_model(model_uri, work / "model", config.mlflow)
        if manifest is not None:
            check_logged_manifest(scores, manifest, config.mlflow, work / "scoring-run")
            check_same_model(scores, manifest, model, model_uri)
        if model.resolved.run_id is None:
            raise ValueError(f"{model_uri}: no MLflow run behind this model; the audit reads the training run")
        run_dir = tracking.download_run_artifacts(config.mlflow, model.resolved.run_id, work / "run")
        context = _training_context(config, model, run_dir, key.label)
        reviewed = {
            "model_name": model.name or "",
            "model_version": model.resolved.version or "unregistered",
            "model_uri": model_uri,
            "training_run_id": model.resolved.run_id,
        }
        if manifest is not None:
            context |= _scoring_context(
                config, model, run_dir, scores, manifest, data_dir, patient_ids, include_ids, key, top_patients
            )
            reviewed["scoring_run_id"] = manifest.get("scoring_run_id") or "none"
            reviewed["scores_as_of"] = str(manifest.get("as_of"))
        if evaluation is not None:
            context["evaluation"] = evaluation
            check_evaluated_model(evaluation_run, evaluation["tags"], reviewed)
            reviewed["evaluation_run_id"] = evaluation_run
        context["tripod"] = tripod_checklist(context)
        html = render_report(context)
        if find_external_references(html):
            raise RuntimeError("the report would load external resources; refusing to write it")
        document = json.dumps(report_document(context), indent=1, ensure_ascii=False, allow_nan=False)
        json_path = report_json_path(Path(out))
        staged_json = pub.write(json_path, lambda t: t.write_text(document + "\n", encoding="utf-8"))
        staged = pub.write(Path(out), lambda t: t.write_text(html, encoding="utf-8"))
        reviewed["synthetic_data"] = str(bool(context.get("synthetic"))).lower()
        run_name = f"audit-{reviewed['model_name']}-v{reviewed['model_version']}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        audit_run = tracking.guarded(  # logged from staging (same file names): published once MLflow holds them
            config.mlflow,
            "logging the report",
            lambda: tracking.log_audit(config.mlflow, run_name, reviewed, staged, extra=[staged_json]),
        )
        pub.commit()
    return AuditResult(
        Path(out), json_path, audit_run, bool(context.get("synthetic")), len(context.get("patients", [])), reviewed
    )


def _read_manifest(scores: Path) -> dict[str, Any]:
    try:
        manifest = io.read_json(artifacts.manifest_path(scores))
    except (OSError, ValueError) as exc:
        raise ValueError(f"--scores {scores}: cannot read its manifest ({exc})") from None
    if not isinstance(manifest, dict) or "as_of" not in manifest:
        raise ValueError(f"--scores {scores}: its manifest has no 'as_of'; give a file written by `relapse score`")
    return manifest


def report_json_path(html: Path) -> Path:
    """report.json beside report.html: the same name with `.json`."""
    return Path(html).with_suffix(".json")


def _training_context(config: Config, model, run_dir: Path, id_label: str) -> dict[str, Any]:
    card = io.read_json(run_dir / artifacts.MODEL_CARD)
    metrics = pl.read_csv(run_dir / artifacts.METRICS)
    oof = pl.read_parquet(run_dir / artifacts.OOF_PREDICTIONS)
    counts = pl.read_csv(run_dir / artifacts.PHASE_COUNTS)
    names = set(model.bundle.feature_names)  # the model's inputs, not label, weights or ids
    registry = {n: i for n, i in feature_registry(model.spec).items() if n in names}
    r = model.resolved
    model_card = card | {
        "model_name": model.name,
        "model_version": r.version or "unregistered",
        "run_id": r.run_id,
        "intended_use": INTENDED_USE,
        "intended_users": INTENDED_USERS,
        "features": [
            {"name": n, "group": i.group, "unit": i.unit, "description": i.description} for n, i in registry.items()
        ],
        "missing_data": MISSING_DATA,
        "calibration": f"{card['calibration']} regression fitted on out-of-fold predictions; "
        "evaluation uses cross-fitted calibration",
        "explanation_scale": EXPLANATION_SCALE,
        "limitations": LIMITATIONS,
        "outcome": f"Relapse on one of days t+1..t+{card['horizon_days']} after a landmark day t, "
        "among patients at risk at t.",
        "validation": "Patient-grouped K-fold cross-validation; 95% CIs from a patient-level bootstrap.",
        "model_type": "Gradient-boosted trees (XGBoost; shallow, regularised): a booster shared by every recovery "
        "phase, to which a phase with enough patients with an event adds trees of its own (the others use the shared "
        "booster alone), then a calibrator per phase; a phase with too few events in all gets a constant rate. "
        "Baseline: penalised logistic regression on the same features.",
    }
    if lineage := recalibration_card(model.bundle):
        model_card["recalibration"] = lineage
    phase_order = [p["name"] for p in card["phases"]]
    fallback = [f["phase"] for f in card.get("fallback_phases") or []]
    pooled = oof.filter(~pl.col("phase").is_in(fallback))
    parts = {ph: oof.filter(pl.col("phase") == ph) for ph in phase_order} | {"pooled": pooled}
    columns = (("y", "label"), ("p", "risk"), ("w", "ipcw_weight"), ("groups", "patient_id"))
    calibration = {ph: {k: part[c].to_numpy() for k, c in columns} for ph, part in parts.items() if part.height}
    n_boot, seed = config.model.bootstrap_samples, config.model.seed
    thresholds = [t for t in config.scoring.risk_bands.values() if 0 < t < 1]
    return {
        "title": "Relapse-risk audit report",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "synthetic": bool(card.get("synthetic")),
        "model_card": model_card,
        "metrics": metrics,
        "calibration": calibration,
        "calibration_bands": {
            ph: calibration_bands(d["y"], d["p"], d["w"], d["groups"], n_boot=n_boot, seed=seed)
            for ph, d in calibration.items()
        },
        "net_benefit": {
            ph: net_benefit_intervals(d["y"], d["p"], d["w"], d["groups"], thresholds, n_boot, seed)
            for ph, d in calibration.items()
        },
        "sample_size": phase_sample_sizes(counts.to_dicts(), len(model.bundle.feature_names)),
        "subgroups": subgroup_table(oof, n_boot=n_boot, seed=seed),
        "shap": _shap_context(run_dir, model.spec),
        "id_note": f"keyed hash (HMAC-SHA256, {id_label})",
    }


def recalibration_card(bundle) -> dict[str, Any] | None:
    """A recalibrated bundle's lineage for the model card (TRIPOD+AI 12f): parent version, local
    data fingerprint, the method chosen per phase in the latest recalibration, each phase's
    composed layer (a, b), the earlier recalibrations (`earlier`, nested) and the trained version
    whose boosters and out-of-fold estimates every version of the chain keeps; None for a bundle
    that was never recalibrated."""
    lineage = bundle.metadata.get("recalibration")
    if not lineage:
        return None
    layers = {p: {"method": r.method, "a": r.a, "b": r.b} for p, r in bundle.recalibration.items()}
    first = lineage
    while first.get("earlier"):
        first = first["earlier"]
    return {**lineage, "layers": layers, "trained_version": first.get("parent_version")}


def _shap_context(run_dir: Path, spec: FeatureSpec) -> dict[str, Any]:
    path = run_dir / artifacts.SHAP_SAMPLE
    if not path.is_file():
        return {}
    sample = pl.read_parquet(path)
    names = list(spec.feature_names)
    registry = feature_registry(spec)
    labels = [f"{n} ({registry[n].unit})" if n in registry and registry[n].unit else n for n in names]
    return {
        phase: {
            "values": part.select([f"shap__{n}" for n in names]).to_numpy(),
            "features": part.select(names).cast(pl.Float64).to_numpy(),
            "feature_names": labels,  # with units, as the figures label them
        }
        for (phase,), part in sample.group_by("phase", maintain_order=True)
    }


def _scoring_context(
    config, model, run_dir, scores, manifest, data_dir, patient_ids, include_ids, key, top
) -> dict[str, Any]:
    as_of = date.fromisoformat(manifest["as_of"])
    scored = io.read_frame(scores)
    validated, paths = io.load_tables(data_dir, required=("patients",), on_invalid=OnInvalid.quarantine)
    tables = io.drop_row_index(validated.tables)
    hashes = io.hash_files(paths)
    check_same_inputs(data_dir, manifest, hashes)
    batch = score_tables(
        model,
        tables,
        as_of,
        reason_count(scored),  # as many reasons as the clinic's file holds
        config.scoring.risk_bands,
        config.scoring.min_effect,
    )
    check_reproduced(scores, data_dir, scored, batch.scored, since_scoring(manifest, hashes))
    profile = io.read_json(run_dir / artifacts.TRAINING_PROFILE)
    features = batch.features.drop("patient_id")
    # drift compares like with like: each phase's patients still under follow-up, at their days
    phased = batch.features.with_columns(batch.scored["phase"], batch.scored["day"])
    phased = phased.filter(pl.col("phase").is_not_null())
    followed = under_follow_up(phased, tables.get("outcomes"), as_of)
    chosen = patient_ids or scored.sort("risk_30d", descending=True)["patient_id"].head(top).to_list()
    unknown = sorted(set(chosen) - set(batch.scored["patient_id"].to_list()))
    if unknown:
        raise ValueError(f"patient(s) not scored as of {as_of}: {', '.join(unknown[:5])}")
    show = (lambda p: p) if include_ids else (lambda p: keyed_hash(p, key))
    return {
        "scoring": {
            "as_of": manifest["as_of"],
            "n_scored": manifest["patients"]["scored"],
            "n_excluded": sum(manifest["patients"]["excluded"].values()),
            "run_id": manifest.get("scoring_run_id"),
            "n_past_follow_up": phased.height - followed.height,
        },
        "drift": drift_table(profile, followed.drop("patient_id"))
        if "by_phase" in profile
        else None,
        "out_of_range": out_of_range(features),
        "patients": [
            _patient(batch, pid, show(pid), model.bundle.feature_names) | {"as_of": manifest["as_of"]}
            for pid in chosen
        ],
        "id_note": "patient identifiers in clear (--include-ids)"
        if include_ids
        else f"keyed hash (HMAC-SHA256, {key.label})",
    }


def _patient(batch, patient_id: str, shown: str, names: list[str]) -> dict[str, Any]:
    row = batch.scored.filter(pl.col("patient_id") == patient_id).row(0, named=True)
    shap = batch.shap.filter(pl.col("patient_id") == patient_id)
    values = batch.features.filter(pl.col("patient_id") == patient_id).select(names).cast(pl.Float64).to_numpy()[0]
    reasons = [row[c] for c in reason_columns(row) if row[c]]
    if row.get("protective_factor"):
        reasons.append(f"Protective: {row['protective_factor']}")
    return {
        "id": shown,
        "risk": row["risk_30d"],
        "risk_band": row["risk_band"],
        "phase": row["phase"],
        "day": row["day"],
        "reasons": reasons,
        "base_value": float(row["base_value"]),
        "feature_names": names,
        "shap_values": shap.select([f"shap__{n}" for n in names]).to_numpy()[0],
        "feature_values": np.asarray(values, dtype=np.float64),
    }


def evaluation_context(config: Config, run_id: str, dst: Path) -> dict[str, Any]:
    """An evaluation run of `relapse evaluate` for the report's optional external-validation
    section: its tags, per-phase metrics with CIs and calibration/decision figures (as data URIs)."""
    try:
        run_dir = tracking.download_run_artifacts(config.mlflow, run_id, dst)
        summary = io.read_json(run_dir / artifacts.EVALUATION_SUMMARY)
    except Exception as exc:  # noqa: BLE001  (MLflow raises many types for an unknown run)
        raise ValueError(f"--evaluation {run_id}: not an evaluation run of this store ({exc})") from None
    figures = {}
    for phase in summary["metrics"]:
        figures[phase] = [io.png_data_uri(run_dir / name) for name in artifacts.evaluation_figure_names(phase)
                          if (run_dir / name).is_file()]
    return {"run_id": run_id, "tags": summary["tags"], "metrics": summary["metrics"], "figures": figures}
