"""`keel grafana export DIR`: Keel's Grafana dashboards and Prometheus alerting rules, as files.

They ship inside the package (``keel/cli/observability``), so the files match the metrics this
Keel exports. The dashboards take their Prometheus data source as an input (``DS_PROMETHEUS``),
which Grafana asks for on import.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keel.cli.output import error_line
from keel.errors import InvalidInput

grafana_app = typer.Typer(
    help="Grafana dashboards and Prometheus alerting rules for Keel's /metrics.",
    no_args_is_help=True,
)

# Shipped name -> exported name.
EXPORTS = {
    "grafana-overview.json": "keel-overview.json",
    "grafana-model.json": "keel-model.json",
    "prometheus-slo-alerts.yml": "keel-slo-alerts.rules.yml",
}


def shipped(name: str) -> str:
    """The text of a file shipped in ``keel/cli/observability``."""
    return (resources.files("keel.cli") / "observability" / name).read_text(encoding="utf-8")


@grafana_app.command("export")
def export(
    directory: Annotated[
        Path, typer.Argument(help="Where to write the files (created if missing).")
    ],
) -> None:
    """Write Keel's Grafana dashboards and Prometheus alerting rules into DIRECTORY.

    Import keel-overview.json and keel-model.json in Grafana (it asks for your Prometheus
    data source); add keel-slo-alerts.rules.yml to Prometheus's rule_files. Files of the same
    names are replaced.
    """
    console = Console()
    if directory.exists() and not directory.is_dir():
        problem = InvalidInput(
            f"{directory} is a file, not a directory. Give a directory to export into.",
            {"field": "DIRECTORY"},
        )
        Console(stderr=True).print(error_line(problem), soft_wrap=True)
        raise typer.Exit(1)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for source, target in EXPORTS.items():
            path = directory / target
            path.write_text(shipped(source), encoding="utf-8")
            console.print(str(path), soft_wrap=True, highlight=False)
    except OSError as exc:
        problem = InvalidInput(
            f"Cannot write into {directory}: {exc.strerror or exc}. Choose a directory you "
            "can write to.",
            {"field": "DIRECTORY"},
        )
        Console(stderr=True).print(error_line(problem), soft_wrap=True)
        raise typer.Exit(1) from None
