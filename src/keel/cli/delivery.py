"""`keel dora`: how fast and how safely models reach production (DORA, Four Keys buckets)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.schemas.delivery import DoraOut


def _hours(hours: float | None) -> str:
    if hours is None:
        return "n/a"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


def _utc(moment: datetime | None) -> datetime | None:
    # Typer parses dates without a zone; the command's dates are UTC, as its help says.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def dora_view(m: DoraOut) -> Group:
    summary = Table("metric", "value", "bucket", title=f"DORA, {m.scope}")
    summary.add_row(
        "Deployment frequency",
        f"{m.deployment_count} ({m.deployments_per_week:.2f}/week)",
        m.frequency,
    )
    summary.add_row("Lead time (median)", _hours(m.lead_time_hours), m.lead_time or "")
    summary.add_row("Change failure rate", _rate(m.change_failure_rate), m.change_failure or "")
    summary.add_row("Recovery time (median)", _hours(m.recovery_hours), m.recovery or "")
    summary.add_row("Deployment rework rate", _rate(m.rework_rate), "")
    events = Table("deployed", "model", "version", "lead time", "failure", "recovered")
    failed = {(f.deployment.model, f.deployment.version, f.deployment.at): f for f in m.failures}
    for d in m.deployments:
        f = failed.get((d.model, d.version, d.at))
        events.add_row(
            output.when(d.at),
            d.model,
            str(d.version),
            _hours(d.lead_time_hours),
            "" if f is None else f.cause + (f" #{f.incident_id}" if f.incident_id else ""),
            "" if f is None else _hours(f.recovery_hours) if f.recovered_at else "not yet",
        )
    period = f"{output.when(m.start)} to {output.when(m.end)} UTC"
    return Group(Text(period, style="dim"), summary, events)


def dora(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="One model.")] = None,
    team: Annotated[str | None, typer.Option(help="One team (default: the portfolio).")] = None,
    start: Annotated[
        datetime | None, typer.Option("--from", help="Period start, UTC (default: 90 days ago).")
    ] = None,
    end: Annotated[datetime | None, typer.Option("--to", help="Period end, UTC.")] = None,
    failure_days: Annotated[
        int, typer.Option(help="Days after a deployment a failure counts against it.")
    ] = 7,
    as_json: JsonFlag = False,
) -> None:
    """DORA metrics of a model, a team or the portfolio, with the deployments behind them."""
    with connected(ctx) as keel:
        metrics = keel.dora(
            model=model,
            team=team,
            start=_utc(start),
            end=_utc(end),
            failure_days=failure_days,
        )
    output.show(as_json, metrics, lambda: dora_view(metrics))
