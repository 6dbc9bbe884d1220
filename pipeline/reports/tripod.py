"""The TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378) answered from the report context.

Items are numbered as in the paper's 27-item checklist. Each gets one of three statuses with
the report section that holds its answer:
- "answered": the specific content the item asks for is in the report (e.g. 20a needs the
  participant flow with censoring counts and a follow-up summary, 10 the sample-size reasoning,
  5b accrual start and end and the end of follow-up);
- "partial": related content is present but not what the item asks for (counts without
  sample-size reasoning, a PSI table of an unlabelled scoring cohort for 16 and 20c, estimates
  without intervals); the answer says what is missing;
- "manual": nothing in the report answers it; only people (authors, the clinic, an ethics
  board) can.
An answer function returns None (manual), a string (answered) or a `(status, text)` pair.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl

MANUAL, PARTIAL, ANSWERED = "manual", "partial", "answered"
Answer = Callable[[Mapping, Mapping], "str | tuple[str, str] | None"]


def _card(key: str) -> Answer:
    return lambda card, ctx: _text(card.get(key))


def _manual(card: Mapping, ctx: Mapping) -> None:
    return None


def _text(value) -> str | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
        return " ".join(i if i.endswith((".", "!", "?")) else i + "." for i in items)
    return str(value)


def _join(*answers: Answer) -> Answer:
    """All the parts' texts; answered only when every part is."""

    def answer(card: Mapping, ctx: Mapping):
        found = [_status(a(card, ctx)) for a in answers]
        texts = [text for _, text in found if text]
        if not texts:
            return None
        return ANSWERED if all(st == ANSWERED for st, _ in found) else PARTIAL, " ".join(texts)

    return answer


def _status(found) -> tuple[str, str | None]:
    if found is None or found == "":
        return MANUAL, None
    if isinstance(found, tuple):
        return found
    return ANSWERED, str(found)


def _training_data(card: Mapping, ctx: Mapping) -> str | None:
    data = card.get("training_data") or {}
    parts = [
        data.get("source"),
        f"fingerprint {data['fingerprint']}" if data.get("fingerprint") else None,
    ]
    return "; ".join(p for p in parts if p) or None


def _dates(card: Mapping, ctx: Mapping):
    """5b: start and end of accrual and the end of follow-up; landmark dates alone are partial."""
    data = card.get("training_data") or {}
    if all(data.get(k) for k in ("accrual_start", "accrual_end", "follow_up_end")):
        return (f"Intake (accrual) from {data['accrual_start']} to {data['accrual_end']}; "
                f"follow-up ended {data['follow_up_end']}.")
    if data.get("date_start") or data.get("date_end"):
        return PARTIAL, (f"Landmark dates {data.get('date_start', '?')} to {data.get('date_end', '?')}; "
                         "accrual start/end and the end of follow-up are not recorded.")
    return None


def _updating(card: Mapping, ctx: Mapping) -> str | None:
    """12f: a recalibrated version (the card's `recalibration`: parent version, local data
    fingerprint, the method chosen per phase and the composed layer) says how it was updated
    from which version; otherwise the card's free text, manual when there is none."""
    lineage = card.get("recalibration")
    if not lineage:
        return _text(card.get("updating"))
    layers, earlier = lineage.get("layers") or {}, lineage.get("earlier")
    phases = []
    for phase, method in (lineage.get("methods") or {}).items():
        layer = layers.get(phase) or {"method": "none"}
        composed = "" if layer["method"] == "none" else (
            f"logit(risk') = {layer['a']:+.3f} + {layer['b']:.3f} × logit(risk)")
        if earlier:  # this step's choice, then the layer it composes with the earlier recalibrations
            text = f"{_method(method)}, giving with the earlier recalibration(s) {_method(layer['method'])}"
            phases.append(f"{phase}: {text}" + (f" ({composed})" if composed else ""))
        else:
            phases.append(f"{phase}: {_method(method)}" + (f" ({composed})" if composed and method != "none" else ""))
    version = card.get("model_version", "this version")
    chain = []
    while earlier:
        chain.append(f"version {earlier.get('parent_version', '?')} on local data "
                     f"{str(earlier.get('data_fingerprint') or '?')[:12]}")
        earlier = earlier.get("earlier")
    before = (f" Its parent was itself recalibrated, latest first: {'; '.join(chain)}; the first of these is the "
              "trained version, whose boosters every later version keeps." if chain else "")
    return (f"Version {version} is a site recalibration of version {lineage.get('parent_version', '?')} on local "
            f"labelled data (fingerprint {str(lineage.get('data_fingerprint') or '?')[:12]}): per phase, closed "
            f"testing (likelihood-ratio tests, Vergouwe et al. 2017) chose between keeping the model, re-estimating "
            f"its intercept, or intercept and slope: {'; '.join(phases) or 'no phase tested'}.{before} The boosters "
            "and calibrators are the trained version's, unchanged; the layer acts on the logit of the calibrated "
            "risk.")


def _method(method: str) -> str:
    return method.replace("_", " and ")


def _outcome(card: Mapping, ctx: Mapping) -> str | None:
    if card.get("outcome"):
        return str(card["outcome"])
    if card.get("horizon_days"):
        return (
            f"Relapse on one of days t+1…t+{card['horizon_days']} after each landmark day t "
            "(days since intake); censored rows weighted by IPCW."
        )
    return None


def _feature_groups(card: Mapping, ctx: Mapping) -> str | None:
    used, absent = card.get("feature_groups_used"), card.get("feature_groups_absent")
    if not used and not absent:
        return None
    text = f"Feature groups used: {', '.join(used) if used else 'none'}"
    return text + (f"; absent: {', '.join(absent)}." if absent else ".")


def _features_defined(card: Mapping, ctx: Mapping) -> str | None:
    features = card.get("features")
    return (
        f"{len(features)} features defined in the model card's feature table." if features else None
    )


def _events(card: Mapping, ctx: Mapping):
    """21: participants and events per analysis; answered when events are counted in patients."""
    rows = card.get("events_per_phase")
    if not rows:
        return None
    cells = [
        f"{r['phase']}: {r.get('patients', '?')} patients ({r.get('event_patients', '?')} with an event), "
        f"{r.get('rows', '?')} landmark rows ({r.get('events', '?')} event rows)"
        for r in rows
    ]
    text = "; ".join(cells) + "."
    if all("event_patients" in r for r in rows):
        return text
    return PARTIAL, text + " Events are counted in landmark rows, not patients."


def _flow(card: Mapping, ctx: Mapping):
    """20a: participant flow with censoring counts and a follow-up summary."""
    flow = card.get("participant_flow") or {}
    follow = flow.get("follow_up") or {}
    phases = flow.get("phases") or []
    if phases and all("censored_patients" in p for p in phases) and "median_days" in follow:
        cells = "; ".join(
            f"{p['phase']}: {p['patients_at_risk']} at risk, {p['censored_patients']} censored in the horizon "
            f"({p['censored_rows']} rows), {p['analysed_patients']} analysed, {p['event_patients']} with an event"
            for p in phases
        )
        return (f"{flow['patients_in_data']} patients in the data, {flow['patients_with_landmark']} with a landmark. "
                f"{cells}. Follow-up from intake: median {follow['median_days']:.0f} days "
                f"(IQR {follow['q1_days']:.0f}–{follow['q3_days']:.0f}); {follow['relapsed']} relapsed, "
                f"{follow['censored_without_relapse']} censored without relapse.")
    counted = _events(card, ctx)
    if counted is None:
        return None
    return PARTIAL, _status(counted)[1] + " No participant flow with censoring counts or follow-up summary."


def _sample_size(card: Mapping, ctx: Mapping):
    """10: Riley et al.'s minimum sample size per phase against the analysed patients."""
    sizes = ctx.get("sample_size") or []
    if sizes:
        cells = [
            f"{r['phase']}: needs {r['required_n']} patients (criteria i/ii/iii {r['criterion_i']}/"
            f"{r['criterion_ii']}/{r['criterion_iii']}, {r['parameters']} parameters, outcome proportion "
            f"{r['prevalence']:.3f}), has {r['available_patients']} ({'met' if r['met'] else 'not met'})"
            for r in sizes
            if r.get("required_n") is not None
        ]
        if cells:
            return ("Riley et al. (BMJ 2020;368:m441) minimum sample size, anticipated R²_CS = 15% of its "
                    "maximum, counted in analysed patients: " + "; ".join(cells) + ".")
    counted = _status(_events(card, ctx))[1]
    text = _text(card.get("sample_size"))
    if text and not counted:
        return text
    if counted:
        return PARTIAL, f"{text + ' ' if text else ''}Counts only: {counted} No sample-size reasoning."
    return None


def _metrics(ctx: Mapping) -> pl.DataFrame | None:
    metrics = ctx.get("metrics")
    if metrics is None:
        return None
    return metrics if isinstance(metrics, pl.DataFrame) else pl.DataFrame(metrics)


def _measures(card: Mapping, ctx: Mapping) -> str | None:
    metrics = _metrics(ctx)
    if metrics is None or metrics.height == 0:
        return None
    names = ", ".join(metrics["metric"].unique(maintain_order=True).to_list())
    return f"{names} with 95% CIs; calibration curves; decision curves (net benefit)."


def _has_intervals(metrics: pl.DataFrame) -> bool:
    if "lo" not in metrics.columns:
        return False
    applicable = metrics.filter(pl.col("estimate").is_not_null())
    return applicable.height > 0 and applicable["lo"].fill_nan(None).null_count() < applicable.height


def _performance(card: Mapping, ctx: Mapping):
    """23a: estimates with CIs, including subgroups with CIs."""
    metrics = _metrics(ctx)
    if metrics is None or metrics.height == 0:
        return None
    models = ", ".join(metrics["model"].unique(maintain_order=True).to_list())
    subgroups = ctx.get("subgroups")
    sub = pl.DataFrame(subgroups) if subgroups is not None and len(subgroups) else None
    sub_ci = sub is not None and "oe_ratio_lo" in sub.columns and "auroc_lo" in sub.columns
    if _has_intervals(metrics) and sub_ci:
        return f"Per-phase estimates with 95% CIs for {models}; subgroup O/E, intercept and AUROC with 95% CIs."
    lacking = [] if _has_intervals(metrics) else ["confidence intervals"]
    lacking += [] if sub_ci else ["subgroup results with intervals"]
    return PARTIAL, f"Per-phase estimates for {models}; missing: {', '.join(lacking)}."


def _fairness(card: Mapping, ctx: Mapping):
    table = ctx.get("subgroups")
    if table is None or len(table) == 0:
        return _text(card.get("fairness"))
    attributes = [
        a
        for a in pl.DataFrame(table)["attribute"].unique(maintain_order=True).to_list()
        if a != "all"
    ]
    audit = (f"Performance audited per phase by {', '.join(attributes)}, counted in patients; flags from "
             "the O/E and AUROC intervals.")
    return f"{card['fairness']} {audit}" if card.get("fairness") else audit


def _model_object(card: Mapping, ctx: Mapping) -> str | None:
    parts = [
        card.get("model_name"),
        f"version {card['model_version']}" if card.get("model_version") else None,
        f"run {card['run_id']}" if card.get("run_id") else None,
    ]
    text = ", ".join(p for p in parts if p)
    return f"Logged model {text}." if text else None


def _drift(card: Mapping, ctx: Mapping):
    """16 and 20c ask how evaluation data differ from development data. The only evaluation here
    is internal cross-validation; a PSI table compares an unlabelled scoring cohort's predictors,
    which is part of 20c's answer and none of 16's outcome or setting differences: partial."""
    if ctx.get("drift") is None:
        return None
    return PARTIAL, ("Scoring cohort's predictors compared with the training profile per phase (PSI, "
                     "missingness); no labelled external evaluation cohort, so outcome and setting "
                     "differences are not assessed.")


def _users(card: Mapping, ctx: Mapping) -> str | None:
    users = _text(card.get("intended_users"))
    return f"{users}. Decision support, never a sole decision maker." if users else None


# (item, topic, section answering it, how to answer from (model_card, context))
ITEMS: list[tuple[str, str, str, Answer]] = [
    ("1", "Title", "", _manual),
    ("2", "Abstract", "", _manual),
    ("3a", "Background: healthcare context and rationale", "model-card", _card("background")),
    (
        "3b",
        "Target population, intended purpose and users",
        "model-card",
        _join(_card("intended_use"), _card("intended_users")),
    ),
    ("3c", "Known health inequalities", "subgroups", _card("health_inequalities")),
    ("4", "Objectives", "model-card", _card("objectives")),
    ("5a", "Data sources", "model-card", _training_data),
    ("5b", "Dates of data", "model-card", _dates),
    ("6a", "Setting", "model-card", _card("setting")),
    ("6b", "Eligibility criteria", "model-card", _card("eligibility")),
    ("6c", "Treatments received", "model-card", _card("treatments")),
    ("7", "Data preparation and quality checking", "model-card", _card("data_preparation")),
    ("8a", "Outcome definition and time horizon", "model-card", _outcome),
    ("8b", "Outcome assessors (subjective outcome)", "", _manual),
    ("8c", "Blinding of outcome assessment", "", _manual),
    ("9a", "Choice of initial predictors", "model-card", _feature_groups),
    ("9b", "Definition of predictors", "model-card", _features_defined),
    ("9c", "Predictor assessors (subjective predictors)", "", _manual),
    ("10", "Sample size", "model-card", _sample_size),
    ("11", "Missing data", "model-card", _card("missing_data")),
    ("12a", "Use of the data (partitioning, validation)", "model-card", _card("validation")),
    ("12b", "Handling of predictors", "model-card", _card("predictor_handling")),
    (
        "12c",
        "Model type, building steps, tuning, internal validation",
        "model-card",
        _join(_card("model_type"), _card("validation")),
    ),
    ("12d", "Heterogeneity across clusters", "", _card("heterogeneity")),
    ("12e", "Performance measures and plots", "performance", _measures),
    ("12f", "Model updating (e.g. recalibration)", "model-card", _updating),
    ("12g", "How predictions were calculated", "model-card", _model_object),
    ("13", "Class imbalance", "model-card", _card("class_imbalance")),
    ("14", "Fairness", "subgroups", _fairness),
    ("15", "Model output and thresholds", "model-card", _card("model_output")),
    ("16", "Training versus evaluation data", "drift", _drift),
    ("17", "Ethical approval", "", _manual),
    ("18a", "Funding", "", _manual),
    ("18b", "Conflicts of interest", "", _manual),
    ("18c", "Protocol", "", _manual),
    ("18d", "Registration", "", _manual),
    ("18e", "Data sharing", "", _card("data_sharing")),
    ("18f", "Code sharing", "model-card", _card("code")),
    ("19", "Patient and public involvement", "", _manual),
    ("20a", "Participants: flow, outcomes, follow-up", "model-card", _flow),
    ("20b", "Participant characteristics", "subgroups", _card("characteristics")),
    ("20c", "Evaluation vs development predictor distributions", "drift", _drift),
    ("21", "Participants and events in each analysis", "model-card", _events),
    ("22", "Full model specification", "model-card", _model_object),
    ("23a", "Performance with CIs, including subgroups", "performance", _performance),
    ("23b", "Heterogeneity of performance across clusters", "", _card("heterogeneity_results")),
    ("24", "Model updating results", "performance", _card("updating_results")),
    ("25", "Interpretation", "", _manual),
    ("26", "Limitations", "model-card", _card("limitations")),
    ("27a", "Poor-quality or unavailable input data", "model-card", _card("missing_data")),
    ("27b", "User interaction and expertise required", "model-card", _users),
    ("27c", "Next steps", "", _manual),
]


def tripod_checklist(context: Mapping) -> list[dict]:
    """TRIPOD+AI items: item, topic, status (answered / partial / manual), answer and the
    section anchor holding it (empty when manual).

    `context` is the report context (see `pipeline.reports.render`); answers come from its
    `model_card`, `sample_size` and the presence and content of metrics, subgroups and drift.
    """
    card = context.get("model_card") or {}
    checklist = []
    for item, topic, where, answer in ITEMS:
        status, text = _status(answer(card, context))
        checklist.append({"item": item, "topic": topic, "status": status, "answer": text or MANUAL,
                          "section": where if text else "", "where": where if text else ""})
    return checklist
