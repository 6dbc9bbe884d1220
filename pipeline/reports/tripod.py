"""The TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378) answered from the report context.

Items are numbered as in the paper's 27-item checklist. An item gets a short answer and the
report section that holds it when the context supplies the facts; otherwise its answer is
"manual": only people (authors, the clinic, the ethics board) can answer it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl

MANUAL = "manual"
Answer = Callable[[Mapping, Mapping], str | None]


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
    def answer(card: Mapping, ctx: Mapping) -> str | None:
        parts = [a(card, ctx) for a in answers]
        return " ".join(p for p in parts if p) or None

    return answer


def _training_data(card: Mapping, ctx: Mapping) -> str | None:
    data = card.get("training_data") or {}
    parts = [
        data.get("source"),
        f"fingerprint {data['fingerprint']}" if data.get("fingerprint") else None,
    ]
    return "; ".join(p for p in parts if p) or None


def _dates(card: Mapping, ctx: Mapping) -> str | None:
    data = card.get("training_data") or {}
    if data.get("date_start") or data.get("date_end"):
        return f"Records dated {data.get('date_start', '?')} to {data.get('date_end', '?')}."
    return None


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


def _events(card: Mapping, ctx: Mapping) -> str | None:
    rows = card.get("events_per_phase")
    if not rows:
        return None
    cells = [
        f"{r['phase']}: {r.get('patients', '?')} patients, {r.get('rows', '?')} landmark rows, "
        f"{r.get('events', '?')} events"
        for r in rows
    ]
    return "; ".join(cells) + "."


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


def _performance(card: Mapping, ctx: Mapping) -> str | None:
    metrics = _metrics(ctx)
    if metrics is None or metrics.height == 0:
        return None
    models = ", ".join(metrics["model"].unique(maintain_order=True).to_list())
    subgroups = (
        " Subgroup AUROC and calibration in Subgroups." if ctx.get("subgroups") is not None else ""
    )
    return f"Per-phase estimates with 95% CIs for {models}.{subgroups}"


def _fairness(card: Mapping, ctx: Mapping) -> str | None:
    table = ctx.get("subgroups")
    if table is None or len(table) == 0:
        return _text(card.get("fairness"))
    attributes = [
        a
        for a in pl.DataFrame(table)["attribute"].unique(maintain_order=True).to_list()
        if a != "all"
    ]
    audit = f"Performance audited per phase by {', '.join(attributes)}; gaps flagged."
    return f"{card['fairness']} {audit}" if card.get("fairness") else audit


def _model_object(card: Mapping, ctx: Mapping) -> str | None:
    parts = [
        card.get("model_name"),
        f"version {card['model_version']}" if card.get("model_version") else None,
        f"run {card['run_id']}" if card.get("run_id") else None,
    ]
    text = ", ".join(p for p in parts if p)
    return f"Logged model {text}." if text else None


def _drift(card: Mapping, ctx: Mapping) -> str | None:
    if ctx.get("drift") is None:
        return None
    return "Scoring cohort compared with the training profile: PSI and missingness per feature."


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
    ("10", "Sample size", "model-card", _join(_card("sample_size"), _events)),
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
    ("12f", "Model updating (e.g. recalibration)", "model-card", _card("calibration")),
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
    ("20a", "Participants: flow, outcomes, follow-up", "model-card", _events),
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
    """TRIPOD+AI items with the answer found in `context` and its section anchor, else "manual".

    `context` is the report context (see `pipeline.reports.render`); answers come from its
    `model_card` plus the presence of metrics, subgroups and drift tables.
    """
    card = context.get("model_card") or {}
    checklist = []
    for item, topic, where, answer in ITEMS:
        text = answer(card, context)
        checklist.append(
            {"item": item, "topic": topic, "answer": text or MANUAL, "where": where if text else ""}
        )
    return checklist
