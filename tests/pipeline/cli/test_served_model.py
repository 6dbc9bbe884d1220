"""The registered model outside this project: loaded with `mlflow.pyfunc.load_model` in a fresh
virtual environment built from the model's own requirements.txt only (uv, from the package index
as any user would), it answers like batch scoring."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features import ENGINE
from tests.pipeline.cli.conftest import AS_OF, bin_path

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

PREDICT = """
import json, sys
import mlflow
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = pd.read_parquet(sys.argv[2])
answer = model.predict(rows)
answer.to_parquet(sys.argv[3])  # full precision, unlike to_json
import features
print(features.__file__)
"""


def _rows(workspace, n: int) -> pl.DataFrame:
    from features.build import scoring_table
    from pipeline.config import load_config
    from pipeline.io import drop_row_index, load_tables
    from pipeline.serving import load_model

    cfg = load_config(workspace.config)
    model = load_model("models:/relapse-risk@champion", workspace.root / "fresh-spec", cfg.mlflow)
    tables = drop_row_index(load_tables(workspace.data)[0].tables)
    plan = scoring_table(tables, model.phases, model.features, model.spec, date.fromisoformat(AS_OF))
    rows = plan.collect(engine=ENGINE)
    rows = rows.filter(pl.col("exclusion").is_null()).sort("patient_id").head(n)
    return rows.select("patient_id", "day", *model.bundle.feature_names)


def test_model_loads_in_a_fresh_venv_from_its_requirements_and_matches_batch_scores(scored, workspace, tmp_path):
    import mlflow

    mlflow.set_tracking_uri(workspace.tracking_uri)
    model_dir = Path(mlflow.artifacts.download_artifacts("models:/relapse-risk@champion", dst_path=str(tmp_path / "m")))
    assert (model_dir / "code" / "features").is_dir() and not list((model_dir / "code").rglob("__pycache__"))
    venv = tmp_path / "venv"
    uv = bin_path("uv")
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = str(venv / "bin" / "python")
    requirements = str(model_dir / "requirements.txt")
    subprocess.run([uv, "pip", "install", "-q", "--python", python, "-r", requirements], check=True)
    rows = _rows(workspace, 3)
    rows.write_parquet(tmp_path / "rows.parquet")
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MLFLOW_TRACKING_URI"] = workspace.tracking_uri  # lets the model look up its registered version
    done = subprocess.run(
        [python, "-c", PREDICT, str(model_dir), str(tmp_path / "rows.parquet"), str(tmp_path / "answer.parquet")],
        cwd=empty, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().startswith(str(model_dir / "code")), "the project code came from the model"
    answer = pl.read_parquet(tmp_path / "answer.parquet")
    batch = pl.read_parquet(scored[0]).filter(pl.col("patient_id").is_in(rows["patient_id"].implode()))
    batch = batch.sort("patient_id")
    assert answer["patient_id"].to_list() == batch["patient_id"].to_list() and answer.height == 3
    np.testing.assert_allclose(answer["risk_30d"].to_numpy(), batch["risk_30d"].to_numpy(), rtol=1e-9)
    for column in ("risk_band", "reason_1", "model_name", "model_version", "run_id"):
        assert answer[column].to_list() == batch[column].to_list(), column
