"""`keel docs export`: a model's compliance documents (model card, Annex IV documentation)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keel.cli.jobs import progress_printer
from keel.cli.registry import connected

docs_app = typer.Typer(
    help="Compliance documents: model card and EU AI Act Annex IV technical documentation.",
    no_args_is_help=True,
)


class DocFormat(StrEnum):
    HTML = "html"
    MD = "md"
    JSON = "json"


@docs_app.command("export")
def export(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        int | None,
        typer.Option(min=1, help="Version to document (default: production, else the newest)."),
    ] = None,
    fmt: Annotated[
        DocFormat,
        typer.Option(
            "--format",
            help="html (self-contained; print it to PDF from a browser), md, or json.",
        ),
    ] = DocFormat.HTML,
    out: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
) -> None:
    """Export MODEL's technical documentation (built in a job; this waits for it, with its
    progress on stderr); fields its risk tier requires but Keel has no record of are listed
    first, under "Gaps"."""
    with connected(ctx) as keel:
        text = keel.export_document(
            model, version=version, format=str(fmt), on_progress=progress_printer()
        )
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {str(out)!r}: {exc.strerror}", param_hint="--output"
        ) from None
    Console(stderr=True, highlight=False).print(f"Wrote {out}", markup=False)
