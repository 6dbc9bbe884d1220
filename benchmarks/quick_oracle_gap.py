"""Quick check of the issue-4 comparison: XGBoost vs logistic baseline vs oracle, per phase and pooled.

The same simulation, landmark table and `fit_phases` procedure as `pipeline.train.train`, without
MLflow, artefacts or SHAP, and with few bootstrap samples, for fast iteration on the simulator
and the XGBoost defaults. `benchmarks/bench_train.py` remains the real check.

    .venv/bin/python benchmarks/quick_oracle_gap.py [--patients 10000] [--seed 2026] [--boot 20]
        [--phases acute,early] [--sim override.yaml] [--set learning_rate=0.1 --set max_depth=4 ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from features.build import landmark_table
from features.spec import fit_feature_spec
from models.evaluation import metrics_table, oof_frame
from models.training import fit_phases
from pipeline import io
from pipeline.config import load_config
from pipeline.simulator import load_simulation_config, simulate_cohort
from pipeline.weights import phase_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--boot", type=int, default=20, help="bootstrap samples for the intervals")
    parser.add_argument("--phases", default="", help="comma-separated subset of phases (default: all)")
    parser.add_argument("--sim", type=Path, default=None, help="simulation config override (deep-merged)")
    parser.add_argument("--set", action="append", default=[], help="xgboost parameter override, KEY=VALUE")
    args = parser.parse_args()

    config = load_config()
    xgb = config.model.xgboost.model_copy(
        update={k: type(getattr(config.model.xgboost, k))(v) for k, v in (s.split("=", 1) for s in args.set)}
    )
    model_cfg = config.model.model_copy(update={"bootstrap_samples": args.boot, "xgboost": xgb})
    phases = [p for p in config.phase_names if not args.phases or p in args.phases.split(",")]

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        cohort = simulate_cohort(args.patients, args.seed, load_simulation_config(args.sim))
        io.write_tables(cohort.tables, data)
        validated, _ = io.load_tables(data, required=("patients", "outcomes"))
        tables = io.drop_row_index(validated.tables)
    truth = cohort.truth["landmark_risk"]
    relapsed = cohort.truth["patients"]
    print(
        f"simulated {args.patients} patients in {time.perf_counter() - started:.0f} s; "
        f"columns of truth patients: {relapsed.columns}"
    )
    spec = fit_feature_spec(tables, config.features)
    landmarks = landmark_table(tables, config.phases, config.landmarks, config.features, spec).collect()
    out = tables["outcomes"]
    print(
        f"relapse observed in {out['relapse_date'].is_not_null().mean():.3f} of patients; "
        f"landmark rows {landmarks.height}; built in {time.perf_counter() - started:.0f} s"
    )

    rows, data = {}, {}
    t0 = time.perf_counter()
    for phase in phases:
        part, data[phase] = phase_data(landmarks, spec, phase)
        rows[phase] = part.select("patient_id", "landmark_date", "day", "label", "ipcw_weight")
    trained = fit_phases(data, list(spec.feature_names), model_cfg)
    fits = trained.fits
    print(f"shared booster {trained.shared_trees} trees; fitted in {time.perf_counter() - t0:.0f} s")
    for phase, f in fits.items():
        auc = {k: round(v["auroc"][0], 4) for k, v in f.metrics.items()}
        print(f"  {phase}: {f.status}, {f.n_rows} rows, {f.n_event_patients} event patients, AUROC {auc}, "
              f"own trees {f.fold_added_trees} / {f.added_trees}", flush=True)

    oof = oof_frame(rows, fits).join(
        truth.select("patient_id", "landmark_date", pl.col("true_risk_30d").alias("risk_oracle")),
        on=["patient_id", "landmark_date"],
        how="left",
    )
    table = metrics_table(fits, oof, args.boot, model_cfg.seed, "risk_oracle")
    wide = table.filter(pl.col("metric").is_in(["auroc", "calibration_slope"])).pivot(
        on="model", index=["phase", "metric"], values="estimate"
    )
    with pl.Config(tbl_rows=60, tbl_cols=10, float_precision=3):
        print(wide)
    pooled = {
        r["model"]: r["estimate"]
        for r in table.filter((pl.col("phase") == "pooled") & (pl.col("metric") == "auroc")).iter_rows(named=True)
    }
    print(
        f"pooled AUROC: xgboost {pooled['xgboost']:.4f}  logistic {pooled['logistic']:.4f}  "
        f"oracle {pooled['oracle']:.4f}  gap {pooled['oracle'] - pooled['xgboost']:.4f}  "
        f"margin over logistic {pooled['xgboost'] - pooled['logistic']:+.4f}; "
        f"total {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
