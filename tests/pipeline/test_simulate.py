"""The cohort simulator: the contract, reproducibility, the truth and the encoded mechanisms.

Unit tests on the CLI and the frames; data tests that the simulated cohort shows every mechanism
of DESIGN.md §1 (on a few thousand patients, in memory, in about a second).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.tables import ROW, SPECS
from features.time import days_since
from pipeline.cli import app
from pipeline.config import ConfigError
from pipeline.contract import validate
from pipeline.simulate import SIMULATION_METADATA, TRUTH_DIR, SimulatedCohort, simulate_cohort
from pipeline.simulate_config import DEFAULT_SIMULATION_CONFIG, SimulationConfig, load_simulation_config

TABLES = ("patients", "outcomes", "bdnf", "hrv", "rr_intervals", "therapy_sessions", "assessments")
PHASES = ((0, 13), (14, 89), (90, 364), (365, 729))


@pytest.fixture(scope="module")
def config():
    return load_simulation_config()


@pytest.fixture(scope="module")
def cohort(config) -> SimulatedCohort:
    return simulate_cohort(4000, 5, config)


@pytest.fixture(scope="module")
def followed(cohort) -> pl.DataFrame:
    """Patients with their observed relapse day (null if none) and last follow-up day."""
    t = cohort.tables
    return (
        t["patients"]
        .join(t["outcomes"], on="patient_id")
        .with_columns(
            relapse_day=days_since(pl.col("relapse_date"), pl.col("intake_date")),
            last_day=days_since(pl.col("last_followup_date"), pl.col("intake_date")),
        )
    )


def with_day(cohort: SimulatedCohort, table: str, date_col: str) -> pl.DataFrame:
    intake = cohort.tables["patients"].select("patient_id", "intake_date")
    frame = cohort.tables[table].join(intake, on="patient_id")
    return frame.with_columns(day=days_since(pl.col(date_col), pl.col("intake_date")))


def rate_per_1000_days(frame: pl.DataFrame) -> float:
    """Observed relapses per 1,000 person-days of follow-up."""
    return 1000 * frame["relapse_day"].is_not_null().sum() / (frame["last_day"].sum() + frame.height)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


# --- the CLI, the files and the contract ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_simulate_then_validate_succeeds(tmp_path, fmt):
    out = tmp_path / "data"
    result = run("simulate", "--patients", "300", "--seed", "3", "--out", str(out), "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    assert {p.name for p in out.glob(f"*.{fmt}")} == {f"{t}.{fmt}" for t in TABLES}
    assert {p.name for p in (out / TRUTH_DIR).iterdir()} == {"patients.parquet", "landmark_risk.parquet"}
    checked = run("validate", "--data", str(out))
    assert checked.exit_code == 0, checked.output


def test_metadata_marks_the_data_synthetic(tmp_path):
    out = tmp_path / "data"
    assert run("simulate", "--patients", "50", "--seed", "9", "--out", str(out)).exit_code == 0
    meta = json.loads((out / SIMULATION_METADATA).read_text())
    assert meta["synthetic"] is True
    assert meta["generator"] == "relapse-risk simulator"
    assert (meta["seed"], meta["n_patients"]) == (9, 50)
    assert "not real patients" in meta["note"]
    assert meta["parameters"] == load_simulation_config().model_dump(mode="json")


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path, fmt):
    folders = {}
    for name, seed in (("a", "21"), ("b", "21"), ("c", "22")):
        folders[name] = tmp_path / name
        assert (
            run("simulate", "--patients", "300", "--seed", seed, "--out", str(folders[name]), "--format", fmt).exit_code
            == 0
        )
    first, again, other = (file_bytes(folders[k]) for k in "abc")
    assert len(first) == len(TABLES) + 3  # the tables, truth/ x2, simulation.json
    assert first == again
    for table in TABLES:
        assert first[f"{table}.{fmt}"] != other[f"{table}.{fmt}"], table


def test_key_order_in_the_config_does_not_change_the_cohort(config):
    data = config.model_dump()
    for section, key in (("therapy", "modalities"), ("assessments", "instruments"), ("cohort", "ethnicity_shares")):
        data[section][key] = dict(reversed(list(data[section][key].items())))
    first, second = (simulate_cohort(200, 4, c) for c in (config, SimulationConfig.model_validate(data)))
    for name, frame in first.tables.items():
        assert_frame_equal(frame, second.tables[name])


def test_refuses_a_folder_holding_the_other_format(tmp_path):
    out = tmp_path / "data"
    assert run("simulate", "--patients", "20", "--seed", "1", "--out", str(out)).exit_code == 0
    result = run("simulate", "--patients", "20", "--seed", "1", "--out", str(out), "--format", "csv")
    assert result.exit_code == 2 and "patients.parquet" in result.output


def test_rejects_a_negative_seed_and_an_unknown_config_key(tmp_path):
    assert run("simulate", "--patients", "20", "--seed", "-1", "--out", str(tmp_path / "x")).exit_code != 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("stress:\n  no_such_key: 1\n")
    with pytest.raises(ConfigError, match="no_such_key"):
        load_simulation_config(bad)
    result = run("simulate", "--patients", "20", "--seed", "1", "--out", str(tmp_path / "y"), "--config", str(bad))
    assert result.exit_code == 2 and "no_such_key" in result.output


@pytest.mark.parametrize(
    "override",
    [
        "therapy:\n  modalities:\n    yoga: {share: 0.1, start_day: [0, 5], sessions: [1, 2], interval_days: 7, "
        "duration_min: [30, 60], attendance_log_odds: 1.0}\n",
        "cohort:\n  sex_shares: {female: 0.5, martian: 0.5}\n",
        "assessments:\n  instruments:\n    PHQ9: {visits: [3]}\n",
        "cohort:\n  extract_date: 2022-01-01\n",
    ],
    ids=["unknown-modality", "unknown-sex", "visit-not-scheduled", "extract-before-intake"],
)
def test_rejects_inconsistent_parameters(tmp_path, override):
    path = tmp_path / "override.yaml"
    path.write_text(override)
    with pytest.raises(ConfigError):
        load_simulation_config(path)


def test_every_parameter_in_simulation_yaml_has_a_rationale_comment():
    leaf = re.compile(r"^\s*(- )?[\w-]+:\s*[^\s#]|^\s*- \{")
    bare = [line for line in DEFAULT_SIMULATION_CONFIG.read_text().splitlines() if leaf.match(line) and "#" not in line]
    assert bare == []


def test_tables_have_exactly_the_contract_columns_and_pass_its_checks(cohort):
    for name in TABLES:
        spec = SPECS[name]
        assert cohort.tables[name].schema == pl.Schema({c.name: c.dtype for c in spec.columns}), name
    raw = {
        k: v.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64)) for k, v in cohort.tables.items()
    }
    assert [p.message() for p in validate(raw, TABLES).problems] == []


def test_records_lie_between_intake_and_last_followup(cohort, followed):
    last = followed.select("patient_id", "last_day")
    for table, col in (
        ("bdnf", "sample_date"),
        ("hrv", "recorded_at"),
        ("rr_intervals", "recorded_at"),
        ("therapy_sessions", "session_date"),
        ("assessments", "assessed_on"),
    ):
        days = with_day(cohort, table, col).join(last, on="patient_id")
        assert days.filter((pl.col("day") < 0) | (pl.col("day") > pl.col("last_day"))).height == 0, table
    assert followed.filter(pl.col("relapse_day") > pl.col("last_day")).height == 0
    assert followed["last_day"].max() <= 729


def test_simulate_cohort_rejects_bad_arguments(config):
    with pytest.raises(ValueError):
        simulate_cohort(0, 1, config)
    with pytest.raises(ValueError):
        simulate_cohort(10, -1, config)


# --- the truth ------------------------------------------------------------------------------------


def test_truth_covers_exactly_the_at_risk_weekly_landmarks(cohort, followed):
    truth = cohort.truth["landmark_risk"]
    assert truth.columns == ["patient_id", "landmark_date", "day", "true_risk_30d", "neuroplasticity", "stress"]
    assert truth.schema["landmark_date"] == pl.Date and truth.schema["day"] == pl.Int64
    expected = (
        followed.select("patient_id", "intake_date", "relapse_day", "last_day")
        .join(pl.DataFrame({"day": np.arange(0, 730, 7)}), how="cross")
        .filter(
            (pl.col("relapse_day").is_null() | (pl.col("relapse_day") > pl.col("day")))
            & (pl.col("last_day") > pl.col("day"))
        )
        .select("patient_id", (pl.col("intake_date") + pl.duration(days=pl.col("day"))).alias("landmark_date"), "day")
        .sort("patient_id", "day")
    )
    assert_frame_equal(truth.select("patient_id", "landmark_date", "day"), expected)
    assert truth["true_risk_30d"].is_between(0, 1).all()


def test_true_risk_matches_the_observed_30_day_relapse_rate(cohort, followed):
    rows = cohort.truth["landmark_risk"].join(followed.select("patient_id", "relapse_day", "last_day"), on="patient_id")
    event = pl.col("relapse_day").is_between(pl.col("day") + 1, pl.col("day") + 30).fill_null(False)
    uncensored = rows.filter(event | (pl.col("last_day") >= pl.col("day") + 30))
    observed = uncensored.select(event.mean()).item()
    assert uncensored["true_risk_30d"].mean() == pytest.approx(observed, rel=0.1)


def test_truth_patients_hold_latent_traits_and_true_event_days(cohort, followed):
    truth = cohort.truth["patients"]
    assert truth["patient_id"].to_list() == followed["patient_id"].to_list()
    assert {"neuroplasticity_intake", "stress_baseline", "engagement", "relapse_day", "dropout_day"} <= set(
        truth.columns
    )
    seen = truth.filter(pl.col("relapse_observed"))["relapse_day"]
    assert seen.to_list() == followed.filter(pl.col("relapse_day").is_not_null())["relapse_day"].to_list()


# --- the cohort and its mechanisms (data tests) -----------------------------------------------------


def test_cohort_shape_ages_and_overall_relapse(cohort, followed):
    age = cohort.tables["patients"]["age_at_intake"]
    assert 0.84 <= (age <= 30).mean() <= 0.90
    assert age.min() >= 14 and (age < 18).sum() > 0
    assert 0.30 <= followed["relapse_day"].is_not_null().mean() <= 0.45
    intake = cohort.tables["patients"]["intake_date"]
    assert str(intake.min()) >= "2023-01-01" and str(intake.max()) <= "2024-12-31"


def test_relapse_hazard_per_person_day_is_highest_in_the_acute_phase(followed):
    rates = []
    for start, end in PHASES:
        days = (pl.min_horizontal(pl.col("last_day"), pl.lit(end)) - start + 1).clip(0).sum()
        events = pl.col("relapse_day").is_between(start, end).sum()
        rates.append(followed.select(events / days).item())
    assert rates[0] > 2 * rates[1]
    assert rates == sorted(rates, reverse=True)


@pytest.mark.parametrize(
    ("group", "rest"),
    [
        (pl.col("age_at_intake") < 25, pl.col("age_at_intake") >= 25),
        (pl.col("sex") == "female", pl.col("sex") == "male"),
        (pl.col("polysubstance"), ~pl.col("polysubstance")),
        (pl.col("deprivation_decile") <= 3, pl.col("deprivation_decile") >= 8),
        (pl.col("trauma_history"), ~pl.col("trauma_history")),
        (pl.col("housing") != "stable", pl.col("housing") == "stable"),
    ],
    ids=["young", "female", "polysubstance", "deprived", "trauma", "housing"],
)
def test_high_risk_groups_relapse_more(followed, group, rest):
    assert rate_per_1000_days(followed.filter(group)) > 1.3 * rate_per_1000_days(followed.filter(rest))


def test_bdnf_is_sparse_and_rises_with_abstinence(cohort):
    n = cohort.tables["patients"].height
    per_patient = cohort.tables["bdnf"].group_by("patient_id").len()
    assert 0.33 <= 1 - per_patient.height / n <= 0.47
    assert per_patient["len"].max() <= 6
    samples = with_day(cohort, "bdnf", "sample_date").with_columns(log_bdnf=pl.col("bdnf_ng_ml").log())
    early = samples.filter(pl.col("day") <= 14)["log_bdnf"].mean()
    late = samples.filter(pl.col("day") >= 180)["log_bdnf"].mean()
    assert late - early > 0.15
    change = (
        samples.sort("day")
        .group_by("patient_id")
        .agg((pl.col("log_bdnf").last() - pl.col("log_bdnf").first()).alias("change"), pl.len())
        .filter(pl.col("len") >= 2)
    )
    assert change["change"].mean() > 0.1


def test_rmssd_is_higher_after_mbi_attendance(cohort):
    mbi = (
        cohort.tables["therapy_sessions"]
        .filter(pl.col("modality") == "MBI")
        .group_by("patient_id")
        .agg(attended=pl.col("attended").sum())
    )
    later = with_day(cohort, "hrv", "recorded_at").filter(pl.col("day") >= 90).join(mbi, on="patient_id", how="left")
    log_rmssd = pl.col("rmssd_ms").log().mean()
    attended = later.filter(pl.col("attended") >= 4).select(log_rmssd).item()
    never = later.filter(pl.col("attended").is_null()).select(log_rmssd).item()
    assert attended - never > 0.05


def test_emdr_helps_trauma_patients_after_the_acute_phase_more_than_others(cohort):
    """Geometric-mean true risk at landmarks with EMDR sessions in the past 4 weeks vs without.

    Sessions *scheduled* (not attended) compare groups set by random assignment, not engagement.
    """
    emdr = with_day(cohort, "therapy_sessions", "session_date").filter(pl.col("modality") == "EMDR")
    rows = cohort.truth["landmark_risk"].filter(pl.col("day").is_between(28, 120))
    recent = (
        rows.select("patient_id", "day")
        .join(emdr.select("patient_id", pl.col("day").alias("session")), on="patient_id")
        .filter(pl.col("session").is_between(pl.col("day") - 27, pl.col("day")))
        .group_by("patient_id", "day")
        .len()
    )
    risk = (
        rows.join(recent, on=["patient_id", "day"], how="left")
        .join(cohort.truth["patients"].select("patient_id", "trauma_history"), on="patient_id")
        .group_by("trauma_history", (pl.col("len").fill_null(0) >= 2).alias("emdr"))
        .agg(pl.col("true_risk_30d").log().mean())
    )
    log_risk = {(r["trauma_history"], r["emdr"]): r["true_risk_30d"] for r in risk.iter_rows(named=True)}
    trauma_effect = log_risk[(True, True)] - log_risk[(True, False)]
    other_effect = log_risk[(False, True)] - log_risk[(False, False)]
    assert trauma_effect < -0.15 and trauma_effect < other_effect - 0.1, (trauma_effect, other_effect)


def test_age_acts_in_bands_with_a_step_at_25(followed):
    """18-24s relapse far more than 25-29s, while within each band age matters little."""
    rate = lambda lo, hi: rate_per_1000_days(followed.filter(pl.col("age_at_intake").is_between(lo, hi, closed="left")))  # noqa: E731
    step = rate(21, 25) / rate(25, 30)
    within = rate(18, 21) / rate(21, 25)
    assert step > 1.8 and within < 1.4 and step > within + 0.6, (step, within)


def test_a_run_of_missed_sessions_raises_the_true_risk(cohort):
    """Geometric-mean true risk at landmarks whose last two sessions (within 3 weeks) were both
    missed, vs landmarks whose last session in that time was attended."""
    sessions = (
        with_day(cohort, "therapy_sessions", "session_date")
        .group_by("patient_id", "day")
        .agg(pl.col("attended").any())
        .sort("patient_id", "day")
        .with_columns(
            run=(~pl.col("attended") & ~pl.col("attended").shift(1).over("patient_id").fill_null(True)),
            session=pl.col("day"),
        )
    )
    rows = cohort.truth["landmark_risk"].filter(pl.col("day") >= 14).sort("patient_id", "day")
    last = rows.join_asof(
        sessions.select("patient_id", "day", "session", "attended", "run"),
        on="day",
        by="patient_id",
        strategy="backward",
        tolerance=21,
        check_sortedness=False,
    ).filter(pl.col("session").is_not_null())
    log_risk = last.group_by("run", "attended").agg(pl.col("true_risk_30d").log().mean(), pl.len())
    value = {(r["run"], r["attended"]): r["true_risk_30d"] for r in log_risk.iter_rows(named=True)}
    assert value[(True, False)] - value[(False, True)] > 0.5, value


def test_wearables_have_gaps_and_raw_beats_fit_the_contract(cohort, config):
    n = cohort.tables["patients"].height
    hrv_ids = set(cohort.tables["hrv"]["patient_id"])
    rr = cohort.tables["rr_intervals"]
    rr_ids = set(rr["patient_id"])
    assert not hrv_ids & rr_ids
    assert 0.30 <= 1 - len(hrv_ids | rr_ids) / n <= 0.55, len(hrv_ids | rr_ids) / n
    assert 0.12 <= len(rr_ids) / len(hrv_ids | rr_ids) <= 0.28, len(rr_ids) / len(hrv_ids | rr_ids)
    assert cohort.tables["hrv"].schema["recorded_at"] == pl.Datetime("us", "UTC")
    per_recording = rr.group_by("patient_id", "recording_id").len()
    assert per_recording["len"].is_between(*config.hrv.raw_beats).all()
    assert per_recording.group_by("patient_id").len()["len"].max() <= config.hrv.raw_max_recordings
    assert rr["rr_ms"].is_between(200, 3000).all()


def test_raw_beats_carry_the_same_rmssd_as_the_summaries(cohort):
    """Artefact-filtered RMSSD from beats agrees with the summaries of the same process."""
    beats = cohort.tables["rr_intervals"].with_columns(prev=pl.col("rr_ms").shift().over("recording_id"))
    clean = beats.filter((pl.col("rr_ms") - pl.col("prev")).abs() <= 0.2 * pl.col("prev"))
    from_beats = clean.group_by("recording_id").agg(
        ((pl.col("rr_ms") - pl.col("prev")) ** 2).mean().sqrt().log().alias("log_rmssd")
    )
    summaries = cohort.tables["hrv"]["rmssd_ms"].log()
    assert from_beats["log_rmssd"].mean() == pytest.approx(summaries.mean(), abs=0.15)


def test_assessments_track_stress(cohort):
    scores = with_day(cohort, "assessments", "assessed_on")
    phq9 = scores.filter(pl.col("instrument") == "PHQ9")
    assert phq9["score"].is_between(0, 27).all()
    assert phq9.filter(pl.col("day") <= 2)["score"].mean() > phq9.filter(pl.col("day") >= 180)["score"].mean() + 1
    assert set(scores["instrument"]) == {"PHQ9", "GAD7", "craving_vas", "PCL5"}


def test_dropout_depends_on_deprivation_and_housing(cohort):
    truth = cohort.truth["patients"].with_columns(
        dropped=(pl.col("dropout_day") == pl.col("last_followup_day")).fill_null(False)
    )

    def per_1000_days(group: pl.Expr) -> float:
        part = truth.filter(group)
        return 1000 * part["dropped"].sum() / (part["last_followup_day"] + 1).sum()

    assert per_1000_days(pl.col("deprivation_decile") <= 3) > per_1000_days(pl.col("deprivation_decile") >= 8)
    assert per_1000_days(pl.col("housing") != "stable") > per_1000_days(pl.col("housing") == "stable")
