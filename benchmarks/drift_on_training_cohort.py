"""Drift flags when the training cohort itself is scored: the pooled profile of every landmark
row with the plain PSI rule (the first baseline), the per-phase profile with a minimum n and a
sampling-noise allowance over every scored patient (the second baseline), and the audit now: the
per-phase profile weighted to the scored patients' days since intake, over the patients still
under follow-up on the date (each step also shown alone). All measured in the same run on the same
simulated cohort; also the row-versus-patient event counts the subgroup table used.

    .venv/bin/python benchmarks/drift_on_training_cohort.py [--patients 800] [--seed 11] [--as-of 2024-09-01]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

from features.build import landmark_table, scoring_table
from features.spec import fit_feature_spec
from pipeline import io
from pipeline.config import load_config
from pipeline.reports.drift import drift_table, phase_profiles, psi, psi_status, training_profile, under_follow_up
from pipeline.simulator import load_simulation_config, simulate_cohort


def pooled_flags(landmarks: pl.DataFrame, scored: pl.DataFrame, names: list[str]) -> int:
    """The previous rule: one profile of every landmark row, PSI ≥ 0.1 is a shift, no minimum n."""
    profile = training_profile(landmarks, names)
    flags = 0
    for name in names:
        entry = profile[name]
        values = scored[name].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
        if entry["proportions"] and values.size:
            flags += psi_status(psi(entry["edges"], entry["proportions"], values)) != "stable"
    return flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=800)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--as-of", default="2024-09-01")
    args = parser.parse_args()
    config = load_config()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        io.write_tables(simulate_cohort(args.patients, args.seed, load_simulation_config(None)).tables, data)
        validated, _ = io.load_tables(data, required=("patients", "outcomes"))
        tables = io.drop_row_index(validated.tables)
    spec = fit_feature_spec(tables, config.features)
    names = list(spec.feature_names)
    landmarks = landmark_table(tables, config.phases, config.landmarks, config.features, spec).collect()
    scored = (
        scoring_table(tables, config.phases, config.features, spec, date.fromisoformat(args.as_of))
        .collect()
        .filter(pl.col("exclusion").is_null())
    )
    profile = phase_profiles(landmarks, names)
    followed = under_follow_up(scored, tables["outcomes"], date.fromisoformat(args.as_of))
    print(f"{args.patients} patients (seed {args.seed}), {scored.height} scored as of {args.as_of} "
          f"({scored.height - followed.height} past their last follow-up), {len(names)} features; "
          f"{time.perf_counter() - started:.0f} s")
    print(f"baseline 1 (pooled profile, PSI >= 0.1, no minimum n): {pooled_flags(landmarks, scored, names)} "
          f"of {len(names)} features flagged")
    rules = (
        ("baseline 2 (per phase, every scored patient)", scored.drop("day")),
        ("per phase, weighted to the scored days", scored),
        ("per phase, patients under follow-up", followed.drop("day")),
        ("now (per phase, weighted, under follow-up)", followed),
    )
    for label, frame in rules:
        table = drift_table(profile, frame)
        flagged = table.filter(pl.col("flag") != "none")
        judged = table.filter(pl.col("psi").is_not_null()).height
        print(f"{label}: {flagged.height} of {table.height} phase x feature rows flagged ({judged} judged); "
              f"missingness changes {int(table['missing_shift'].sum())}")
        for r in flagged.iter_rows(named=True):
            print(f"  {r['phase']} {r['feature']}: PSI {r['psi']:.3f}, noise {r['psi_noise']:.3f}, flag {r['flag']}")
    uncensored = landmarks.filter(~pl.col("censored"))
    counts = uncensored.group_by("phase").agg(
        (pl.col("label") == 1).sum().alias("event_rows"),
        pl.col("patient_id").filter(pl.col("label") == 1).n_unique().alias("event_patients"),
        pl.len().alias("rows"),
        pl.col("patient_id").n_unique().alias("patients"),
    )
    for r in counts.sort("phase").iter_rows(named=True):
        print(f"  {r['phase']}: {r['rows']} rows of {r['patients']} patients; {r['event_rows']} event rows of "
              f"{r['event_patients']} event patients ({r['event_rows'] / max(r['event_patients'], 1):.1f} per patient)")


if __name__ == "__main__":
    main()
