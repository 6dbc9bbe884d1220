"""The landmark grid, the at-risk rule, labels, censoring and IPCW weights.

Days count from intake (day 0). A patient's landmarks are t = 0, spacing, 2·spacing, … up to the
last phase's end day, kept while the patient is at risk at t:
- no relapse on or before t (relapse_day > t or none), and
- follow-up continues past t (last_followup_day > t).
- the cohort can see a whole horizon after t: t + h ≤ the cohort's administrative end of
  follow-up, the longest follow-up of any patient (days since intake). A landmark beyond it
  could only ever be labelled for patients who relapse inside the window (everyone else is
  censored there), so its uncensored rows would all be events and no weighting can correct
  that: nobody is observed long enough for a 0. Such landmarks are left out, and a phase that
  starts after the cohort's last full window simply has no rows (see models/training.py).
With horizon h, a row's `label` is 1 when the relapse falls on one of days t+1 … t+h, 0 when the
patient is followed through t+h without relapse (last_followup_day ≥ t+h), and null otherwise:
follow-up ended inside the horizon without relapse, the row is `censored`.

IPCW. C is the day follow-up ends without relapse (the censoring time); Ĝ(u) = P(C > u) is the
Kaplan–Meier estimate over all patients, with one observed day per patient, Y = relapse day or
else last follow-up day, and a censoring event when there was no relapse. Day by day,
Ĝ(u) = Π_{v ≤ u} (1 − c_v / r_v), with c_v censorings on day v and r_v the patients still
observed at the start of day v (Y ≥ v) less those relapsing on day v: a relapse and a censoring
on the same day count the relapse first (a patient censored on day v was still observed that day).
An uncensored row at landmark t has its outcome seen through s = min(T, t+h), T the relapse day;
that needs C ≥ s given C > t (at risk), so its weight is

    ipcw_weight = Ĝ(t) / Ĝ(s−),   Ĝ(s−) = Ĝ(s − 1) on whole days (left limit),

the inverse probability of staying uncensored through the row's window. Censored rows get null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from features import ENGINE
from features.asof import DAY, PIDX
from features.config import LandmarkConfig, Phase
from features.time import date_plus_days, days_since, last_day, phase_expr

LANDMARK_KEYS = ("patient_id", "landmark_date", "day", "phase", "label", "censored", "ipcw_weight")


def outcome_days(people: pl.LazyFrame, outcomes: pl.LazyFrame) -> pl.LazyFrame:
    """`people` (with `_pidx`, `intake_date`) joined to outcomes as `relapse_day`, `followup_day`.

    Patients without an outcomes row have unknown follow-up and are left out.
    """
    intake = pl.col("intake_date")
    days = outcomes.select("patient_id", "relapse_date", "last_followup_date")
    joined = people.join(days, on="patient_id", how="inner", maintain_order="left")
    return joined.with_columns(
        days_since(pl.col("relapse_date"), intake).alias("relapse_day"),
        days_since(pl.col("last_followup_date"), intake).alias("followup_day"),
    ).drop("relapse_date", "last_followup_date")


def censoring_survival(days: pl.LazyFrame) -> pl.LazyFrame:
    """Kaplan–Meier Ĝ(u) = P(C > u) of the censoring time, one row per observed day u (sorted).

    `days` has one row per patient with `relapse_day` (null when none) and `followup_day`.
    """
    observed = days.select(
        pl.coalesce("relapse_day", "followup_day").alias(DAY),
        pl.col("relapse_day").is_null().alias("censoring"),
    )
    per_day = (
        observed.group_by(DAY)
        .agg(
            pl.len().cast(pl.Int64).alias("leaving"),
            pl.col("censoring").sum().cast(pl.Int64).alias("censored"),
        )
        .sort(DAY)
    )
    still_observed = pl.col("leaving").sum() - pl.col("leaving").cum_sum() + pl.col("leaving")
    relapsed = pl.col("leaving") - pl.col("censored")
    at_risk_of_censoring = still_observed - relapsed
    factor = pl.when(pl.col("censored") > 0).then(1.0 - pl.col("censored") / at_risk_of_censoring).otherwise(1.0)
    return per_day.select(DAY, factor.cum_prod().alias("survival"))


def survival_by_day(km: pl.LazyFrame, upto: int) -> pl.LazyFrame:
    """Ĝ on every whole day 0 … upto (a step function: 1 before the first censoring)."""
    grid = pl.LazyFrame({DAY: pl.int_range(0, upto + 1, eager=True).cast(pl.Int64)})
    return grid.join_asof(km, on=DAY, strategy="backward", check_sortedness=False).with_columns(
        pl.col("survival").fill_null(1.0)
    )


def landmark_rows(
    people: pl.LazyFrame,
    outcomes: pl.LazyFrame,
    phases: Sequence[Phase],
    landmarks: LandmarkConfig,
    cohort: Cohort | None = None,
) -> pl.LazyFrame:
    """One row per patient per at-risk landmark, with label, censored flag and IPCW weight.

    `people` is sorted by `_pidx` and carries `patient_id`, `intake_date` and whatever per-patient
    columns should follow each row; the result is sorted by (`_pidx`, `day`). `cohort` holds the
    two cross-patient inputs (the Kaplan–Meier Ĝ of censoring and the administrative end of
    follow-up); by default they are estimated from `people` themselves. A shard of a cohort must
    pass the whole cohort's (`cohort_terms`), or its rows would come from a different, smaller
    sample than the unsharded table's.
    """
    h, end = landmarks.horizon_days, last_day(phases)
    days = outcome_days(people, outcomes)
    admin_end = pl.col("followup_day").max() if cohort is None else pl.lit(cohort.admin_end, dtype=pl.Int64)
    # landmarks t with t < relapse_day, t < followup_day and t <= the last phase's end
    stop = pl.min_horizontal(pl.lit(end + 1, dtype=pl.Int64), pl.col("relapse_day"), pl.col("followup_day"))
    rows = (
        days.with_columns(
            pl.int_ranges(0, pl.max_horizontal(stop, 0), landmarks.spacing_days, dtype=pl.Int64).alias(DAY),
            admin_end.alias("_admin_end"),
        )
        .explode(DAY)
        .filter(pl.col(DAY).is_not_null() & (pl.col(DAY) + h <= pl.col("_admin_end")))
        .drop("_admin_end")
    )
    relapse, followup, t = pl.col("relapse_day"), pl.col("followup_day"), pl.col(DAY)
    label = (
        pl.when(relapse.is_not_null() & (relapse <= t + h))
        .then(pl.lit(1, dtype=pl.Int8))
        .when(followup >= t + h)
        .then(pl.lit(0, dtype=pl.Int8))
        .otherwise(pl.lit(None, dtype=pl.Int8))
    )
    rows = rows.with_columns(label.alias("label")).with_columns(
        pl.col("label").is_null().alias("censored"),
        pl.when(pl.col("label") == 1).then(relapse).otherwise(t + h).alias("_seen_through"),
        date_plus_days(pl.col("intake_date"), t).alias("landmark_date"),
        phase_expr(t, phases).alias("phase"),
    )
    km = censoring_survival(days) if cohort is None else cohort.censoring.lazy()
    survival = survival_by_day(km, end + h)
    at_t = survival.select(pl.col(DAY), pl.col("survival").alias("_g_t"))
    before_s = survival.select((pl.col(DAY) + 1).alias("_seen_through"), pl.col("survival").alias("_g_s"))
    rows = (
        rows.join(at_t, on=DAY, how="left", maintain_order="left")
        .join(before_s, on="_seen_through", how="left", maintain_order="left")
        .with_columns(pl.when(~pl.col("censored")).then(pl.col("_g_t") / pl.col("_g_s")).alias("ipcw_weight"))
    )
    return rows.drop("_seen_through", "_g_t", "_g_s", "relapse_day", "followup_day")


@dataclass(frozen=True)
class Cohort:
    """What a patient's landmark rows take from the rest of the cohort: the censoring curve Ĝ
    (`censoring_survival`) behind the IPCW weights, and the administrative end of follow-up (the
    longest follow-up, in days since intake; null for a cohort without outcomes)."""

    censoring: pl.DataFrame
    admin_end: int | None


def cohort_terms(patients: pl.LazyFrame, outcomes: pl.LazyFrame) -> Cohort:
    """The `Cohort` of every patient of `patients` with an outcomes row.

    One row per patient goes in, so it is cheap even when the features are built shard by shard.
    """
    days = outcome_days(patients.select("patient_id", "intake_date"), outcomes)
    censoring, end = pl.collect_all(
        [censoring_survival(days), days.select(pl.col("followup_day").max())], engine=ENGINE
    )
    return Cohort(censoring, end.item())


__all__ = [
    "LANDMARK_KEYS",
    "Cohort",
    "cohort_terms",
    "PIDX",
    "censoring_survival",
    "landmark_rows",
    "outcome_days",
    "survival_by_day",
]
