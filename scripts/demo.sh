#!/usr/bin/env bash
# The demo: every stage of the pipeline on a simulated cohort, through the real CLI.
set -euo pipefail
relapse="${VENV:-.venv}/bin/relapse"
out="${DEMO_DIR:-outputs/demo}"
n="${DEMO_PATIENTS:-3000}"

echo "== simulate $n patients into $out/data (synthetic: for demonstration only)"
"$relapse" simulate --patients "$n" --seed 7 --out "$out/data"
echo "== validate"
"$relapse" validate --data "$out/data"
