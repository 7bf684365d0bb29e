"""`keel report --month YYYY-MM --format html|md|json`: the monthly executive report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from keel.cli.registry import connected


def report(
    ctx: typer.Context,
    month: Annotated[str, typer.Option(help="The month, YYYY-MM.")],
    format: Annotated[
        str, typer.Option("--format", help="html (one offline page), md, or json.")
    ] = "md",
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
) -> None:
    """The executive report of a month: production by risk tier, incidents and MTTR, cost and
    budgets, value and ROI, DORA, maturity, compliance gaps and the top actions."""
    chosen = "json" if as_json else format
    if chosen not in ("html", "md", "json"):
        raise typer.BadParameter("choose html, md or json.", param_hint="--format")
    with connected(ctx) as keel:
        if chosen == "json":
            text = json.dumps(keel.report(month).model_dump(mode="json"), indent=2) + "\n"
        else:
            text = keel.report_document(month, chosen)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"Wrote the {month} report to {out}.", err=True)
