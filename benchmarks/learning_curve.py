"""Learning curve: the project against the logistic baseline (and the oracle) as cohorts grow.

Each cohort goes through the real CLI (`relapse simulate`, `relapse train`) with its own MLflow
store; the figures are read back from the training run: per-phase and pooled AUROC, Brier and
calibration slope of the project (`xgboost`: shared booster + phase boosters, calibrated), the
logistic baseline and, on simulated data, the oracle (true risk), plus the range of the
calibrated out-of-fold risks and each phase's status.

    .venv/bin/python benchmarks/learning_curve.py [--sizes 300,1000,3000,10000] [--seed 1]
        [--real pharmacosmoking] [--config FILE] [--out results.json]

`--sizes ''` skips the simulated cohorts; `--real ''` skips pharmacoSmoking (benchmarks/cohorts.py,
config benchmarks/pharmacosmoking.yaml). `--config` is merged over the default config (use it
for quick runs with fewer bootstrap samples; the README quotes the default config).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
RELAPSE = str(Path(sys.executable).with_name("relapse"))
SMOKING_CONFIG = REPO / "benchmarks" / "pharmacosmoking.yaml"
METRICS = ("auroc", "brier", "calibration_slope")
MODELS = {"xgboost": "", "logistic": "logistic_", "oracle": "oracle_"}


def _config(path: Path, tracking_uri: str, base: Path | None, override: Path | None) -> Path:
    from pipeline.config import deep_merge

    merged = yaml.safe_load(base.read_text()) if base else {}
    if override:
        merged = deep_merge(merged, yaml.safe_load(override.read_text()) or {})
    merged = deep_merge(merged, {"mlflow": {"tracking_uri": tracking_uri}})
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return path


def _cli(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([RELAPSE, *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"relapse {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def _run_figures(tracking_uri: str, dst: Path) -> dict:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    mv = client.get_model_version("relapse-risk", "1")
    run = client.get_run(mv.run_id)
    m, tags = run.data.metrics, run.data.tags
    phases = sorted({k.split(".", 1)[1] for k in tags if k.startswith("phase_status.")})
    figures = {"phases": {}, "pooled": {}}
    for phase in [*phases, "pooled"]:
        row = {model: {k: m.get(f"{prefix}{k}_{phase}") for k in METRICS} for model, prefix in MODELS.items()}
        if phase != "pooled":
            row["status"] = tags[f"phase_status.{phase}"]
            row["event_patients"] = m.get(f"n_event_patients_{phase}")
            row["event_rate_km"] = m.get(f"event_rate_km_{phase}")
            row["event_rate_censoring_model"] = m.get(f"event_rate_censoring_model_{phase}")
            row["true_risk_mean"] = m.get(f"true_risk_mean_{phase}")
            figures["phases"][phase] = row
        else:
            figures["pooled"] = row
    oof = pl.read_parquet(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="oof_predictions.parquet", dst_path=str(dst)))
    figures["risk_min"], figures["risk_max"] = float(oof["risk"].min()), float(oof["risk"].max())
    return figures


def one_cohort(name: str, work: Path, config: Path | None, size: int | None, seed: int) -> dict:
    from benchmarks.cohorts import write_pharmaco_smoking

    work.mkdir(parents=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    data = work / "data"
    if size is None:
        write_pharmaco_smoking(data)
        cfg = _config(work / "config.yaml", uri, SMOKING_CONFIG, config)
    else:
        _cli("simulate", "--patients", str(size), "--seed", str(seed), "--out", str(data))
        cfg = _config(work / "config.yaml", uri, None, config)
    seconds = _cli("train", "--data", str(data), "--config", str(cfg))
    return {"cohort": name, "train_seconds": round(seconds, 1), **_run_figures(uri, work / "dl")}


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def report(result: dict) -> None:
    print(f"\n== {result['cohort']}: train {result['train_seconds']} s; calibrated OOF risk "
          f"{result['risk_min']:.4f}-{result['risk_max']:.4f}")
    print(f"{'phase':<14}{'status':<12}{'ev.pat':>7}  " + "  ".join(f"{m:>22}" for m in MODELS))
    rows = [*result["phases"].items(), ("pooled", result["pooled"])]
    for phase, row in rows:
        cells = ["/".join(_fmt(row[m][k]) for k in METRICS) for m in MODELS]
        ev = row.get("event_patients")
        print(f"{phase:<14}{row.get('status', ''):<12}{'' if ev is None else int(ev):>7}  "
              + "  ".join(f"{c:>22}" for c in cells))
    for phase, row in result["phases"].items():
        if row.get("true_risk_mean") is not None:
            print(f"  {phase}: weighted event rate KM {_fmt(row['event_rate_km'])}, censoring model "
                  f"{_fmt(row['event_rate_censoring_model'])}; mean true risk {_fmt(row['true_risk_mean'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300,1000,3000,10000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--real", default="pharmacosmoking")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    print("cells: AUROC/Brier/calibration slope (out-of-fold, IPCW-weighted)")
    results = []
    with tempfile.TemporaryDirectory(prefix="relapse-lc-") as tmp:
        cohorts = [(f"simulated {int(s):,}", int(s)) for s in args.sizes.split(",") if s]
        cohorts += [(args.real, None)] if args.real else []
        for name, size in cohorts:
            result = one_cohort(name, Path(tmp) / name.replace(" ", "_").replace(",", ""), args.config, size,
                                args.seed)
            report(result)
            results.append(result)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
