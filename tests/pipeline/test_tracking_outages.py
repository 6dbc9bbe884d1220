"""MLflow outages seen from the tracking module: a dead server is named before any work,
failures mid-job become one clear error, retries are bounded."""

import os
import shutil
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from models.bundle import BundleError, ModelBundle, PhaseModel
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


class _FakeMlflow:
    """Just the MLflow calls `register_complete` makes, recording what the registry was asked."""

    def __init__(self, model_folder, alias_fails=False):
        self.model_folder, self.alias_fails, self.calls = model_folder, alias_fails, []
        self.artifacts = self

    def download_artifacts(self, artifact_uri, dst_path):
        self.calls.append(("download", artifact_uri))
        return str(shutil.copytree(self.model_folder, Path(dst_path) / "model"))

    def register_model(self, uri, name):
        self.calls.append(("register", uri, name))
        return SimpleNamespace(version=4)

    def MlflowClient(self):  # noqa: N802  (mirrors mlflow.MlflowClient)
        return self

    def set_registered_model_alias(self, name, alias, version):
        self.calls.append(("alias", alias, version))
        if self.alias_fails:
            raise ConnectionError("server gone")

    def delete_model_version(self, name, version):
        self.calls.append(("delete", version))


@pytest.fixture
def logged_model(tmp_path):
    folder = tmp_path / "logged"
    bundle = ModelBundle(
        {"acute": PhaseModel("constant", fallback_rate=0.05)}, ["x"], [{"name": "acute", "start_day": 0, "end_day": 13}]
    )
    bundle.save(folder / "artifacts" / "bundle")
    return folder


def test_a_model_is_registered_only_once_its_bundle_verifies(logged_model):
    fake = _FakeMlflow(logged_model)
    assert tracking.register_complete(fake, _cfg("http://x"), "models:/m-1", "challenger") == "4"
    assert [c[0] for c in fake.calls] == ["download", "register", "alias"]
    (logged_model / "artifacts" / "bundle" / "spec.json").write_text("{}")
    fake = _FakeMlflow(logged_model)
    with pytest.raises(BundleError, match="spec.json"):
        tracking.register_complete(fake, _cfg("http://x"), "models:/m-1", "challenger")
    assert [c[0] for c in fake.calls] == ["download"]  # never registered


def test_a_version_whose_alias_fails_is_deleted(logged_model):
    fake = _FakeMlflow(logged_model, alias_fails=True)
    with pytest.raises(ConnectionError):
        tracking.register_complete(fake, _cfg("http://x"), "models:/m-1", "challenger")
    assert fake.calls[-1] == ("delete", "4")
