"""`keel estimation show|window`: performance estimated before labels arrive (CBPE, DLE)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.schemas.estimation import EstimatorOut, WindowEstimateOut

estimation_app = typer.Typer(
    help="Performance estimated without labels (CBPE for classifiers, DLE for regressors).",
    no_args_is_help=True,
)


def estimator_view(found: EstimatorOut) -> Text:
    summary = ", ".join(f"{k} {v}" for k, v in (found.summary or {}).items())
    return Text.assemble(
        (f"{found.model} v{found.version}: ", "bold"),
        f"{found.method} estimator, {found.state}",
        f" ({summary})" if summary else "",
        f"\nReference: {found.reference_rows:,} rows, set by {found.set_by}, "
        f"{output.when(found.set_at)} UTC",
        f"; fit job {found.job_id}" if found.job_id else "",
        f"\nError: {found.error}" if found.error else "",
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def window_view(window: WindowEstimateOut) -> Group:
    table = Table("metric", "estimate", "band (3 sd)", "realized", "estimation error")
    for m in window.metrics:
        table.add_row(
            m.metric,
            _number(m.estimate),
            f"{m.lower:.4f} .. {m.upper:.4f}",
            _number(m.realized),
            _number(m.estimation_error),
        )
    raised = [
        name
        for name, on in (
            ("calibration not improved", window.flags.calibration_not_improved),
            (
                f"{window.flags.outside_support_share:.1%} of rows outside the reference",
                window.flags.outside_support,
            ),
            ("window too small for a useful band", window.flags.window_too_small),
        )
        if on
    ]
    return Group(
        Text(
            f"{window.model} v{window.version}: {window.rows:,} predictions, "
            f"{window.labelled_rows:,} labelled, {output.when(window.start)} .. "
            f"{output.when(window.end)} UTC",
            style="bold",
        ),
        table,
        Text(f"Flags: {', '.join(raised) or 'none'}"),
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@estimation_app.command("show")
def show(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    as_json: JsonFlag = False,
) -> None:
    """A version's estimator: method, fit state, and what the fit found."""
    with connected(ctx) as keel:
        found = keel.estimator(model, version)
    output.show(as_json, found, lambda: estimator_view(found))


@estimation_app.command("window")
def window(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    start: Annotated[datetime, typer.Option(help="Window start, ISO 8601 (UTC if no zone).")],
    end: Annotated[datetime, typer.Option(help="Window end (exclusive).")],
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="A metric to estimate (repeatable).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Estimate a window without labels, beside the realized values once labels arrived."""
    start, end = _utc(start), _utc(end)
    with connected(ctx) as keel:
        found = keel.estimated_performance(model, version, start, end, metrics=metric or ())
    output.show(as_json, found, lambda: window_view(found))
