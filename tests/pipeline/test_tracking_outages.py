"""MLflow outages seen from the tracking module: a dead server is named before any work,
failures mid-job become one clear error, retries are bounded."""

import os
import socket

import pytest

from pipeline import tracking
from pipeline.config import MlflowConfig


def _cfg(uri: str) -> MlflowConfig:
    return MlflowConfig(experiment="e", registered_model="m", tracking_uri=uri)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_named_after_bounded_tries():
    uri = f"http://127.0.0.1:{_closed_port()}"
    pauses = []
    with pytest.raises(tracking.TrackingUnavailable, match=f"MLflow tracking server {uri} is unreachable") as err:
        tracking.check_reachable(_cfg(uri), sleep=pauses.append)
    assert pauses == [0.5, 1.0] and "nothing was done" in str(err.value)


def test_a_sqlite_store_needs_its_folder(tmp_path):
    tracking.check_reachable(_cfg(f"sqlite:///{tmp_path / 'mlflow.db'}"))
    with pytest.raises(tracking.TrackingUnavailable, match="does not exist"):
        tracking.check_reachable(_cfg(f"sqlite:///{tmp_path / 'gone' / 'mlflow.db'}"))


def test_failures_mid_job_become_one_error_naming_the_uri():
    def lost():
        raise ConnectionError("Max retries exceeded with url: /api/2.0/mlflow/runs/create\nmore detail")

    with pytest.raises(tracking.TrackingUnavailable) as err:
        tracking.guarded(_cfg("http://tracking.example:5000"), "logging the scoring run", lost)
    assert str(err.value) == (
        "MLflow at http://tracking.example:5000 failed while logging the scoring run: "
        "Max retries exceeded with url: /api/2.0/mlflow/runs/create"
    )
    assert tracking.guarded(_cfg("http://x"), "reading", lambda: 7) == 7


def test_retries_are_bounded_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    tracking.bound_retries()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
