"""Render the audit report: one self-contained HTML string from a plain `context` dict.

Styles sit in a <style> tag and figures are base64 PNG data URIs: the file opens offline and
loads nothing (no fonts, scripts, CDNs or remote images). Text from the context is escaped and
any URL in it is defanged ("http[:]//host") so no link can be followed from the report.

The context (all keys optional unless marked; arrays are anything `numpy.asarray` accepts)::

    {
      "title": str,                       # default "Relapse-risk audit report"
      "generated_at": str,                # shown in the header, e.g. an ISO-8601 timestamp
      "synthetic": bool,                  # True: a prominent synthetic-data banner
      "model_card": {                     # required
        "model_name": str, "model_version": str, "run_id": str,
        "fallback_phases": [{"phase": str, "rate": float, "reason": str}],  # a banner each
        "participant_flow": dict,         # from reports.cohort.participant_flow (TRIPOD 20a)
        "intended_use": str, "intended_users": str,
        "training_data": {"source": str, "fingerprint": str, "date_start": str,
                          "date_end": str, "n_patients": int},
        "events_per_phase": [{"phase": str, "model": str, "patients": int, "event_patients": int,
                              "rows": int, "events": int}],  # events = event rows
        "phases": [{"name": str, "start_day": int, "end_day": int}],  # fixes the phase order
        "horizon_days": int, "landmark_spacing_days": int,
        "feature_groups_used": [str], "feature_groups_absent": [str],
        "features": [{"name": str, "group": str, "unit": str, "description": str}],
        "missing_data": str, "calibration": str, "explanation_scale": str,
        "limitations": [str],
        # further TRIPOD+AI answers, free text; absent ones read "manual" in the checklist:
        "background", "objectives", "setting", "eligibility", "treatments",
        "data_preparation", "outcome", "sample_size", "validation", "predictor_handling",
        "model_type", "heterogeneity", "class_imbalance", "fairness", "model_output",
        "health_inequalities", "code", "data_sharing", "characteristics",
        "heterogeneity_results", "updating_results",
        "recalibration": {"parent_version": str, "data_fingerprint": str, "methods": {phase: str},
                          "layers": {phase: {"method": str, "a": float, "b": float}},  # 12f
                          "earlier": {...},  # the parent's own recalibration, the same keys, if any
                          "trained_version": str},  # the version trained, first of the chain
      },
      "metrics": pl.DataFrame | list[dict],   # phase, model (xgboost|logistic|oracle),
                                              # metric, estimate, lo, hi (95% CI)
      "calibration": {phase: {"y": [n], "p": [n], "w": [n]}},  # out-of-fold label,
                                              # calibrated risk, IPCW weight (the model's)
      "decision_curves": {phase: pl.DataFrame},  # from analysis.decision_curve; computed
                                              # from "calibration" when absent
      "calibration_bands": {phase: pl.DataFrame},  # from intervals.calibration_bands
      "net_benefit": {phase: pl.DataFrame},   # from intervals.net_benefit_intervals (band thresholds)
      "sample_size": list[dict],              # from sample_size.phase_sample_sizes (TRIPOD item 10)
      "subgroups": pl.DataFrame,              # from analysis.subgroup_table
      "shap": {phase: {"values": [n, k], "features": [n, k], "feature_names": [k]}},
      "tripod": list[dict],                   # default: analysis.tripod_checklist(context)
      "scoring": {"as_of": str, "n_scored": int, "n_excluded": int, "run_id": str},
      "drift": pl.DataFrame,                  # from drift.drift_table, per phase (with scores)
      "out_of_range": pl.DataFrame,           # from analysis.out_of_range (with scores)
      "patients": [{"id": str,                # already hashed (pipeline.privacy.keyed_hash)
                    "risk": float, "risk_band": str, "phase": str, "day": int,
                    "reasons": [str], "base_value": float, "feature_names": [k],
                    "shap_values": [k], "feature_values": [k]}],
      "id_note": str,                         # how ids are shown, e.g. "keyed hash
                                              # (HMAC-SHA256, development key)"
    }
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from importlib import resources

import jinja2
import numpy as np
import polars as pl

from pipeline.reports import figures
from pipeline.reports.analysis import decision_curve, tripod_checklist

TEMPLATE = "report.html.j2"
MODEL_ORDER = ("xgboost", "constant_rate", "logistic", "oracle")
PHYSIOLOGICAL_PREFIXES = ("bdnf_", "hrv_")
URL_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(//)")


def defang(value):
    """Template finalizer: URLs in context text can be read but not followed or loaded."""
    if isinstance(value, str) and not value.startswith("data:image/png;base64,"):
        return URL_SCHEME.sub(r"\1[:]\2", value)
    return value


def fmt(value, digits: int = 3) -> str:
    """A number for tables; "—" for null or NaN."""
    if _missing(value):
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def with_interval(value, lo, hi, digits: int = 3) -> str:
    """ "0.111 (0.080–0.140)", or the estimate alone when there is no interval (a phase without an
    event has none: not one of zero width).

    >>> with_interval(0.1111, 0.08, 0.14), with_interval(0.1111, None, None)
    ('0.111 (0.080–0.140)', '0.111 (no interval)')
    """
    if _missing(lo) or _missing(hi):
        return fmt(value, digits) + ("" if _missing(value) else " (no interval)")
    return f"{fmt(value, digits)} ({fmt(lo, digits)}–{fmt(hi, digits)})"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _frame(value) -> pl.DataFrame | None:
    if value is None:
        return None
    return value if isinstance(value, pl.DataFrame) else pl.DataFrame(value)


def _phase_order(context: Mapping) -> list[str]:
    card = context["model_card"]
    if card.get("phases"):
        return [p["name"] for p in card["phases"]]
    seen: dict[str, None] = {}
    for key in ("calibration", "shap"):
        seen.update(dict.fromkeys(context.get(key) or {}))
    metrics = _frame(context.get("metrics"))
    if metrics is not None:
        seen.update(dict.fromkeys(metrics["phase"].to_list()))
    return list(seen)


def _metric_table(metrics: pl.DataFrame, phase: str) -> dict:
    """Rows = metrics, columns = models present: "estimate (lo–hi)" cells."""
    part = metrics.filter(pl.col("phase") == phase)
    present = part["model"].unique().to_list()
    models = [m for m in MODEL_ORDER if m in present] + sorted(set(present) - set(MODEL_ORDER))
    rows = []
    for metric in part["metric"].unique(maintain_order=True).to_list():
        cells = []
        for model in models:
            hit = part.filter((pl.col("metric") == metric) & (pl.col("model") == model))
            if hit.height == 0:
                cells.append("—")
                continue
            r = hit.row(0, named=True)
            if r.get("in_sample") and r["estimate"] is None:
                cells.append("not applicable")
                continue
            has_ci = fmt(r.get("lo")) != "—" and fmt(r.get("hi")) != "—"
            ci = f" ({fmt(r['lo'])}–{fmt(r['hi'])})" if has_ci else ""
            cells.append(f"{fmt(r['estimate'])}{ci}{' in-sample' if r.get('in_sample') else ''}")
        rows.append({"metric": metric, "cells": cells})
    return {"models": models, "rows": rows}


def _performance(context: Mapping, phases: Sequence[str]) -> list[dict]:
    metrics = _frame(context.get("metrics"))
    calibration = context.get("calibration") or {}
    curves = context.get("decision_curves") or {}
    out = []
    in_metrics = metrics["phase"].unique(maintain_order=True).to_list() if metrics is not None else []
    extra = [p for p in in_metrics if p not in phases]
    for phase in [*phases, *extra]:  # e.g. "pooled" after the phases
        nb = _frame((context.get("net_benefit") or {}).get(phase))
        view = {"phase": phase, "table": None, "calibration": None, "decision": None,
                "net_benefit": nb.to_dicts() if nb is not None else None}
        if metrics is not None and phase in metrics["phase"].to_list():
            view["table"] = _metric_table(metrics, phase)
        if phase in calibration:
            data = calibration[phase]
            view["calibration"] = figures.to_data_uri(
                figures.calibration_figure(
                    figures.curve_with_band(data["y"], data["p"], data.get("w"), groups=data.get("groups")),
                    data["p"], f"Calibration: {phase}",
                )
            )
            if phase not in curves:
                curves = {**curves, phase: decision_curve(data["y"], data["p"], data.get("w"))}
        if phase in curves:
            view["decision"] = figures.to_data_uri(
                figures.decision_curve_figure(
                    _frame(curves[phase]), f"Decision curve: {phase}",
                    points=_frame((context.get("net_benefit") or {}).get(phase)),
                )
            )
        if view["table"] or view["calibration"] or view["decision"]:
            out.append(view)
    return out


def _subgroups(context: Mapping, phases: Sequence[str]) -> list[dict]:
    table = _frame(context.get("subgroups"))
    if table is None:
        return []
    known = [p for p in phases if p in table["phase"].to_list()]
    others = [p for p in table["phase"].unique(maintain_order=True).to_list() if p not in known]
    return [
        {"phase": phase, "rows": table.filter(pl.col("phase") == phase).to_dicts()}
        for phase in known + others
    ]


def _explanations(context: Mapping, phases: Sequence[str]) -> list[dict]:
    out = []
    for phase in phases:
        data = (context.get("shap") or {}).get(phase)
        if data is None:
            continue
        values = np.asarray(data["values"], dtype=float)
        names = list(data["feature_names"])
        ranked = [names[i] for i in figures.top_features(values, names, len(names))]
        physiological = [n for n in ranked if n.startswith(PHYSIOLOGICAL_PREFIXES)][:6]
        view = {
            "phase": phase,
            "n": values.shape[0],
            "bar": figures.to_data_uri(
                figures.shap_bar_figure(values, names, f"Mean |SHAP|: {phase}")
            ),
            "beeswarm": figures.to_data_uri(
                figures.shap_beeswarm_figure(
                    values, data["features"], names, f"SHAP values: {phase}"
                )
            ),
            "dependence": None,
        }
        if physiological:
            view["dependence"] = figures.to_data_uri(
                figures.dependence_figure(
                    values,
                    data["features"],
                    names,
                    physiological,
                    f"BDNF and HRV features: {phase}",
                )
            )
        out.append(view)
    return out


def _patients(context: Mapping) -> list[dict]:
    out = []
    for k, patient in enumerate(context.get("patients") or [], start=1):
        shap = np.asarray(patient["shap_values"], dtype=float)
        values = list(patient["feature_values"])
        names = list(patient["feature_names"])
        order = np.argsort(-np.abs(shap), kind="stable")[:10]
        out.append(
            {
                **patient,
                "anchor": f"patient-{k}",
                "waterfall": figures.to_data_uri(
                    figures.waterfall_figure(
                        shap,
                        values,
                        names,
                        float(patient["base_value"]),
                        f"Patient {patient['id']}",
                    )
                ),
                "top": [
                    {
                        "name": names[i],
                        "value": figures.format_value(values[i]),
                        "shap": f"{shap[i]:+.3f}",
                    }
                    for i in order
                ],
            }
        )
    return out


DRIFT_ROWS_SHOWN = 25


def _drift_shown(drift: pl.DataFrame | None) -> list[dict]:
    """Every flagged row or missingness change, then the most severe others up to DRIFT_ROWS_SHOWN."""
    if drift is None or "flag" not in drift.columns:
        return [] if drift is None else drift.to_dicts()
    notable = (pl.col("flag") != "none") | pl.col("missing_shift")
    rest = drift.filter(~notable).head(max(DRIFT_ROWS_SHOWN - drift.filter(notable).height, 0))
    return pl.concat([drift.filter(notable), rest]).to_dicts()


def _evaluation(evaluation: Mapping | None, phases: list[str]) -> dict | None:
    """The optional external-validation section: rows of estimate (95% CI) per phase, in the
    model's phase order and then pooled (the run's JSON holds them by name)."""
    if not evaluation:
        return None
    shown = ("auroc", "auprc", "brier", "calibration_intercept", "calibration_slope", "ece", "oe_ratio")
    rows = []
    order = {p: i for i, p in enumerate(phases)}
    for phase, metrics in sorted(evaluation["metrics"].items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])):
        cells = []
        for name in shown:
            est, lo, hi = metrics.get(name, (None, None, None))
            cells.append(f"{fmt(est)} ({fmt(lo)}–{fmt(hi)})" if est is not None else "—")
        rows.append({"phase": phase, "cells": cells, "figures": evaluation["figures"].get(phase, [])})
    return {"run_id": evaluation["run_id"], "tags": evaluation["tags"], "metrics": shown, "rows": rows}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: (
                resources.files("pipeline.reports").joinpath("templates", name).read_text("utf-8")
            )
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=defang,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt
    env.globals["with_interval"] = with_interval
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * v:.1f}%"
    return env


def render_report(context: Mapping) -> str:
    """The audit report as one self-contained HTML document (see the module docstring)."""
    if "model_card" not in context:
        raise ValueError("render_report: the context needs a 'model_card'")
    phases = _phase_order(context)
    drift, ranges = _frame(context.get("drift")), _frame(context.get("out_of_range"))
    view = {
        "title": context.get("title") or "Relapse-risk audit report",
        "generated_at": context.get("generated_at"),
        "synthetic": bool(context.get("synthetic")),
        "card": context["model_card"],
        "tripod": context.get("tripod") or tripod_checklist(context),
        "performance": _performance(context, phases),
        "subgroups": _subgroups(context, phases),
        "explanations": _explanations(context, phases),
        "scoring": context.get("scoring"),
        "drift": drift.to_dicts() if drift is not None else None,
        "drift_shown": _drift_shown(drift),
        "sample_size": context.get("sample_size"),
        "out_of_range": ranges.to_dicts() if ranges is not None else None,
        "patients": _patients(context),
        "id_note": context.get("id_note"),
        "evaluation": _evaluation(context.get("evaluation"), phases),
    }
    return _environment().get_template(TEMPLATE).render(**view)


class _References(HTMLParser):
    ATTRIBUTES = {
        "src",
        "href",
        "srcset",
        "action",
        "formaction",
        "poster",
        "data",
        "background",
        "cite",
        "longdesc",
        "manifest",
        "ping",
        "xlink:href",
        "icon",
    }

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        for name, value in attrs:
            value = (value or "").strip()
            if name in self.ATTRIBUTES and not value.startswith(("data:", "#")):
                self.found.append(f"<{tag} {name}={value[:80]!r}>")
            if name == "style":
                self.found += _css_references(value)
        if tag == "meta" and ("http-equiv", "refresh") in [
            (n, (v or "").lower()) for n, v in attrs
        ]:
            self.found.append("<meta http-equiv=refresh>")

    def handle_data(self, data) -> None:
        if self.lasttag == "style":
            self.found += _css_references(data)


def _css_references(css: str) -> list[str]:
    urls = re.findall(r"url\(\s*['\"]?([^'\")]*)", css, flags=re.I)
    found = [f"url({u[:80]})" for u in urls if not u.strip().startswith(("data:", "#"))]
    return found + [f"@import {m[:80]}" for m in re.findall(r"@import\s+([^;]+)", css, flags=re.I)]


def find_external_references(html: str) -> list[str]:
    """Every attribute or CSS reference that could make a browser load something.

    Only `data:` URIs and `#anchor` links are allowed; an empty list means the page is
    self-contained. The stage can assert this before writing the report.
    """
    parser = _References()
    parser.feed(html)
    parser.close()
    return parser.found
