"""The validation jobs' MLflow calls: an evaluation run is logged whole or not at all."""

from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from pipeline import tracking_eval
from pipeline.config import MlflowConfig


class FakeMlflow:
    """Records the calls `log_evaluation` makes; `log_artifacts` fails when asked to."""

    def __init__(self, fail: bool):
        self.fail, self.deleted, self.experiments, self.logged = fail, [], [], []

    @contextmanager
    def start_run(self, run_name: str):
        yield SimpleNamespace(info=SimpleNamespace(run_id="r1"))

    def log_params(self, params):
        self.logged.append("params")

    def set_tags(self, tags):
        self.logged.append("tags")

    def log_metrics(self, metrics):
        self.logged.append("metrics")

    def log_artifacts(self, folder):
        if self.fail:
            raise OSError("store went away")
        self.logged.append("artifacts")

    def MlflowClient(self):  # noqa: N802  (MLflow's name)
        return SimpleNamespace(delete_run=self.deleted.append)


@pytest.fixture
def fake(monkeypatch):
    def install(fail: bool) -> FakeMlflow:
        mlflow = FakeMlflow(fail)
        monkeypatch.setattr(tracking_eval, "connect", lambda cfg: mlflow)
        monkeypatch.setattr(tracking_eval, "use_experiment", lambda m, cfg, name: mlflow.experiments.append(name))
        return mlflow
    return install


def _record(tmp_path):
    return tracking_eval.EvaluationRecord("evaluate-external-v1", {"p": 1}, {"t": "x"}, {"auroc_pooled": 0.8}, tmp_path)


CFG = MlflowConfig(experiment="relapse-risk", registered_model="relapse-risk", tracking_uri="sqlite:///x.db")


def test_a_run_logged_whole_is_kept_in_its_own_experiment(fake, tmp_path):
    mlflow = fake(fail=False)
    assert tracking_eval.log_evaluation(CFG, _record(tmp_path), kind="ablation") == "r1"
    assert mlflow.experiments == ["relapse-risk-ablation"] and mlflow.deleted == []
    assert mlflow.logged == ["params", "tags", "metrics", "artifacts"]


def test_a_run_that_fails_while_logging_is_deleted(fake, tmp_path):
    mlflow = fake(fail=True)
    with pytest.raises(OSError, match="store went away"):
        tracking_eval.log_evaluation(CFG, _record(tmp_path))
    assert mlflow.experiments == ["relapse-risk-evaluation"] and mlflow.deleted == ["r1"]
