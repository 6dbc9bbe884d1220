"""`relapse features`: training and as-of forms, clear errors and nothing written on failure."""

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.io import write_tables
from tests.features.conftest import cohort

runner = CliRunner()


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "data"
    write_tables(cohort(), folder, fmt="csv")
    return folder


def test_training_form_writes_the_landmark_table(data, tmp_path):
    out = tmp_path / "landmarks.parquet"
    result = runner.invoke(app, ["features", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(out)
    assert table.columns[:7] == [
        "patient_id",
        "landmark_date",
        "day",
        "phase",
        "label",
        "censored",
        "ipcw_weight",
    ]
    assert "hrv_pnn50_latest" in table.columns
    assert "rows" in result.output


def test_as_of_form_writes_the_scoring_table_as_csv(data, tmp_path):
    out = tmp_path / "scoring.csv"
    (data / "outcomes.csv").unlink()
    result = runner.invoke(app, ["features", "--data", str(data), "--out", str(out), "--as-of", "2024-02-15"])
    assert result.exit_code == 0, result.output
    table = pl.read_csv(out)
    assert table.columns[:5] == ["patient_id", "as_of", "day", "phase", "exclusion"]
    assert table.height == 4


def test_training_form_needs_outcomes(data, tmp_path):
    (data / "outcomes.csv").unlink()
    out = tmp_path / "landmarks.parquet"
    result = runner.invoke(app, ["features", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 2
    assert "outcomes" in result.output
    assert not out.exists()


def test_extra_column_not_in_patients_is_a_clear_error(data, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("features:\n  demographic:\n    extra: [shoe_size]\n")
    out = tmp_path / "landmarks.parquet"
    result = runner.invoke(app, ["features", "--data", str(data), "--out", str(out), "--config", str(config)])
    assert result.exit_code == 2
    assert "shoe_size" in result.output
    assert not out.exists()


def test_bad_config_and_bad_output_name(data, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("features:\n  hrv:\n    window_dayz: 3\n")
    result = runner.invoke(
        app,
        [
            "features",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "x.parquet"),
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 2 and "window_dayz" in result.output
    result = runner.invoke(app, ["features", "--data", str(data), "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 2 and ".parquet or .csv" in result.output


def test_contract_violation(data, tmp_path):
    bdnf = pl.read_csv(data / "bdnf.csv").with_columns(pl.lit(-1.0).alias("bdnf_ng_ml"))
    bdnf.write_csv(data / "bdnf.csv")
    out = tmp_path / "landmarks.parquet"
    result = runner.invoke(app, ["features", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 2 and "bdnf.bdnf_ng_ml" in result.output
    assert not out.exists()


@pytest.mark.parametrize("as_of", [None, "2024-02-15"])
def test_a_cohort_larger_than_a_shard_gives_the_same_file(data, tmp_path, as_of):
    config = tmp_path / "shards.yaml"
    config.write_text("shards:\n  patients_per_shard: 1\n")
    extra = [] if as_of is None else ["--as-of", as_of]
    outs = []
    for name, options in (("whole", []), ("sharded", ["--config", str(config)])):
        outs.append(tmp_path / f"{name}.csv")
        result = runner.invoke(app, ["features", "--data", str(data), "--out", str(outs[-1]), *extra, *options])
        assert result.exit_code == 0, result.output
    assert outs[0].read_text() == outs[1].read_text()
    assert pl.read_csv(outs[1]).height >= 4


def test_a_sharded_contract_violation_writes_nothing(data, tmp_path):
    config = tmp_path / "shards.yaml"
    config.write_text("shards:\n  patients_per_shard: 1\n")
    bdnf = pl.read_csv(data / "bdnf.csv").with_columns(pl.lit(-1.0).alias("bdnf_ng_ml"))
    bdnf.write_csv(data / "bdnf.csv")
    out = tmp_path / "landmarks.parquet"
    result = runner.invoke(app, ["features", "--data", str(data), "--out", str(out), "--config", str(config)])
    assert result.exit_code == 2 and "bdnf.bdnf_ng_ml" in result.output
    assert not out.exists()
