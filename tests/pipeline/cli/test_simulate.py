"""`relapse simulate`: the files it writes, their reproducibility, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import ConfigError
from pipeline.simulator import SIMULATION_METADATA, TRUTH_DIR, load_simulation_config
from tests.pipeline.simulator.conftest import TABLES, run


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_simulate_then_validate_succeeds(tmp_path, fmt):
    out = tmp_path / "data"
    result = run("simulate", "--patients", "300", "--seed", "3", "--out", str(out), "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    assert {p.name for p in out.glob(f"*.{fmt}")} == {f"{t}.{fmt}" for t in TABLES}
    assert {p.name for p in (out / TRUTH_DIR).iterdir()} == {"patients.parquet", "landmark_risk.parquet"}
    checked = run("validate", "--data", str(out))
    assert checked.exit_code == 0, checked.output


def test_metadata_marks_the_data_synthetic(tmp_path):
    out = tmp_path / "data"
    assert run("simulate", "--patients", "50", "--seed", "9", "--out", str(out)).exit_code == 0
    meta = json.loads((out / SIMULATION_METADATA).read_text())
    assert meta["synthetic"] is True
    assert meta["generator"] == "relapse-risk simulator"
    assert (meta["seed"], meta["n_patients"]) == (9, 50)
    assert "not real patients" in meta["note"]
    assert meta["parameters"] == load_simulation_config().model_dump(mode="json")


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path, fmt):
    folders = {}
    for name, seed in (("a", "21"), ("b", "21"), ("c", "22")):
        folders[name] = tmp_path / name
        assert (
            run("simulate", "--patients", "300", "--seed", seed, "--out", str(folders[name]), "--format", fmt).exit_code
            == 0
        )
    first, again, other = (file_bytes(folders[k]) for k in "abc")
    assert len(first) == len(TABLES) + 3  # the tables, truth/ x2, simulation.json
    assert first == again
    for table in TABLES:
        assert first[f"{table}.{fmt}"] != other[f"{table}.{fmt}"], table


def test_refuses_a_folder_holding_the_other_format(tmp_path):
    out = tmp_path / "data"
    assert run("simulate", "--patients", "20", "--seed", "1", "--out", str(out)).exit_code == 0
    result = run("simulate", "--patients", "20", "--seed", "1", "--out", str(out), "--format", "csv")
    assert result.exit_code == 2 and "patients.parquet" in result.output


def test_rejects_a_negative_seed_and_an_unknown_config_key(tmp_path):
    assert run("simulate", "--patients", "20", "--seed", "-1", "--out", str(tmp_path / "x")).exit_code != 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("stress:\n  no_such_key: 1\n")
    with pytest.raises(ConfigError, match="no_such_key"):
        load_simulation_config(bad)
    result = run("simulate", "--patients", "20", "--seed", "1", "--out", str(tmp_path / "y"), "--config", str(bad))
    assert result.exit_code == 2 and "no_such_key" in result.output
