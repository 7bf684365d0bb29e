"""`keel eval-data attach|show` and `keel scan show`: evaluation data and the artifact scan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.schemas.evaluation import EvaluationDatasetOut, ScanReportOut

eval_data_app = typer.Typer(
    help="The labelled data a version is evaluated on (Parquet or CSV).", no_args_is_help=True
)
scan_app = typer.Typer(help="The security scan of a version's artifact.", no_args_is_help=True)


def _dataset(found: EvaluationDatasetOut) -> Table:
    table = Table(show_header=False, title="Evaluation data", title_justify="left")
    for key, value in (
        ("Version", f"{found.model} v{found.version}"),
        ("Format", found.format),
        ("Rows", str(found.rows)),
        ("Columns", ", ".join(found.columns)),
        ("SHA-256", found.sha256),
        ("Uploaded", f"{output.when(found.uploaded_at)} by {found.uploaded_by}"),
    ):
        table.add_row(key, Text(value))
    return table


def _scan(model: str, version: int, report: ScanReportOut) -> Group:
    verdict = Text("safe", "green") if report.safe else Text("UNSAFE", "bold red")
    head = Text.assemble(
        f"{model} v{version}: ",
        verdict,
        f"  ({report.scanner} {report.scanner_version}, "
        f"{output.when(report.scanned_at)}, sha256 {report.sha256[:12]})",
    )
    findings = Table("Severity", "Finding", title="Findings", title_justify="left")
    for finding in report.findings:
        findings.add_row(finding.severity, Text(finding.message))
    return Group(head, findings)


@eval_data_app.command("attach")
def attach(
    ctx: typer.Context,
    model: str,
    version: int,
    file: Annotated[Path, typer.Argument(help="A .parquet or .csv file.")],
    as_json: JsonFlag = False,
) -> None:
    """Attach evaluation data: the signature's features, target and protected attributes."""
    with connected(ctx) as keel:
        found = keel.attach_evaluation_data(model, version, file)
    output.show(as_json, found, lambda: _dataset(found))


@eval_data_app.command("show")
def show(ctx: typer.Context, model: str, version: int, as_json: JsonFlag = False) -> None:
    """Show the evaluation data attached to a version."""
    with connected(ctx) as keel:
        found = keel.evaluation_data(model, version)
    output.show(as_json, found, lambda: _dataset(found))


@scan_app.command("show")
def scan_show(ctx: typer.Context, model: str, version: int, as_json: JsonFlag = False) -> None:
    """Show the security scan made when the version's artifact was uploaded."""
    with connected(ctx) as keel:
        report = keel.scan_report(model, version)
    output.show(as_json, report, lambda: _scan(model, version, report))
