#!/usr/bin/env bash
# The demo: every stage of the pipeline on a simulated cohort, through the real CLI.
# Simulated data are for demonstration and testing only.
set -euo pipefail
relapse="${VENV:-.venv}/bin/relapse"
out="${DEMO_DIR:-outputs/demo}"
n="${DEMO_PATIENTS:-3000}"
as_of="${DEMO_AS_OF:-2024-09-01}"
mkdir -p "$out"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$PWD/mlflow.db}"

echo "== 1/6 simulate $n patients into $out/data (SYNTHETIC: demonstration only)"
rm -rf "$out/data"
"$relapse" simulate --patients "$n" --seed 7 --out "$out/data"
echo "== 2/6 validate the tables against the data contract"
"$relapse" validate --data "$out/data"
echo "== 3/6 train one calibrated XGBoost model per recovery phase (MLflow: $MLFLOW_TRACKING_URI)"
train_log="$out/train.log"
"$relapse" train --data "$out/data" | tee "$train_log"
version=$(sed -n 's/.*registered relapse-risk version \([0-9]*\).*/\1/p' "$train_log" | tail -1)
echo "== 4/6 promote version $version to champion"
"$relapse" promote --version "$version" || echo "   champion kept: version $version is not better than it"
echo "== 5/6 score the cohort as of $as_of"
"$relapse" score --data "$out/data" --as-of "$as_of" --out "$out/scores.parquet" --shap-out "$out/shap.parquet"
echo "== 6/6 write the audit report"
"$relapse" audit --scores "$out/scores.parquet" --data "$out/data" --out "$out/audit_report.html"
cat <<DONE

Demo finished. Outputs:
  data (simulated)  $out/data
  scores            $out/scores.parquet  (+ .manifest.json)
  SHAP values       $out/shap.parquet
  audit report      $out/audit_report.html  (open in a browser; works offline)
  MLflow store      $MLFLOW_TRACKING_URI  ('make mlflow-ui' to browse)
DONE
