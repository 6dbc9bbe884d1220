"""The CLI's own behaviour, without training: version, help pages, dates, --config everywhere,
and how training progress is shown on a terminal and when piped."""

from __future__ import annotations

import io
from importlib.metadata import version

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.cli.app import parse_date
from pipeline.cli.train import TrainingProgress

COMMANDS = ("simulate", "validate", "features", "train", "promote", "score", "audit")


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"relapse {version('relapse-risk')}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_pages_are_plain_and_every_command_takes_config(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "╭" not in result.output
    assert "--config" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-02-30", "no such day (February 2025 has 28 days)"),
        ("2024-04-31", "no such day (April 2024 has 30 days)"),
        ("2025-13-01", "no such month 13"),
        ("01/02/2025", "not a date in YYYY-MM-DD form"),
        ("2025-2-3", "not a date in YYYY-MM-DD form"),
    ],
)
def test_dates_say_what_is_wrong(text, message):
    with pytest.raises(typer.BadParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_date(text)


def test_a_bad_date_on_the_command_line_exits_2_without_a_traceback(tmp_path):
    result = CliRunner().invoke(
        app, ["score", "--data", str(tmp_path), "--as-of", "2025-02-30", "--out", str(tmp_path / "s.parquet")]
    )
    assert result.exit_code == 2 and "no such day" in result.output and "Traceback" not in result.output


def test_validate_checks_its_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("landmarks:\n  horizon_days: -3\n")
    result = CliRunner().invoke(app, ["validate", "--data", str(tmp_path), "--config", str(bad)])
    assert result.exit_code == 2 and "horizon_days" in result.output


def _show(console: Console) -> str:
    with TrainingProgress(console, n_phases=2, fits_per_phase=3) as shown:
        shown.step("validating input tables")
        shown.step("fitting phase 'acute'")
        shown.fold("acute", 1, 3)
        shown.bar.refresh()
        shown.fold("acute", 2, 3)
        shown.fold("acute", 3, 3)
        shown.step("fitting phase 'early'")
        shown.fold("early", 1, 1)
        shown.bar.refresh()
        completed = shown.bar.tasks[0].completed
    assert completed == 6  # a fallback phase counts as all its fits
    return console.file.getvalue()


def test_training_progress_on_a_terminal_shows_the_phase_and_fold():
    text = _show(Console(file=io.StringIO(), force_terminal=True, width=120))
    assert "phase 'acute': fold 2 of 2" in text and "1/6" in text  # the fit in progress
    assert "phase 'early': done" in text and "6/6" in text
    assert "0:00:0" in text  # elapsed time


def test_piped_training_progress_prints_one_line_per_step():
    lines = _show(Console(file=io.StringIO(), force_terminal=False, width=120)).splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "validating input tables",
        "fitting phase 'acute'",
        "phase 'acute': fold 1 of 2 done",
        "phase 'acute': fold 2 of 2 done",
        "phase 'acute': final fit done",
        "fitting phase 'early'",
        "phase 'early': final fit done",
    ]
