"""The input tables' column specifications: names, types, required / nullable, ranges and
allowed values, one spec per table of the data contract.

The feature builders read these (which optional columns exist, their types, the levels of
sex and housing); `pipeline.contract` enforces them on raw input. Every raw table carries
`_row`, the 1-based data row in its file. Time stamps (`recorded_at`) are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

ROW = "_row"

UTC_DATETIME = pl.Datetime("us", "UTC")
SEXES = ("female", "male", "other", "unknown")
HOUSING = ("stable", "unstable", "homeless")
MODALITIES = ("CBT", "MBI", "EMDR", "CM", "MI", "group", "family", "other")
RR_PHYSIOLOGICAL_MS = (200.0, 3000.0)  # 20-300 bpm: anything outside is not a heartbeat
EARLIEST_DATE = date(1900, 1, 1)  # no record of this service predates it; the latest is the run's date

# Plausible ranges of measured values: wider than any patient, narrower than a wrong unit or scale.
# Outside them a value is valid (the contract's ranges decide that) but warned of: BDNF sent in
# pg/mL is 1,000x the ng/mL the contract asks for, a PHQ-9 of 150 is no PHQ-9.
PLAUSIBLE: dict[tuple[str, str], tuple[float, float, str]] = {
    ("bdnf", "bdnf_ng_ml"): (1.0, 100.0, "ng/mL"),
    ("hrv", "rmssd_ms"): (2.0, 250.0, "ms"),
    ("hrv", "sdnn_ms"): (5.0, 300.0, "ms"),
    ("hrv", "mean_hr_bpm"): (30.0, 200.0, "beats/min"),
    ("patients", "ketamine_years"): (0.0, 60.0, "years"),
    ("patients", "prior_treatments"): (0.0, 50.0, "episodes"),
}
# Score ranges of the questionnaires by instrument key (`naming.text_key`); others are not judged.
INSTRUMENT_SCORES: dict[str, tuple[float, float]] = {
    "phq9": (0.0, 27.0), "gad7": (0.0, 21.0), "pcl5": (0.0, 80.0), "craving_vas": (0.0, 100.0),
}


def has_value(name: str, dtype: pl.DataType) -> pl.Expr:
    """True where column `name` holds a value: not null and, for text, not blank (empty or only
    whitespace, as a Parquet export or a spreadsheet may write for "not recorded")."""
    column = pl.col(name)
    return (column.str.strip_chars() != "").fill_null(False) if dtype == pl.String else column.is_not_null()


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    required: bool = True  # the column must be present
    nullable: bool = False  # null values are allowed
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    date_column: str | None = None  # the record's date; never before intake, used for as-of
    one_per_patient: bool = False

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


_PID = Column("patient_id", pl.String)

SPECS: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "patients",
            (
                _PID,
                Column("intake_date", pl.Date),
                Column("age_at_intake", pl.Float64, min=12, max=100),
                Column("sex", pl.String, allowed=SEXES),
                Column("ethnicity", pl.String, required=False, nullable=True),
                Column("deprivation_decile", pl.Int64, False, True, min=1, max=10),
                Column("polysubstance", pl.Boolean, required=False, nullable=True),
                Column("ketamine_years", pl.Float64, False, True, min=0),
                Column("prior_treatments", pl.Int64, False, True, min=0),
                Column("trauma_history", pl.Boolean, required=False, nullable=True),
                Column("housing", pl.String, False, True, allowed=HOUSING),
            ),
            date_column="intake_date",
            one_per_patient=True,
        ),
        TableSpec(
            "outcomes",
            (
                _PID,
                Column("relapse_date", pl.Date, nullable=True),
                Column("last_followup_date", pl.Date),
            ),
            one_per_patient=True,
        ),
        TableSpec(
            "bdnf",
            (
                _PID,
                Column("sample_date", pl.Date),
                Column("bdnf_ng_ml", pl.Float64, min=0, min_exclusive=True),
            ),
            date_column="sample_date",
        ),
        TableSpec(
            "hrv",
            (
                _PID,
                Column("recorded_at", UTC_DATETIME),
                Column("rmssd_ms", pl.Float64, min=0, min_exclusive=True),
                Column("sdnn_ms", pl.Float64, min=0, min_exclusive=True),
                Column("lf_hf", pl.Float64, False, True, min=0, min_exclusive=True),
                Column("mean_hr_bpm", pl.Float64, False, True, min=20, max=250),
            ),
            date_column="recorded_at",
        ),
        TableSpec(
            "rr_intervals",
            (
                _PID,
                Column("recording_id", pl.String),
                Column("recorded_at", UTC_DATETIME),
                Column("rr_ms", pl.Float64, min=RR_PHYSIOLOGICAL_MS[0], max=RR_PHYSIOLOGICAL_MS[1]),
            ),
            date_column="recorded_at",
        ),
        TableSpec(
            "therapy_sessions",
            (
                _PID,
                Column("session_date", pl.Date),
                Column("modality", pl.String, allowed=MODALITIES),
                Column("attended", pl.Boolean),
                Column("duration_min", pl.Float64, False, True, min=0),
            ),
            date_column="session_date",
        ),
        TableSpec(
            "assessments",
            (
                _PID,
                Column("assessed_on", pl.Date),
                Column("instrument", pl.String),
                Column("score", pl.Float64),
            ),
            date_column="assessed_on",
        ),
    )
}
TABLES: tuple[str, ...] = tuple(SPECS)
# Optional measurement columns of the record tables ("table.column"): a source may leave them out
# (an HRV export without LF/HF, a therapy log without durations); the patients table's optional
# columns are tracked on their own (`FeatureSpec.patient_columns`).
OPTIONAL_MEASUREMENTS: tuple[str, ...] = tuple(
    f"{t.name}.{c.name}" for t in SPECS.values() if t.name not in ("patients", "outcomes")
    for c in t.columns if not c.required
)
