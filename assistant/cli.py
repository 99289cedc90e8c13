"""The command line: `assistant ingest | ask | chat | eval | serve | config`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from assistant.config import Settings
from assistant.store import StoreError


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """A grounded assistant on U.S.-South Korea coordination on North Korea, with checked citations."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def ingest(paths: tuple[Path, ...], as_json: bool) -> None:
    """Index .txt, .md and .html files and folders (with optional NAME.meta.yaml sidecars)."""
    from assistant.app import Assistant

    try:
        with Assistant.from_settings(Settings()) as assistant:
            report = assistant.ingest(paths)
    except StoreError as exc:
        _fail(str(exc))
        return
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())


@main.command()
def config() -> None:
    """Show every setting, its value and what it means."""
    settings = Settings()
    for name, info in Settings.model_fields.items():
        click.echo(f"{name} = {getattr(settings, name)!r}\n    {info.description}")
