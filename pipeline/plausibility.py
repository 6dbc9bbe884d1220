"""What valid tables may still hold by mistake: warnings with their rows, never errors.

`relapse validate` and `relapse train` print them (and `relapse score` the implausible values, per
batch, counted in its manifest); the data are kept as they are, because each
case can be real and the clinic decides: a record written twice, a value outside its plausible
range (a unit or scale mixed up), patient ids that differ only in how they were typed, an intake
date that no record comes near, a record after the last follow-up, a beat recording of one beat
or of sessions merged under one id, a column spelt like a contract column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from features.naming import text_key
from features.tables import INSTRUMENT_SCORES, PLAUSIBLE, ROW, SPECS
from pipeline.contract import look_alike_column
from pipeline.problems import rows_text

# Tables where a record equal to another in every column is, almost surely, one record written
# twice (an export's join fanning out), which the features would count twice. Not the beats: two
# beats of one recording may be equal.
DUPLICATES_CHECKED = ("bdnf", "hrv", "therapy_sessions", "assessments")


def duplicate_records(tables: dict[str, pl.DataFrame]) -> dict[str, list[int]]:
    """Per checked table, the rows (`_row`) repeating an earlier record in every contract column.
    Reported (by `relapse validate` and `relapse train`), not removed: the clinic decides."""
    out = {}
    for name in DUPLICATES_CHECKED:
        frame = tables.get(name)
        if frame is None or frame.height < 2:
            continue
        columns = [c.name for c in SPECS[name].columns if c.name in frame.columns]
        repeats = frame.filter(~pl.struct(columns).is_first_distinct())[ROW]
        if len(repeats):
            out[name] = repeats.to_list()
    return out


def lookalike_ids(patients: pl.DataFrame) -> list[pl.DataFrame]:
    """Groups of patients rows whose ids differ only in Unicode form, letter case, spacing or
    invisible characters (`naming.text_key`: "Zoë" typed and pasted, "p001" and "P001 ", "P001"
    and "P\u200b001" from a web page). They are different patients
    to every table; reported (by `relapse validate` and `relapse train`), never merged."""
    if patients.height < 2:
        return []
    keyed = patients.select(ROW, "patient_id", text_key(pl.col("patient_id").cast(pl.String)).alias("_key"))
    shared = keyed.filter(pl.col("_key").is_duplicated()).sort("_key", ROW)
    return [group.drop("_key") for _, group in shared.group_by("_key", maintain_order=True)]


def lookalike_warning(groups: list[pl.DataFrame]) -> str:
    """ "patients: 1 group(s) of ids differ only in Unicode form, case, spacing or invisible characters, e.g. …"."""
    first = groups[0]
    shown = " / ".join(repr(i) for i in first["patient_id"])
    return (f"patients: {len(groups):,} group(s) of patient ids differ only in Unicode form, letter case, "
            f"spacing or invisible characters, e.g. {shown} ({rows_text(first[ROW].to_list())}); each is a patient "
            "of its own here: make them one id if they are one patient")


def duplicates_warning(table: str, rows: list[int]) -> str:
    """ "therapy_sessions: 2 record(s) repeat an earlier one in every column (rows 7, 9); …"."""
    return (f"{table}: {len(rows):,} record(s) repeat an earlier one in every column ({rows_text(rows)}); the "
            "features count each again: remove them if they are one record written twice")


# A patient whose first record of any kind comes this long after intake_date: most likely a
# mistyped intake date (a year or a century off), which moves every landmark of theirs into
# late phases with no data, where they weigh as patients followed without an event.
FIRST_RECORD_GAP_DAYS = 365


def late_first_records(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """patients rows (`_row`, patient_id, days) whose first bdnf, hrv, beat, therapy or assessment
    record comes more than FIRST_RECORD_GAP_DAYS after intake_date (patients without records
    are not judged), in file order."""
    firsts = [
        frame.select("patient_id", pl.col(SPECS[name].date_column).cast(pl.Date).alias("_first"))
        for name, frame in tables.items()
        if name not in ("patients", "outcomes") and SPECS[name].date_column and frame.height
    ]
    if "patients" not in tables or not firsts:
        return pl.DataFrame(schema={ROW: pl.Int64, "patient_id": pl.String, "days": pl.Int64})
    first = pl.concat(firsts).group_by("patient_id").agg(pl.col("_first").min())
    return (
        tables["patients"].select(ROW, "patient_id", "intake_date")
        .join(first, on="patient_id", how="inner", maintain_order="left")
        .with_columns(days=(pl.col("_first") - pl.col("intake_date").cast(pl.Date)).dt.total_days())
        .filter(pl.col("days") > FIRST_RECORD_GAP_DAYS)
        .select(pl.col(ROW).cast(pl.Int64), pl.col("patient_id").cast(pl.String), pl.col("days").cast(pl.Int64))
    )


def records_after_followup(tables: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Per record table, its rows (`_row`, patient_id, the record's date, last_followup_date)
    dated after the patient's `last_followup_date`, in file order. A record is a contact, so the
    follow-up date is most likely wrong: training takes the patient as censored at it (their
    later time and any later relapse are lost), and features still read the later records."""
    outcomes = tables.get("outcomes")
    if outcomes is None or not outcomes.height:
        return {}
    last = outcomes.select("patient_id", pl.col("last_followup_date").cast(pl.Date))
    out = {}
    for name, frame in tables.items():
        column = SPECS[name].date_column
        if name in ("patients", "outcomes") or not column or not frame.height:
            continue
        day = pl.col(column).cast(pl.Date).alias("_day")
        later = (frame.select(ROW, "patient_id", day).join(last, on="patient_id", how="inner", maintain_order="left")
                 .filter(pl.col("_day") > pl.col("last_followup_date")))
        if later.height:
            out[name] = later.rename({"_day": column})
    return out


def records_after_followup_warning(name: str, later: pl.DataFrame) -> str:
    """ "bdnf: 3 record(s) are dated after the patient's last_followup_date (e.g. …); …"."""
    e = later.row(0, named=True)
    column = SPECS[name].date_column
    return (f"{name}: {later.height:,} record(s) are dated after the patient's last_followup_date (e.g. patient "
            f"{e['patient_id']!r}, {column} {e[column]} after {e['last_followup_date']}; "
            f"{rows_text(later[ROW].to_list())}): a record is a contact, so check outcomes.last_followup_date; as "
            "written, training censors the patient at it")


def late_first_record_warning(late: pl.DataFrame) -> str:
    """ "patients: 1 patient(s) have no record until more than 365 days after intake_date, e.g. …"."""
    first = late.row(0, named=True)
    return (f"patients: {late.height:,} patient(s) have no record until more than {FIRST_RECORD_GAP_DAYS} days after "
            f"intake_date, e.g. {first['patient_id']!r} (first record {first['days']:,} days after intake; "
            f"{rows_text(late[ROW].to_list())}): check those intake dates; as written, every day between counts "
            "as time in treatment without an event")


def implausible_values(tables: dict[str, pl.DataFrame]) -> dict[str, tuple[int, float]]:
    """Values outside `PLAUSIBLE` (and questionnaire scores outside `INSTRUMENT_SCORES`), per
    label such as "bdnf.bdnf_ng_ml outside 1-100 ng/mL": (how many, the first one)."""
    out: dict[str, tuple[int, float]] = {}

    def note(label: str, values: pl.Series) -> None:
        if len(values):
            out[label] = (len(values), float(values[0]))

    for (name, column), (lo, hi, unit) in PLAUSIBLE.items():
        frame = tables.get(name)
        if frame is not None and column in frame.columns:
            note(f"{name}.{column} outside {lo:g}-{hi:g} {unit}",
                 frame[column].filter(~frame[column].is_between(lo, hi)).drop_nulls())
    patients = tables.get("patients")
    if patients is not None and {"ketamine_years", "age_at_intake"} <= set(patients.columns):
        note("patients.ketamine_years above age_at_intake", patients.filter(
            pl.col("ketamine_years") > pl.col("age_at_intake"))["ketamine_years"])
    assessments = tables.get("assessments")
    if assessments is not None and assessments.height:
        spellings = pl.DataFrame({"instrument": assessments["instrument"].cast(pl.String).unique()})
        keyed = spellings.with_columns(text_key(pl.col("instrument")).alias("key"))  # once per spelling, not per row
        for key, (lo, hi) in INSTRUMENT_SCORES.items():
            names = keyed.filter(pl.col("key") == key)["instrument"]
            if len(names):
                scores = assessments.filter(pl.col("instrument").cast(pl.String).is_in(names.implode()))["score"]
                note(f"assessments.score of {names.sort()[0].strip()} outside {lo:g}-{hi:g}",  # as the data spell it
                     scores.filter(~scores.is_between(lo, hi)))
    return out


def implausible_warning(label: str, count: int, first: float) -> str:
    """ "bdnf.bdnf_ng_ml outside 1-100 ng/mL: 109 value(s), e.g. 15490; …"."""
    return (f"{label}: {count:,} value(s), e.g. {first:g}; kept as recorded, they enter the features and the "
            "reason sentences as they are: check the unit or scale of the export")


# A recording lasts minutes: beats of one recording id further apart than this are sessions merged
# under a reused id (an export whose numbering restarts), which the features take as one recording.
RECORDING_SPAN = timedelta(days=1)
SHOWN_ROWS = 5


@dataclass(frozen=True)
class RecordingFindings:
    """What the beat recordings (patient_id, recording_id) of rr_intervals hold by mistake.

    - a recording of one beat gives no HRV (two kept beats are the least, features.hrv_beats); all
      of them at once is what an export with a beat's own id in recording_id looks like;
    - a recording whose beats span more than RECORDING_SPAN is sessions merged under a reused id,
      which the features take as one recording.

    A recording lies within one patient, so the findings of patient batches add up (`+`) to those
    of the whole cohort; `to_dict` / `from_dict` keep them in a scoring manifest."""

    recordings: int = 0
    single_beat: int = 0
    single_beat_rows: tuple[int, ...] = ()  # the first SHOWN_ROWS rows (`_row`) of single-beat recordings
    merged: int = 0
    merged_example: tuple[str, str, str, str] | None = None  # patient, recording, first and last day, earliest

    @classmethod
    def of(cls, tables: Mapping[str, pl.DataFrame]) -> RecordingFindings:
        rr = tables.get("rr_intervals")
        if rr is None or not rr.height:
            return cls()
        per = rr.group_by("patient_id", "recording_id").agg(
            beats=pl.len(), row=pl.col(ROW).min(), first=pl.col("recorded_at").min(), last=pl.col("recorded_at").max())
        single = per.filter(pl.col("beats") == 1)["row"].sort()
        merged = per.filter((pl.col("last") - pl.col("first")) > RECORDING_SPAN).sort(
            pl.col("first").dt.date(), "patient_id", "recording_id")  # as `+` picks among batches
        example = None
        if merged.height:
            e = merged.row(0, named=True)
            example = (str(e["patient_id"]), str(e["recording_id"]), f"{e['first']:%Y-%m-%d}", f"{e['last']:%Y-%m-%d}")
        return cls(per.height, len(single), tuple(single.head(SHOWN_ROWS).to_list()), merged.height, example)

    def __add__(self, other: RecordingFindings) -> RecordingFindings:
        examples = [e for e in (self.merged_example, other.merged_example) if e is not None]
        return RecordingFindings(
            self.recordings + other.recordings,
            self.single_beat + other.single_beat,
            tuple(sorted(self.single_beat_rows + other.single_beat_rows)[:SHOWN_ROWS]),
            self.merged + other.merged,
            min(examples, key=lambda e: (e[2], e[0], e[1])) if examples else None,
        )

    def warnings(self) -> list[str]:
        out = []
        if self.single_beat:
            out.append(
                f"rr_intervals: {self.single_beat:,} of {self.recordings:,} recording(s) hold a single beat "
                f"({rows_text(list(self.single_beat_rows), total=self.single_beat)}); a recording needs two beats to "
                "give heart-rate variability, so these give none: check that recording_id names a recording, not a "
                "beat")
        if self.merged_example is not None:
            patient, recording, first, last = self.merged_example
            out.append(
                f"rr_intervals: {self.merged:,} recording id(s) hold beats recorded more than a day apart (e.g. "
                f"patient {patient}, recording {recording}: {first} to {last}); each is taken as one recording, which "
                "merges sessions into one HRV measurement: give every recording its own recording_id")
        return out

    def to_dict(self) -> dict[str, object]:
        return {"recordings": self.recordings, "single_beat": self.single_beat,
                "single_beat_rows": list(self.single_beat_rows), "merged": self.merged,
                "merged_example": None if self.merged_example is None else list(self.merged_example)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RecordingFindings:
        example = data.get("merged_example")
        return cls(int(data["recordings"]), int(data["single_beat"]), tuple(data["single_beat_rows"]),
                   int(data["merged"]), None if example is None else tuple(example))


def look_alike_columns(tables: Mapping[str, pl.DataFrame]) -> list[str]:
    """A warning for each optional contract column without a value in a table that holds values in
    a column that is most likely it spelt another way (`contract.look_alike_column`): those values
    are not read. (A required column so spelt is the contract's error, with the same hint.)"""
    out = []
    for name, frame in tables.items():
        spec = SPECS[name]
        for column in (c.name for c in spec.columns if c.name not in frame.columns or frame[c.name].is_null().all()):
            found = look_alike_column(column, spec, frame.columns)
            if found is not None and frame[found].is_not_null().any():
                out.append(f"{name}: column {found!r} is not read: the contract names it {column!r} (column names are "
                           "matched exactly), so its values are left out; rename the column")
    return out


def input_warnings(tables: dict[str, pl.DataFrame]) -> list[str]:
    """Every warning for these validated tables (each table with its `_row` column)."""
    warnings = look_alike_columns(tables)
    warnings += [duplicates_warning(name, rows) for name, rows in duplicate_records(tables).items()]
    warnings += [implausible_warning(label, *found) for label, found in implausible_values(tables).items()]
    warnings += RecordingFindings.of(tables).warnings()
    groups = lookalike_ids(tables["patients"]) if "patients" in tables else []
    late = late_first_records(tables)
    warnings += [records_after_followup_warning(name, later) for name, later in records_after_followup(tables).items()]
    return (warnings + ([lookalike_warning(groups)] if groups else [])
            + ([late_first_record_warning(late)] if late.height else []))
