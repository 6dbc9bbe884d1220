"""Fault injection over many trials: SIGINT/SIGTERM at random moments of real `relapse score`
and `relapse train` processes, and a real `mlflow server` killed mid-training and mid-scoring.

Every trial asserts the exit code (0 when the job finished first, else 128 + signal), the
one-line message, that the destination holds exactly the old outputs or a complete new set,
that no staging or temporary folder is left, and that every registered version is complete.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline import model_store
from pipeline.config import load_config
from tests.pipeline.cli.conftest import AS_OF, mlflow_server, wait_for_http, write_config
from tests.pipeline.cli.faults import (
    assert_old_or_complete,
    snapshot,
    staging_left,
    start,
    wait_for_handlers,
    wait_for_shutdown,
    wait_for_staging,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

SCORING_TRIALS, TRAINING_TRIALS = 20, 10
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _check_exit(process: subprocess.Popen, sent: signal.Signals, timeout: float = 300) -> str:
    _, err = process.communicate(timeout=timeout)
    if process.returncode == 0:
        return "finished"
    assert process.returncode == 128 + sent, (process.returncode, err[-3000:])
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"relapse: interrupted by {sent.name}: "), err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return "interrupted"


def _signal_at(process: subprocess.Popen, sent: signal.Signals, delay: float) -> float | None:
    """Send `sent` after `delay` s unless the job ends first; then return how long it ran (the
    machine is less busy than when the reference was timed), else None."""
    started = time.monotonic()
    try:
        process.wait(timeout=delay)  # little output: the pipes cannot fill meanwhile
    except subprocess.TimeoutExpired:
        process.send_signal(sent)
        return None
    return time.monotonic() - started


def _versions_complete(uri: str, dst: Path) -> list[str]:
    """Every registered version of relapse-risk downloads and passes the bundle's hash checks."""
    import mlflow

    from models.bundle import ModelBundle

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # `models:/` URIs resolve through the registry (else the workspace's, set earlier)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = []
    for mv in client.search_model_versions("name = 'relapse-risk'"):
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/relapse-risk/{mv.version}", dst_path=str(dst / str(mv.version)), tracking_uri=uri
            )
        )
        ModelBundle.load(local / "artifacts" / "bundle")
        found.append(str(mv.version))
    return found


@pytest.fixture(scope="module")
def small_cohort(workspace, tmp_path_factory):
    data = tmp_path_factory.mktemp("trials") / "data"
    workspace.run("simulate", "--patients", "200", "--seed", "5", "--out", str(data))
    return data


def test_interrupting_scoring_at_random_moments(trained, workspace, small_cohort, tmp_path):
    rng = random.Random(16)
    dest = tmp_path / "dest"
    # 200 patients in batches of 60: signals land while a batch is worked on ahead, in its thread
    config = write_config(tmp_path / "batches.yaml", workspace.tracking_uri, "scoring:\n  batch_patients: 60\n")
    args = [
        "score",
        "--data",
        str(small_cohort),
        "--as-of",
        AS_OF,
        "--out",
        str(dest / "scores.parquet"),
        "--shap-out",
        str(dest / "shap.parquet"),
        "--config",
        str(config),
    ]
    began = time.monotonic()
    reference = start(args, tmp_path, tmp_path / "tmp-ref")
    ready = wait_for_handlers(reference)
    assert _check_exit(reference, signal.SIGINT) == "finished"
    duration = time.monotonic() - began - ready
    outcomes = []
    for trial in range(SCORING_TRIALS):
        old = snapshot(dest)
        tmpdir = tmp_path / f"tmp-{trial}"
        process = start(args, tmp_path, tmpdir)
        wait_for_handlers(process)
        sent = rng.choice(SIGNALS)
        duration = _signal_at(process, sent, rng.uniform(0, duration)) or duration  # random moments of a job
        exit_kind = _check_exit(process, sent)
        state = assert_old_or_complete(dest, old, "scores.parquet", "shap.parquet")
        assert not staging_left(dest) and not list(tmpdir.iterdir()), (staging_left(dest), list(tmpdir.iterdir()))
        outcomes.append((exit_kind, state))
    print(f"scoring trials (duration {duration:.1f} s): {sorted(set(outcomes))} {outcomes}")
    assert sum(kind == "interrupted" for kind, _ in outcomes) >= SCORING_TRIALS // 2


def test_interrupting_training_at_random_moments(workspace, small_cohort, tmp_path):
    rng = random.Random(61)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = write_config(tmp_path / "trials.yaml", uri)
    args = ["train", "--data", str(small_cohort), "--config", str(config)]
    began = time.monotonic()
    reference = start(args, tmp_path, tmp_path / "tmp-ref")
    ready = wait_for_handlers(reference)
    assert _check_exit(reference, signal.SIGINT) == "finished"
    duration = time.monotonic() - began - ready
    outcomes = []
    for trial in range(TRAINING_TRIALS):
        tmpdir = tmp_path / f"tmp-{trial}"
        process = start(args, tmp_path, tmpdir)
        wait_for_handlers(process)
        sent = rng.choice(SIGNALS)
        duration = _signal_at(process, sent, rng.uniform(0, duration)) or duration
        outcomes.append(_check_exit(process, sent))
        assert not list(tmpdir.iterdir()), list(tmpdir.iterdir())
    versions = _versions_complete(uri, tmp_path / "check")
    print(f"training trials (duration {duration:.1f} s): {outcomes}; complete versions {versions}")
    # a signal after the alias was set (while the CLI reports) leaves that version, complete
    assert 1 + outcomes.count("finished") <= len(versions) <= 1 + TRAINING_TRIALS
    assert outcomes.count("interrupted") >= TRAINING_TRIALS // 2


def test_a_signal_after_the_result_line_never_kills_the_process(trained, workspace, small_cohort, tmp_path):
    """The job has published and said so. A signal while the CLI finishes its report exits 130/143
    saying the new set was published; one while Python shuts down (seconds with XGBoost, Polars
    and MLflow loaded, default signal actions restored) leaves the job's status, 0."""
    dest = tmp_path / "dest"
    args = ["score", "--data", str(small_cohort), "--as-of", AS_OF, "--out", str(dest / "scores.parquet")]
    args += ["--config", str(workspace.config)]
    for trial, (sent, at_shutdown) in enumerate(
        [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGTERM, True), (signal.SIGINT, False)]
    ):
        tmpdir = tmp_path / f"tmp-{trial}"
        process = start(args, tmp_path, tmpdir)
        assert next((line for line in process.stdout if line.startswith("wrote ")), None), process.communicate()
        if at_shutdown:
            assert wait_for_shutdown(process), process.communicate()
        process.send_signal(sent)
        _, err = process.communicate(timeout=120)
        if at_shutdown or process.returncode == 0:
            assert process.returncode == 0 and "Traceback" not in err, (sent, process.returncode, err[-3000:])
        else:
            assert process.returncode == 128 + sent, (sent, process.returncode, err[-3000:])
            assert err.strip().splitlines()[-1].startswith(f"relapse: interrupted by {sent.name}: the new outputs were")
        assert assert_old_or_complete(dest, {}, "scores.parquet", None) == "new"
        assert not staging_left(dest) and not list(tmpdir.iterdir())


def _kill_server(process: subprocess.Popen) -> None:
    """SIGKILL the server and every process below it: the tracking store is gone."""
    import psutil

    try:
        tree = [*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]
    except psutil.NoSuchProcess:
        tree = []
    for member in tree:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(tree, timeout=30)
    process.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    """A real MLflow server (SQLite backend, artifacts written by clients to a local folder)."""
    store = f"sqlite:///{tmp_path / 'server.db'}"
    process, uri = mlflow_server(
        tmp_path, store, "--default-artifact-root", (tmp_path / "artifacts").as_uri(), "--no-serve-artifacts"
    )
    yield process, uri, store
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def test_tracking_server_killed_mid_training_and_mid_scoring(trained, workspace, small_cohort, server, tmp_path):
    process, uri, store = server
    config = write_config(tmp_path / "remote.yaml", uri)
    job = start(["train", "--data", str(small_cohort), "--config", str(config)], tmp_path, tmp_path / "tmp-train")
    for line in job.stdout:  # past the reachability check: the server dies while the models are fitted
        if "building the landmark table" in line:
            break
    _kill_server(process)
    _, err = job.communicate(timeout=600)
    assert job.returncode == 2, err[-3000:]
    assert f"MLflow at {uri} failed while logging the training run" in err and "Traceback" not in err
    assert not list((tmp_path / "tmp-train").iterdir())
    assert _versions_complete(store, tmp_path / "check") == []  # nothing registered, nothing half-registered

    # scoring: the local champion model, its run logged to a server that dies mid-job
    dest = tmp_path / "dest"
    cfg = load_config(workspace.config).mlflow
    model = model_store.resolve_model(cfg, "models:/relapse-risk/1", tmp_path / "model").bundle_dir.parent.parent
    restarted = subprocess.Popen(
        process.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, start_new_session=True
    )
    try:
        wait_for_http(f"{uri}/health", restarted)
        args = [
            "score",
            "--data",
            str(small_cohort),
            "--as-of",
            AS_OF,
            "--out",
            str(dest / "scores.parquet"),
            "--model",
            str(model),
            "--config",
            str(config),
        ]
        first = start(args, tmp_path, tmp_path / "tmp-s0")
        _, err = first.communicate(timeout=600)
        assert first.returncode == 0, err[-3000:]
        old = snapshot(dest)
        job = start(args, tmp_path, tmp_path / "tmp-s1")
        assert wait_for_staging(job, dest), "the job ended before it staged anything"  # past the server check
        _kill_server(restarted)
        _, err = job.communicate(timeout=600)
    finally:
        _kill_server(restarted)
    assert job.returncode == 2, err[-3000:]
    assert f"MLflow at {uri} failed while logging the scoring run" in err and "Traceback" not in err
    assert snapshot(dest) == old and not staging_left(dest) and not list((tmp_path / "tmp-s1").iterdir())
