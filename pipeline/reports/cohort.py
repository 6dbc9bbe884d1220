"""The development cohort as TRIPOD+AI asks for it: accrual and follow-up dates (item 5b) and the
participant flow with censoring counts and a follow-up summary (item 20a).

Pure: the contract's `patients` and `outcomes` tables and the landmark table in, plain
JSON-serialisable dicts out. The train stage puts both in the model card.

Counts are of patients (independent units) unless named `rows`: a patient contributes one
landmark row per week at risk, so rows overstate the information by about the number of weeks.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from features.time import days_since


def accrual(patients: pl.DataFrame, outcomes: pl.DataFrame) -> dict:
    """First and last intake date (accrual) and the last follow-up date (end of follow-up)."""
    return {
        "accrual_start": str(patients["intake_date"].min()),
        "accrual_end": str(patients["intake_date"].max()),
        "follow_up_end": str(outcomes["last_followup_date"].max()),
    }


def _follow_up(patients: pl.DataFrame, outcomes: pl.DataFrame) -> dict:
    """Days from intake to relapse or the end of follow-up, whichever comes first."""
    days = (
        patients.select("patient_id", "intake_date")
        .join(outcomes.select("patient_id", "relapse_date", "last_followup_date"), on="patient_id", how="inner")
        .select(
            pl.min_horizontal(
                days_since(pl.col("relapse_date"), pl.col("intake_date")),
                days_since(pl.col("last_followup_date"), pl.col("intake_date")),
            ).alias("days"),
            pl.col("relapse_date").is_not_null().alias("relapsed"),
        )
    )
    if days.height == 0:
        return {"patients": 0}
    return {
        "patients": days.height,
        "relapsed": int(days["relapsed"].sum()),
        "censored_without_relapse": int((~days["relapsed"]).sum()),
        "median_days": float(days["days"].median()),
        "q1_days": float(days["days"].quantile(0.25, interpolation="linear")),
        "q3_days": float(days["days"].quantile(0.75, interpolation="linear")),
        "max_days": int(days["days"].max()),
    }


def participant_flow(
    patients: pl.DataFrame, outcomes: pl.DataFrame, landmarks: pl.DataFrame, phases: Sequence[str]
) -> dict:
    """Patients from the data to each phase's analysis, with censoring counts and follow-up.

    Per phase: patients at risk (any landmark row), landmark rows, censored rows and patients
    (follow-up ends inside the 30-day horizon without relapse: no label, left out of fitting),
    analysed patients (an uncensored row) and event patients.
    """
    per_phase = (
        landmarks.lazy()
        .group_by("phase")
        .agg(
            pl.col("patient_id").n_unique().alias("patients_at_risk"),
            pl.len().alias("rows"),
            pl.col("censored").sum().alias("censored_rows"),
            pl.col("patient_id").filter(pl.col("censored")).n_unique().alias("censored_patients"),
            pl.col("patient_id").filter(~pl.col("censored")).n_unique().alias("analysed_patients"),
            pl.col("patient_id").filter(pl.col("label") == 1).n_unique().alias("event_patients"),
            (pl.col("label") == 1).sum().alias("event_rows"),
        )
        .collect()
    )
    by_phase = {r["phase"]: r for r in per_phase.to_dicts()}
    empty = {"patients_at_risk": 0, "rows": 0, "censored_rows": 0, "censored_patients": 0,
             "analysed_patients": 0, "event_patients": 0, "event_rows": 0}
    return {
        "patients_in_data": patients["patient_id"].n_unique(),
        "patients_with_outcome": outcomes["patient_id"].n_unique(),
        "patients_with_landmark": landmarks["patient_id"].n_unique(),
        "follow_up": _follow_up(patients, outcomes),
        "phases": [{"phase": p, **{k: int(v) for k, v in (by_phase.get(p) or empty).items() if k != "phase"}}
                   for p in phases],
    }
