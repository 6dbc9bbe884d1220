"""Shared end-to-end fixtures: one small simulated cohort, a fast config with its own MLflow
store, and one trained model — built once per test session (these tests share one xdist worker)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

AS_OF = "2024-09-01"
FAST_MODEL = """
model:
  n_folds: 3
  bootstrap_samples: 20
  min_events: 10
  xgboost:
    n_estimators: 80
    learning_rate: 0.15
    early_stopping_rounds: 10
"""


@dataclass
class Workspace:
    root: Path
    data: Path
    config: Path
    tracking_uri: str

    def run(self, *args: str, expect: int = 0):
        result = CliRunner().invoke(
            app, [*args, "--config", str(self.config)] if args[0] not in ("simulate", "validate") else list(args)
        )
        assert result.exit_code == expect, result.output + repr(result.exception)
        return result


def write_config(path: Path, tracking_uri: str, extra: str = "") -> Path:
    path.write_text(FAST_MODEL + f"mlflow:\n  tracking_uri: {tracking_uri}\n" + extra)
    return path


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ws = Workspace(root, root / "data", write_config(root / "fast.yaml", uri), uri)
    ws.run("simulate", "--patients", "800", "--seed", "11", "--out", str(ws.data))
    return ws


@pytest.fixture(scope="session")
def trained(workspace):
    """The workspace after one `relapse train` (version 1) and `relapse promote` to champion."""
    result = workspace.run("train", "--data", str(workspace.data))
    workspace.run("promote", "--version", "1")
    return result


@pytest.fixture(scope="session")
def scored(trained, workspace):
    out = workspace.root / "scores.parquet"
    shap = workspace.root / "shap.parquet"
    result = workspace.run(
        "score",
        "--data",
        str(workspace.data),
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        "--shap-out",
        str(shap),
        "--reasons",
        "3",
    )
    return out, shap, result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def bin_path(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def mlflow_server(folder: Path, store: str, *artifacts: str) -> tuple[subprocess.Popen, str]:
    """Start a real MLflow tracking server (one worker) on a free port with the `store` backend and
    the given artifact options; returns the process and its URI once /health answers."""
    port = free_port()
    process = subprocess.Popen(
        [bin_path("mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", store, *artifacts],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=folder,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{uri}/health", process)
    except BaseException:
        process.kill()
        process.wait(timeout=30)
        raise
    return process, uri
