"""`relapse promote`: move the `champion` alias to a registered version."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli.app import app, fail
from pipeline.config import ConfigError, load_config


@app.command()
def promote(
    version: str = typer.Option(..., "--version", help="Registered model version to promote."),
    force: bool = typer.Option(False, "--force", help="Promote even if its pooled AUROC is below the champion's."),
    config: Path | None = typer.Option(None, "--config", help="YAML file overriding configs/default.yaml."),
) -> None:
    """Point alias `champion` at VERSION; refuses a version worse than the current champion."""
    from pipeline import tracking

    try:
        cfg = load_config(config)
        moved = tracking.promote(cfg.mlflow, version, force=force)
    except (ConfigError, tracking.PromotionRefused) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001  (registry errors: unknown version, unreachable server)
        raise fail(f"cannot promote version {version}: {exc}") from None
    before = f" (was version {moved['previous_champion']})" if moved["previous_champion"] else ""
    auroc = f"{moved['auroc']:.4f}" if moved["auroc"] is not None else "n/a"
    typer.echo(f"{moved['name']} version {moved['version']} is now champion{before}; pooled AUROC {auroc}")
