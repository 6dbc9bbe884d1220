"""`relapse score` end to end: output, exclusions, manifest, atomicity, quarantine, SHAP
additivity, point-in-time invariance, and the REST model answering like batch scoring."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from features import ENGINE
from pipeline.cli import app
from tests.pipeline.cli.conftest import AS_OF, bin_path, free_port, wait_for_http

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]


def manifest_of(out):
    return json.loads(out.with_name(out.name + ".manifest.json").read_text())


def test_scores_have_the_documented_columns_bands_and_identity(scored):
    out, _, result = scored
    scores = pl.read_parquet(out)
    assert scores.columns[:4] == ["patient_id", "as_of", "day", "phase"]
    assert scores.columns[-3:] == ["model_name", "model_version", "run_id"]
    for i in (1, 2, 3):
        assert {
            f"reason_{i}",
            f"reason_{i}_feature",
            f"reason_{i}_value",
            f"reason_{i}_shap",
            f"reason_{i}_effect",
        } <= set(scores.columns)
    assert scores["risk_30d"].is_between(0, 1).all()
    expected = np.where(scores["risk_30d"] >= 0.25, "high", np.where(scores["risk_30d"] >= 0.10, "moderate", "low"))
    assert scores["risk_band"].to_list() == expected.tolist()
    assert (scores["as_of"] == date.fromisoformat(AS_OF)).all()
    assert scores["model_version"].unique().to_list() == ["1"]
    assert scores["phase"].is_in(["acute", "early", "consolidation", "maintenance"]).all()
    assert (scores.filter(pl.col("reason_1").is_not_null())["reason_1_shap"] > 0).all()
    assert scores["reason_1"].drop_nulls().str.len_chars().min() > 5
    assert "SIMULATED" in result.output


def test_exclusions_and_manifest_account_for_every_patient(scored, workspace):
    out, shap_out, _ = scored
    m = manifest_of(out)
    patients = pl.read_parquet(workspace.data / "patients.parquet")
    outcomes = pl.read_parquet(workspace.data / "outcomes.parquet")
    as_of = date.fromisoformat(AS_OF)
    not_yet = patients.filter(pl.col("intake_date") > as_of).height
    relapsed = (
        outcomes.join(patients, on="patient_id")
        .filter((pl.col("relapse_date") <= as_of) & (pl.col("intake_date") <= as_of))
        .height
    )
    assert m["patients"]["excluded"]["not_yet_in_treatment"] == not_yet
    assert m["patients"]["excluded"]["relapsed"] == relapsed
    assert m["patients"]["scored"] + sum(m["patients"]["excluded"].values()) == patients.height
    assert m["output"]["rows"] == pl.read_parquet(out).height
    gone = outcomes.filter(pl.col("last_followup_date") < as_of).select("patient_id")
    assert m["patients"]["scored_past_last_followup"] == pl.read_parquet(out).join(gone, on="patient_id",
                                                                                   how="semi").height
    from pipeline.io import file_sha256

    assert m["output"]["sha256"] == file_sha256(out)
    assert m["inputs"]["patients"]["sha256"] == file_sha256(workspace.data / "patients.parquet")
    assert m["model"]["version"] == "1" and len(m["model"]["bundle_manifest_sha256"]) == 64
    assert m["packages"]["xgboost"].startswith("3.") and m["duration_s"] > 0 and m["scoring_run_id"]
    assert "patient_id" not in json.dumps(m["patients"])


def test_shap_values_add_up_to_the_margin(scored):
    out, shap_out, _ = scored
    shap = pl.read_parquet(shap_out)
    values = shap.select(pl.selectors.starts_with("shap__")).to_numpy()
    np.testing.assert_allclose(values.sum(axis=1) + shap["base_value"].to_numpy(), shap["margin"].to_numpy(), atol=1e-4)
    scores = pl.read_parquet(out)
    assert shap["patient_id"].to_list() == scores["patient_id"].to_list()


def test_records_after_the_as_of_date_change_nothing(scored, workspace, tmp_path):
    out, _, _ = scored
    future = tmp_path / "future"
    shutil.copytree(workspace.data, future)
    later = date.fromisoformat(AS_OF) + timedelta(days=3)
    admitted = pl.read_parquet(future / "patients.parquet").filter(pl.col("intake_date") <= later).select("patient_id")
    bdnf = pl.read_parquet(future / "bdnf.parquet")
    extra = (
        bdnf.group_by("patient_id")
        .first()
        .join(admitted, on="patient_id")
        .with_columns(pl.lit(later).alias("sample_date"), pl.lit(1.5).alias("bdnf_ng_ml"))
    )
    pl.concat([bdnf, extra.select(bdnf.columns)]).write_parquet(future / "bdnf.parquet")
    therapy = pl.read_parquet(future / "therapy_sessions.parquet")
    missed = (
        therapy.group_by("patient_id")
        .first()
        .join(admitted, on="patient_id")
        .with_columns(pl.lit(later).alias("session_date"), pl.lit(False).alias("attended"))
    )
    pl.concat([therapy, missed.select(therapy.columns)]).write_parquet(future / "therapy_sessions.parquet")
    again = tmp_path / "again.parquet"
    workspace.run("score", "--data", str(future), "--as-of", AS_OF, "--out", str(again), "--reasons", "3")
    assert pl.read_parquet(again).equals(pl.read_parquet(out))


def test_biomarkers_in_another_unit_are_warned_of_and_counted_in_the_manifest(scored, workspace, tmp_path):
    out, _, _ = scored
    assert json.loads(out.with_name(out.name + ".manifest.json").read_text())["implausible_values"] == {}
    picograms = tmp_path / "pg"
    shutil.copytree(workspace.data, picograms)
    bdnf = pl.read_parquet(picograms / "bdnf.parquet")
    bdnf.with_columns(pl.col("bdnf_ng_ml") * 1000).write_parquet(picograms / "bdnf.parquet")  # sent in pg/mL
    again = tmp_path / "pg.parquet"
    result = workspace.run("score", "--data", str(picograms), "--as-of", AS_OF, "--out", str(again))
    assert "warning: bdnf.bdnf_ng_ml outside 1-100 ng/mL: " in result.output and "check the unit" in result.output
    found = json.loads(again.with_name(again.name + ".manifest.json").read_text())["implausible_values"]
    assert found["bdnf.bdnf_ng_ml outside 1-100 ng/mL"]["values"] == bdnf.filter(
        ~(pl.col("bdnf_ng_ml") * 1000).is_between(1, 100)).height > 0


def test_beat_recordings_of_one_beat_or_merged_sessions_are_warned_of_and_counted(scored, workspace, tmp_path):
    out, _, _ = scored
    clean = json.loads(out.with_name(out.name + ".manifest.json").read_text())["beat_recordings"]
    rr = pl.read_parquet(workspace.data / "rr_intervals.parquet")
    assert clean["recordings"] == rr.select(pl.struct("patient_id", "recording_id").n_unique()).item() > 0
    assert clean["single_beat"] == clean["merged"] == 0
    split, reused = rr.group_by("patient_id").agg(pl.col("recording_id").n_unique().alias("n")).filter(
        pl.col("n") > 1).sort("patient_id")["patient_id"].head(2)
    beat_ids = pl.format("beat-{}", pl.int_range(pl.len()))
    rr = rr.with_columns(
        pl.when(pl.col("patient_id") == split).then(beat_ids)  # each beat exported under its own id
        .when(pl.col("patient_id") == reused).then(pl.lit("r1"))  # one id for every session
        .otherwise(pl.col("recording_id")).alias("recording_id"))
    odd = tmp_path / "odd"
    shutil.copytree(workspace.data, odd)
    rr.write_parquet(odd / "rr_intervals.parquet")
    again = tmp_path / "odd.parquet"
    result = workspace.run("score", "--data", str(odd), "--as-of", AS_OF, "--out", str(again))
    found = json.loads(again.with_name(again.name + ".manifest.json").read_text())["beat_recordings"]
    beats = rr.filter(pl.col("patient_id") == split).height
    assert found["single_beat"] == beats and found["merged"] == 1 and found["merged_example"][0] == reused
    single = f"warning: rr_intervals: {beats:,} of {found['recordings']:,} recording(s) hold a single beat"
    assert single in result.output
    assert f"more than a day apart (e.g. patient {reused}, recording r1: " in result.output


def test_an_as_of_date_after_today_is_warned_of(trained, workspace, tmp_path):
    ahead = (date.today() + timedelta(days=400)).isoformat()
    result = CliRunner().invoke(app, ["score", "--data", str(workspace.data), "--as-of", ahead, "--out",
                                      str(tmp_path / "ahead.parquet"), "--config", str(workspace.config)])
    assert result.exit_code in (0, 3)  # some scored, or everyone past the last phase by then
    assert f"warning: --as-of {ahead} is after today" in result.output
    ok = workspace.run("score", "--data", str(workspace.data), "--as-of", AS_OF, "--out", str(tmp_path / "ok.parquet"))
    assert "is after today" not in ok.output


def test_rescoring_removes_the_replaced_scores_shap_file_unless_it_changed(trained, workspace, tmp_path):
    out, shap = tmp_path / "scores.parquet", tmp_path / "shap.parquet"
    args = ("score", "--data", str(workspace.data), "--as-of", AS_OF, "--out", str(out))
    workspace.run(*args, "--shap-out", str(shap))
    assert manifest_of(out)["shap_output"]["file"] == str(shap) and shap.is_file()
    again = workspace.run(*args)
    assert f"removed {shap}: the SHAP values of the scores this run replaced" in again.output
    assert not shap.exists() and "shap_output" not in manifest_of(out)

    workspace.run(*args, "--shap-out", str(shap))
    shap.write_bytes(shap.read_bytes() + b"edited")  # no longer the file that manifest recorded
    kept = workspace.run(*args)
    assert "removed" not in kept.output and shap.is_file()


def test_contract_errors_stop_scoring_and_quarantine_sets_rows_aside(trained, workspace, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(workspace.data, bad)
    patients = pl.read_parquet(bad / "patients.parquet")
    patients.with_columns(
        pl.when(pl.int_range(pl.len()) < 2).then(150.0).otherwise(pl.col("age_at_intake")).alias("age_at_intake")
    ).write_parquet(bad / "patients.parquet")
    bdnf = pl.read_parquet(bad / "bdnf.parquet")
    bdnf.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(-2.0).otherwise(pl.col("bdnf_ng_ml")).alias("bdnf_ng_ml")
    ).write_parquet(bad / "bdnf.parquet")
    out = tmp_path / "scores.csv"
    failed = workspace.run("score", "--data", str(bad), "--as-of", AS_OF, "--out", str(out), expect=2)
    assert "patients.age_at_intake: 2 row(s)" in failed.output and "bdnf.bdnf_ng_ml: 1 row(s)" in failed.output
    assert list(tmp_path.glob("scores*")) == []
    workspace.run("score", "--data", str(bad), "--as-of", AS_OF, "--out", str(out), "--on-invalid", "quarantine")
    rejects = pl.read_parquet(tmp_path / "scores.csv.rejects.parquet")
    assert rejects.filter(pl.col("table") == "patients")["row"].to_list() == [1, 2]
    assert rejects.filter(pl.col("table") == "bdnf").filter(pl.col("reason").str.contains("allowed range"))[
        "row"
    ].to_list() == [4]
    m = manifest_of(out)
    for table, entry in m["inputs"].items():
        assert entry["rows_used"] + entry["rows_rejected"] + entry["rows_empty"] == entry["rows"], table
        assert entry["rows_rejected"] == rejects.filter(pl.col("table") == table).height
    p = m["patients"]
    assert p["scored"] + sum(p["excluded"].values()) + p["rejected"] == p["in_input"]
    assert pl.read_csv(out).height == p["scored"]


def test_many_batches_write_the_one_batch_result_in_patient_order(scored, workspace, tmp_path):
    """Batches of 150 patients are written range by range of patient_id: the same rows, values
    and order as the one-batch run, in Parquet and CSV alike."""
    out, shap_out, _ = scored
    cfg = tmp_path / "batches.yaml"
    cfg.write_text(workspace.config.read_text() + "scoring:\n  batch_patients: 150\n")
    many, many_shap = tmp_path / "scores.parquet", tmp_path / "shap.parquet"
    from typer.testing import CliRunner

    from pipeline.cli import app

    def run(*args):
        result = CliRunner().invoke(app, ["score", "--data", str(workspace.data), "--as-of", AS_OF, *args,
                                          "--config", str(cfg)])
        assert result.exit_code == 0, result.output

    run("--out", str(many), "--shap-out", str(many_shap))
    assert manifest_of(many)["patients"] == manifest_of(out)["patients"]
    one = pl.read_parquet(out)
    assert one["patient_id"].is_sorted() and one.height > 150
    assert pl.read_parquet(many).equals(one)
    assert pl.read_parquet(many_shap).equals(pl.read_parquet(shap_out))
    as_csv = tmp_path / "scores.csv"
    run("--out", str(as_csv))
    assert pl.read_csv(as_csv, infer_schema=False)["patient_id"].to_list() == one["patient_id"].to_list()


def test_a_header_only_table_scores_as_if_the_table_were_absent(trained, workspace, tmp_path):
    """A clinic without HRV devices may export an empty hrv file: the same scores as without the
    file, the group reported missing, never an error."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    outputs = {}
    for case in ("empty", "absent"):
        data = tmp_path / case
        shutil.copytree(workspace.data, data)
        for table in ("hrv", "rr_intervals"):
            path = next(data.glob(f"{table}.*"))
            if case == "empty":
                pl.read_parquet(path).head(0).write_parquet(path)
            else:
                path.unlink()
        outputs[case] = tmp_path / f"{case}.parquet"
        result = CliRunner().invoke(app, ["score", "--data", str(data), "--as-of", AS_OF, "--out", str(outputs[case]),
                                          "--config", str(workspace.config)])
        assert result.exit_code == 0, result.output
        assert "feature group 'hrv'" in result.output
    identity = ["run_id"]
    assert pl.read_parquet(outputs["empty"]).drop(identity).equals(pl.read_parquet(outputs["absent"]).drop(identity))


def test_empty_records_change_no_score(scored, workspace, tmp_path):
    """Rows with no value at all (a spreadsheet's empty rows), in patients and in a record
    table, scored in patient batches: the same scores as without them."""
    data = tmp_path / "data"
    shutil.copytree(workspace.data, data)
    for table in ("patients", "bdnf"):
        path = next(data.glob(f"{table}.*"))
        frame = pl.read_parquet(path)
        blank = pl.DataFrame([pl.Series(c, [None, None], dtype=t) for c, t in frame.schema.items()])
        pl.concat([frame.head(3), blank, frame.slice(3)]).write_parquet(path)
    cfg = tmp_path / "batches.yaml"
    cfg.write_text(workspace.config.read_text() + "scoring:\n  batch_patients: 200\n")
    out = tmp_path / "scores.parquet"
    from typer.testing import CliRunner

    from pipeline.cli import app

    args = ["score", "--data", str(data), "--as-of", AS_OF, "--out", str(out), "--reasons", "3", "--config", str(cfg)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    m, before = manifest_of(out), manifest_of(scored[0])
    assert m["patients"] == before["patients"]
    for table in ("patients", "bdnf"):
        now, then = m["inputs"][table], before["inputs"][table]
        assert (now["rows"], now["rows_empty"], now["rows_used"]) == (then["rows"] + 2, 2, then["rows_used"])
    assert pl.read_parquet(out).drop("run_id").equals(pl.read_parquet(scored[0]).drop("run_id"))


def test_a_run_that_fails_midway_writes_nothing(trained, workspace, tmp_path, monkeypatch):
    import pipeline.score as stage

    real, calls = stage.explain_rows, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(stage, "explain_rows", flaky)
    cfg = tmp_path / "batches.yaml"
    cfg.write_text(workspace.config.read_text() + "scoring:\n  batch_patients: 200\n")
    out = tmp_path / "scores.parquet"
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(
        app, ["score", "--data", str(workspace.data), "--as-of", AS_OF, "--out", str(out), "--config", str(cfg)]
    )
    assert result.exit_code != 0 and len(calls) == 2
    assert list(tmp_path.iterdir()) == [cfg]


def test_rest_model_answers_like_batch_scoring(scored, workspace):
    out, shap_out, _ = scored
    from features.build import scoring_table
    from pipeline.io import drop_row_index, load_tables
    from pipeline.serving import load_model

    model = load_model("models:/relapse-risk@champion", workspace.root / "rest-model", _config(workspace).mlflow)
    tables = drop_row_index(load_tables(workspace.data)[0].tables)
    plan = scoring_table(tables, model.phases, model.features, model.spec, date.fromisoformat(AS_OF))
    rows = plan.collect(engine=ENGINE)
    rows = rows.filter(pl.col("exclusion").is_null()).sort("patient_id").head(25)
    payload = rows.select("patient_id", "day", *model.bundle.feature_names).to_pandas()
    split = payload.to_json(orient="split", index=False, double_precision=15)
    body = json.dumps({"dataframe_split": json.loads(split)}).encode()
    port = free_port()
    bin_dir = str(Path(bin_path("mlflow")).parent)  # the server starts uvicorn from the same venv
    env = {**os.environ, "MLFLOW_TRACKING_URI": workspace.tracking_uri, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    server = subprocess.Popen(
        [
            bin_path("mlflow"),
            "models",
            "serve",
            "-m",
            "models:/relapse-risk@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=workspace.root,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", server)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = pl.DataFrame(json.loads(response.read())["predictions"])
        url = f"http://127.0.0.1:{port}/invocations"
        minimal = _post(url, {"dataframe_records": [{"day": 20, "age_at_intake": 30, "sex_female": 1},
                                                    {"day": 400, "age_at_intake": 52, "sex_male": 1}]})
        bare = _post(url, {"dataframe_records": [{"day": 20}]})
        refused = {day: _post(url, {"dataframe_records": [{"day": day}]}) for day in (900, 12.5, "ten")}
        wrong_type = _post(url, {"dataframe_records": [{"day": 20, "age_at_intake": "old"}]})
    finally:
        server.terminate()
        server.wait(timeout=30)
    batch = pl.read_parquet(out).filter(pl.col("patient_id").is_in(rows["patient_id"].implode())).sort("patient_id")
    assert answer["patient_id"].to_list() == batch["patient_id"].to_list()
    np.testing.assert_allclose(answer["risk_30d"].to_numpy(), batch["risk_30d"].to_numpy(), rtol=1e-9)
    assert answer["risk_band"].to_list() == batch["risk_band"].to_list()
    assert answer["reason_1"].to_list() == batch["reason_1"].to_list()
    for column in ("model_name", "model_version", "run_id"):
        assert answer[column].to_list() == batch[column].to_list(), column

    status, body = minimal  # no patient_id, only the inputs every patient has: the rest is unknown
    predictions = body["predictions"]
    assert status == 200 and [p["phase"] for p in predictions] == ["early", "maintenance"]
    assert all(0 < p["risk_30d"] < 1 and p["model_version"] == batch["model_version"][0] for p in predictions)
    status, body = bare  # the model never saw a patient without an age: refused, not extrapolated
    assert status == 400 and "'age_at_intake' is required" in body["message"], body
    for day, rule in ((900, "outside every recovery phase"), (12.5, "whole number"), ("ten", "whole number")):
        status, body = refused[day]
        assert status == 400 and rule in body["message"] and "'day'" in body["message"], body
        assert "\n" not in body["message"] and "Traceback" not in json.dumps(body) and len(body["message"]) < 200
    status, body = wrong_type
    assert status == 400 and "age_at_intake" in body["message"] and "Traceback" not in json.dumps(body)


def _post(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _config(workspace):
    from pipeline.config import load_config

    return load_config(workspace.config)


def test_removing_records_after_the_as_of_date_changes_nothing(scored, workspace, tmp_path):
    out, _, _ = scored
    past = tmp_path / "past"
    shutil.copytree(workspace.data, past)
    as_of = date.fromisoformat(AS_OF)
    dated = {
        "bdnf": "sample_date",
        "hrv": "recorded_at",
        "rr_intervals": "recorded_at",
        "therapy_sessions": "session_date",
        "assessments": "assessed_on",
    }
    removed = 0
    for table, column in dated.items():
        frame = pl.read_parquet(past / f"{table}.parquet")
        day = pl.col(column).dt.date() if frame.schema[column] != pl.Date else pl.col(column)
        kept = frame.filter(day <= as_of)
        removed += frame.height - kept.height
        kept.write_parquet(past / f"{table}.parquet")
    assert removed > 0
    again = tmp_path / "again.parquet"
    workspace.run("score", "--data", str(past), "--as-of", AS_OF, "--out", str(again), "--reasons", "3")
    assert pl.read_parquet(again).equals(pl.read_parquet(out))
