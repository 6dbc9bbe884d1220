"""report.json: every number the audit report shows, as one machine-readable document.

Pure: the report context (see `pipeline.reports.render`) in, a JSON-ready dict out, described by
docs/report.schema.json (`SCHEMA_VERSION` names its version). Non-finite numbers become null.
Patient pages carry the identifier exactly as the HTML shows it (a keyed hash unless the audit
was run with --include-ids).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from pipeline.reports.tripod import tripod_checklist

SCHEMA_VERSION = "1.0"
POOLED = "pooled"


def _clean(value: Any) -> Any:
    """JSON-ready: NaN/inf → null, numpy scalars → Python, frames → lists of rows."""
    if isinstance(value, pl.DataFrame):
        return _clean(value.to_dicts())
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _metrics_by_model(metrics: pl.DataFrame, phase: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in metrics.filter(pl.col("phase") == phase).iter_rows(named=True):
        out.setdefault(r["model"], {})[r["metric"]] = {
            "estimate": r["estimate"], "lo": r.get("lo"), "hi": r.get("hi"), "in_sample": bool(r.get("in_sample")),
        }
    return out


def _phases(context: Mapping, metrics: pl.DataFrame | None) -> list[dict]:
    card = context.get("model_card") or {}
    counts = {r["phase"]: r for r in card.get("events_per_phase") or []}
    fallback = {f["phase"]: f for f in card.get("fallback_phases") or []}
    names = [p["name"] for p in card.get("phases") or []] or list(counts)
    out = []
    for phase in names:
        c = counts.get(phase, {})
        by_model = _metrics_by_model(metrics, phase) if metrics is not None else {}
        kind = ("constant_rate" if phase in fallback or c.get("model") == "constant_rate"
                else "no_model" if c.get("model") == "no_model" else "xgboost")
        out.append({
            "phase": phase,
            "model_kind": kind,
            "in_sample": kind == "constant_rate",
            "fallback_rate": fallback.get(phase, {}).get("rate"),
            "patients": c.get("patients"),
            "event_patients": c.get("event_patients"),
            "rows": c.get("rows"),
            "event_rows": c.get("events"),
            "metrics": by_model.get(kind, {}),
            "comparators": {m: v for m, v in by_model.items() if m != kind},
        })
    return out


def _pooled(context: Mapping, metrics: pl.DataFrame | None, phases: list[dict]) -> dict:
    by_model = _metrics_by_model(metrics, POOLED) if metrics is not None else {}
    return {
        "phases_included": [p["phase"] for p in phases if p["model_kind"] == "xgboost"],
        "metrics": by_model.get("xgboost", {}),
        "comparators": {m: v for m, v in by_model.items() if m != "xgboost"},
    }


def _patients(context: Mapping) -> list[dict]:
    as_of = (context.get("scoring") or {}).get("as_of")
    keys = ("id", "risk", "risk_band", "phase", "day", "reasons", "base_value")
    return [{**{k: p.get(k) for k in keys}, "as_of": p.get("as_of") or as_of} for p in context.get("patients") or []]


def _evaluation(evaluation: Mapping | None) -> dict | None:
    """The optional external-validation section: the evaluation run's identity and its
    {phase: {metric: [estimate, lo, hi]}} as estimates; its figures stay in the HTML."""
    if not evaluation:
        return None
    tags = evaluation.get("tags") or {}
    return {
        "run_id": evaluation["run_id"],
        **{k: tags.get(k) for k in ("validation", "model_name", "model_version", "data_fingerprint")},
        "phases": {
            phase: {name: dict(zip(("estimate", "lo", "hi"), values, strict=True)) for name, values in metrics.items()}
            for phase, metrics in (evaluation.get("metrics") or {}).items()
        },
    }


def report_document(context: Mapping) -> dict:
    """The report.json document for a report context (see docs/report.schema.json)."""
    metrics = context.get("metrics")
    metrics = None if metrics is None else metrics if isinstance(metrics, pl.DataFrame) else pl.DataFrame(metrics)
    card = context.get("model_card") or {}
    phases = _phases(context, metrics)
    tripod = context.get("tripod") or tripod_checklist(context)
    document = {
        "schema_version": SCHEMA_VERSION,
        "title": context.get("title") or "Relapse-risk audit report",
        "generated_at": context.get("generated_at"),
        "synthetic": bool(context.get("synthetic")),
        "model": {k: card.get(k) for k in ("model_name", "model_version", "run_id")},
        "phases": phases,
        "pooled": _pooled(context, metrics, phases),
        "counts": {
            "training_data": card.get("training_data"),
            "participant_flow": card.get("participant_flow"),
            "sample_size": context.get("sample_size") or [],
        },
        "calibration": {ph: _clean(f) for ph, f in (context.get("calibration_bands") or {}).items()},
        "net_benefit": {ph: _clean(f) for ph, f in (context.get("net_benefit") or {}).items()},
        "subgroups": context.get("subgroups") if context.get("subgroups") is not None else [],
        "drift": context.get("drift") if context.get("drift") is not None else None,
        "out_of_range": context.get("out_of_range"),
        "tripod": [{k: t.get(k) for k in ("item", "topic", "status", "section", "answer")} for t in tripod],
        "scoring": context.get("scoring"),
        "evaluation": _evaluation(context.get("evaluation")),
        "patients": _patients(context),
        "id_note": context.get("id_note"),
    }
    return _clean(document)
