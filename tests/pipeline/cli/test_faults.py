"""Faults through the real CLI: tampered models, non-finite input, an unreachable tracking
server, a full disk and two jobs on one output. Each asserts the exit code, the message and
that the destination holds exactly what it held before."""

from __future__ import annotations

import shutil
import subprocess
import time

import polars as pl
import pytest

from pipeline import model_store
from pipeline.config import load_config
from tests.pipeline.cli.conftest import AS_OF, free_port, write_config
from tests.pipeline.cli.faults import assert_old_or_complete, snapshot, staging_left, start

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]


@pytest.fixture(scope="module")
def model_folder(trained, workspace, tmp_path_factory):
    """Version 1 downloaded as a local MLflow model folder (MLmodel + artifacts/bundle)."""
    cfg = load_config(workspace.config).mlflow
    resolved = model_store.resolve_model(cfg, "models:/relapse-risk/1", tmp_path_factory.mktemp("model"))
    return resolved.bundle_dir.parent.parent


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _change(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("tamper", "named", "text"),
    [
        (_change, "spec.json", "SHA-256 does not match manifest.json"),
        (_truncate, "phases/acute.ubj", "SHA-256 does not match manifest.json"),
        (lambda p: p.unlink(), "calibrators.json", "listed in manifest.json but missing"),
    ],
    ids=["changed-file", "truncated-ubj", "missing-file"],
)
def test_a_tampered_model_is_refused_naming_the_file(workspace, model_folder, tmp_path, tamper, named, text):
    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    tamper(folder / "artifacts" / "bundle" / named)
    out = tmp_path / "out" / "scores.parquet"
    result = workspace.run(
        "score", "--data", str(workspace.data), "--as-of", AS_OF, "--out", str(out), "--model", str(folder), expect=2
    )
    assert named in result.output and text in result.output
    assert snapshot(out.parent) == {} and not staging_left(out.parent)


def test_non_finite_values_are_refused_by_validate_and_score(trained, workspace, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(workspace.data, data)
    bdnf = pl.read_parquet(data / "bdnf.parquet")
    values = bdnf["bdnf_ng_ml"].to_list()
    values[4], values[9] = float("nan"), float("inf")
    bdnf.with_columns(pl.Series("bdnf_ng_ml", values)).write_parquet(data / "bdnf.parquet")
    validated = workspace.run("validate", "--data", str(data), expect=2)
    assert "bdnf.bdnf_ng_ml: 2 row(s) are not finite numbers (NaN or ±inf)" in validated.output
    assert "row 5: " in validated.output and "bdnf_ng_ml=nan" in validated.output
    out = tmp_path / "out" / "scores.parquet"
    scored = workspace.run("score", "--data", str(data), "--as-of", AS_OF, "--out", str(out), expect=2)
    assert "bdnf.bdnf_ng_ml: 2 row(s) are not finite numbers" in scored.output
    assert snapshot(out.parent) == {}


def test_an_unreachable_tracking_server_is_named_before_any_work(trained, workspace, tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    config = write_config(tmp_path / "down.yaml", uri)
    out = tmp_path / "out" / "scores.parquet"
    started = time.monotonic()
    for args in (
        ["train", "--data", str(workspace.data)],
        ["score", "--data", str(workspace.data), "--as-of", AS_OF, "--out", str(out), "--model", "x"],
    ):
        result = subprocess.run(
            [*start_args(args), "--config", str(config)], capture_output=True, text=True, cwd=tmp_path, timeout=120
        )
        assert result.returncode == 2, result.stderr
        assert f"MLflow tracking server {uri} is unreachable" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 60
    assert not out.parent.exists() or snapshot(out.parent) == {}


def start_args(args):
    from tests.pipeline.cli.conftest import bin_path

    return [bin_path("relapse"), *args]


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); the injected test covers it")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_a_full_disk_is_a_clear_error_and_the_old_outputs_stay(scored, workspace, small_disk, tmp_path):
    old_scores, old_shap, _ = scored
    out = small_disk / "scores.parquet"
    for src in (old_scores, old_scores.with_name(old_scores.name + ".manifest.json")):
        shutil.copy(src, small_disk / src.name)
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * max(0, free - 8192))
    old = snapshot(small_disk)
    result = subprocess.run(
        [
            *start_args(["score", "--data", str(workspace.data), "--as-of", AS_OF, "--out", str(out)]),
            "--config",
            str(workspace.config),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert f"cannot write {out}" in result.stderr and "No space left on device" in result.stderr
    assert "nothing was published" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(small_disk) == old and not staging_left(small_disk)


def test_two_jobs_on_one_output_never_interleave(trained, workspace, tmp_path):
    out = tmp_path / "out" / "scores.parquet"
    args = [
        "score",
        "--data",
        str(workspace.data),
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        "--config",
        str(workspace.config),
    ]
    first = start(args, tmp_path, tmp_path / "tmp1")
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(".scores.parquet.staging-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = workspace.run(*args[:-2], expect=2)
    assert f"{out} is being written by another job" in second.output
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert assert_old_or_complete(out.parent, {}, "scores.parquet", None) == "new"
    assert not staging_left(out.parent)
