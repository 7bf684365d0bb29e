"""`keel import mlflow`: bring an MLflow Model Registry into Keel (see keel.sdk.mlflow_import)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import httpx
import typer
from rich.console import Console

from keel.cli.registry import Connection
from keel.sdk.client import DEFAULT_URL
from keel.sdk.credentials import discover_token
from keel.sdk.mlflow_import import ImportReport, MlflowApiError, MlflowImport, MlflowRest

import_app = typer.Typer(help="Bring models in from other registries.", no_args_is_help=True)


def _summary(report: ImportReport, console: Console) -> None:
    verb = "would be" if report.dry_run else "were"
    console.print(
        f"{len(report.models_created)} model(s) and {len(report.versions_imported)} version(s) "
        f"{verb} imported; {len(report.changes)} change(s) {verb} applied; "
        f"{len(report.failures)} failure(s)."
    )
    for what in report.models_created:
        console.print(f"  + model {what}")
    for what in report.versions_imported:
        console.print(f"  + {what}")
    for what in report.changes:
        console.print(f"  ~ {what}")
    for what, why in report.failures:
        console.print(f"  ! {what}: {why}", soft_wrap=True)
    if report.to_promote:
        console.print(
            "Held production in MLflow, registered in Keel (production only through the gates: "
            "keel gates run MODEL VERSION, then keel promote MODEL VERSION): "
            + ", ".join(report.to_promote)
        )
    if report.nothing_to_do and not report.failures:
        console.print("Nothing to import: Keel already has everything.")


@import_app.command("mlflow")
def import_mlflow(
    ctx: typer.Context,
    tracking_uri: Annotated[
        str, typer.Option("--tracking-uri", help="The MLflow tracking server to import from.")
    ],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Import only this registered model (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be imported; change nothing.")
    ] = False,
    team: Annotated[
        str | None,
        typer.Option(help="The Keel team new models belong to (default: your only team)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import registered models, versions (numbers kept), tags, aliases, stages and lineage.

    The Keel server fetches each version's files from the MLflow server it trusts
    (KEEL_MLFLOW_TRACKING_URI). Versions that held production in MLflow are registered, not
    promoted: they reach production in Keel through its gates. Safe to run again.
    """
    connection = ctx.find_object(Connection) or Connection()
    url = (connection.url or os.environ.get("KEEL_URL") or DEFAULT_URL).rstrip("/")
    token = discover_token(url, connection.token)
    keel_headers = {"Authorization": f"Bearer {token}"} if token else {}
    mlflow_token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    mlflow_headers = {"Authorization": f"Bearer {mlflow_token}"} if mlflow_token else {}
    err = Console(stderr=True)
    with (
        httpx.Client(base_url=url, headers=keel_headers, timeout=600) as keel_http,
        httpx.Client(
            base_url=tracking_uri.rstrip("/"), headers=mlflow_headers, timeout=120
        ) as mlflow_http,
    ):
        run = MlflowImport(
            MlflowRest(mlflow_http),
            MlflowRest(keel_http),
            dry_run=dry_run,
            team=team,
            progress=lambda line: err.print(line, soft_wrap=True),
        )
        try:
            report = run.run(model or None)
        except MlflowApiError as exc:
            err.print(f"error: {exc.code}: {exc.message}", soft_wrap=True)
            raise typer.Exit(1) from None
    out = Console()
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "dry_run": report.dry_run,
                    "models_created": report.models_created,
                    "versions_imported": report.versions_imported,
                    "changes": report.changes,
                    "failures": [{"item": w, "reason": r} for w, r in report.failures],
                    "to_promote": report.to_promote,
                }
            )
        )
    else:
        _summary(report, out)
    if report.failures:
        raise typer.Exit(1)
