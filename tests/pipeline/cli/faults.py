"""Helpers of the fault-injection tests: real `relapse` subprocesses (so signals are real) and
checks that a destination holds exactly the old outputs or a complete new set."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.pipeline.cli.conftest import bin_path

SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def start(args: list[str], cwd: Path, tmpdir: Path) -> subprocess.Popen:
    """`relapse ARGS` as a child process with its own TMPDIR (so leftovers can be counted)."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"TMPDIR": str(tmpdir)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [bin_path("relapse"), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _signal_mask(pid: int, field: str) -> int | None:
    """A signal bit mask of /proc/PID/status (`SigCgt`: caught, `SigIgn`: ignored); None once gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    return int(next(line for line in status.splitlines() if line.startswith(f"{field}:")).split()[1], 16)


def _wait_for_bit(process: subprocess.Popen, field: str, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds and process.poll() is None:
        mask = _signal_mask(process.pid, field)
        if mask is None:
            break
        if mask & SIGTERM_BIT:
            return time.monotonic() - started
        time.sleep(0.02)
    return time.monotonic() - started


def wait_for_handlers(process: subprocess.Popen, seconds: float = 120) -> float:
    """Block until the CLI has installed its SIGTERM handler (read from /proc); returns the wait."""
    return _wait_for_bit(process, "SigCgt", seconds)


def wait_for_shutdown(process: subprocess.Popen, seconds: float = 120) -> bool:
    """Block until the CLI ignores SIGTERM: its job has ended and Python is shutting down."""
    _wait_for_bit(process, "SigIgn", seconds)
    mask = _signal_mask(process.pid, "SigIgn")
    return mask is not None and bool(mask & SIGTERM_BIT)


def wait_for_staging(process: subprocess.Popen, folder: Path, seconds: float = 300) -> bool:
    """Block until the job has created its staging folder in `folder`: it has then passed its
    tracking-server check, and its MLflow logging is still to come. False if it never did."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if folder.is_dir() and any(".staging-" in p.name for p in folder.iterdir()):
            return True
        time.sleep(0.02)
    return False


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its SHA-256 (a finished job leaves no lock file)."""
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def staging_left(*folders: Path) -> list[str]:
    return [str(p) for f in folders for p in f.rglob("*") if ".staging-" in p.name or p.name.startswith("relapse-")]


def assert_old_or_complete(folder: Path, old: dict[str, str], out: str, shap: str | None) -> str:
    """The destination holds exactly `old`, or a complete new set its manifest vouches for."""
    now = snapshot(folder)
    if now == old:
        return "old"
    manifest_name = f"{out}.manifest.json"
    assert manifest_name in now, f"new files without a manifest: {sorted(now)}"
    manifest = json.loads((folder / manifest_name).read_text())
    expected = {out, manifest_name, *([shap] if shap else [])}
    assert set(now) == expected, sorted(now)
    assert manifest["output"]["sha256"] == now[out]
    if shap:
        assert manifest["shap_output"]["sha256"] == now[shap]
    assert manifest["scoring_run_id"]
    return "new"
