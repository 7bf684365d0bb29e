"""`keel costs ...`, `keel budgets ...` and `keel gc`: what the models cost, and what they may."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.schemas.costs import BudgetStatusOut, CostImportOut, GcOut, MonthCostOut

costs_app = typer.Typer(
    help="Costs: import FOCUS bills, see them allocated to models and teams, find waste.",
    no_args_is_help=True,
)
budgets_app = typer.Typer(
    help="Monthly budgets per model, team or portfolio, with forecasts and alerts.",
    no_args_is_help=True,
)
MonthOption = Annotated[str, typer.Option("--month", help="The month, as YYYY-MM.")]


def _print_mapping(as_json: bool, data: dict[str, str], title: str) -> None:
    console = Console()
    if output.wants_json(as_json, console):
        console.file.write(json.dumps(data, indent=2) + "\n")
        return
    table = Table("name", "value", title=title)
    for key, value in sorted(data.items()):
        table.add_row(key, value)
    console.print(table)


@contextlib.contextmanager
def _upload_bar(path: Path) -> Iterator[Callable[[int], None] | None]:
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"Uploading {path.name}", total=path.stat().st_size)
        yield lambda sent: bar.advance(task, sent)


def _import_view(found: CostImportOut) -> Text:
    if found.replayed:
        return Text(f"{found.filename}: already imported (import {found.id}); nothing added.")
    return Text(
        f"Imported {found.filename}: {found.rows} rows, EffectiveCost {found.effective_cost} "
        f"({found.first_day} to {found.last_day}), import {found.id}."
    )


@costs_app.command("import")
def import_bill(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="A FOCUS 1.0-1.2 export, .csv or .parquet.", exists=True)
    ],
    as_json: JsonFlag = False,
) -> None:
    """Import a FOCUS billing export (admins). The same file twice imports once; a malformed
    file is refused naming its row and column, and nothing is written."""
    with connected(ctx) as keel, _upload_bar(path) as advance:
        found = keel.import_costs(path, progress=advance)
    output.show(as_json, found, lambda: _import_view(found))


@costs_app.command("imports")
def list_imports(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Bills imported so far."""
    with connected(ctx) as keel:
        found = keel.cost_imports()
    table = Table("id", "file", "rows", "EffectiveCost", "from", "to", "by", title="Imports")
    for i in found:
        table.add_row(
            str(i.id), i.filename, str(i.rows), str(i.effective_cost),
            str(i.first_day), str(i.last_day), i.imported_by,
        )  # fmt: skip
    output.show(as_json, found, lambda: table)


@costs_app.command("sample")
def sample() -> None:
    """Print a tiny FOCUS 1.0 bill (October 2026; models churn, fraud and ranker) to try."""
    from keel.services.costs.examples import focus_sample

    sys.stdout.write(focus_sample())


def _month_view(cost: MonthCostOut) -> Group:
    scope = cost.model or cost.team or "portfolio"
    table = Table("model", "team", "pool", "source", "amount", "why", title="Bills, allocated")
    for a in cost.allocations:
        table.add_row(a.model or "-", a.team or "-", a.pool, a.source, str(a.amount), a.reason)
    head = Text.assemble(
        (f"{scope} {cost.month}: {cost.total} {cost.currency}", "bold"),
        f"\n  bills {cost.bills_total} (allocated {cost.bills_allocated}, unallocated "
        f"{cost.bills_unallocated}); Keel metering {cost.metered_total}",
    )
    return Group(head, table)


@costs_app.command("show")
def show(
    ctx: typer.Context,
    month: MonthOption,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """A month's cost: allocations by tag and rule, unallocated, and Keel's own metering."""
    with connected(ctx) as keel:
        cost = keel.month_cost(month, model=model, team=team)
    output.show(as_json, cost, lambda: _month_view(cost))


@costs_app.command("settings")
def settings(
    ctx: typer.Context,
    changes: Annotated[
        list[str] | None,
        typer.Argument(
            help="NAME=VALUE to change (admins): model_tag, team_tag, pool_tag, currency, "
            "vcpu_hour, gpu_hour, gb_month, per_thousand_predictions."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show (or change) the tag keys, currency and Keel's unit prices."""
    pairs: dict[str, str] = {}
    for change in changes or []:
        name, sep, value = change.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{change!r} is not NAME=VALUE", param_hint="CHANGES")
        pairs[name.strip()] = value.strip()
    with connected(ctx) as keel:
        current = keel.configure_costs(**pairs) if pairs else keel.cost_settings()
    _print_mapping(as_json, current, "Cost settings")


@costs_app.command("rule")
def rule(
    ctx: typer.Context,
    pool: Annotated[str, typer.Argument(help="A ServiceName or keel-pool tag value; * for all.")],
    split: Annotated[
        str, typer.Argument(help="predictions, compute_seconds, even, or none (unallocated).")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Split a pool of untagged cost between models (admins)."""
    with connected(ctx) as keel:
        rules = keel.set_split_rule(pool, None if split == "none" else split)
    _print_mapping(as_json, rules, "Split rules")


@costs_app.command("unit")
def unit(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    day: Annotated[str, typer.Option(help="The UTC day, YYYY-MM-DD.")],
    version: Annotated[int | None, typer.Option(help="Only this version.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Cost per 1,000 predictions of a model (or version) on a day."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(f"{day!r} is not YYYY-MM-DD", param_hint="--day") from None
    with connected(ctx) as keel:
        found = keel.cost_per_thousand_predictions(model, when, version)
    output.show(
        as_json,
        found,
        lambda: Text(
            f"{model}{'' if version is None else f' v{version}'} on {day}: "
            f"{found.cost_per_thousand_predictions or 'no predictions'} per 1,000 predictions "
            f"({found.predictions} predictions)"
        ),
    )


@costs_app.command("export")
def export(
    ctx: typer.Context,
    month: MonthOption,
    out: Annotated[Path, typer.Option("--output", "-o", help="Where to write the CSV.")],
) -> None:
    """Write Keel's own cost rows of a month as a FOCUS CSV (x_KeelModel, x_KeelVersion)."""
    with connected(ctx) as keel:
        out.write_bytes(keel.export_metering(month))
    Console(stderr=True).print(f"Wrote {out}")


@costs_app.command("waste")
def waste(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Idle and wasted spend, each with its monthly cost and the command that fixes it."""
    with connected(ctx) as keel:
        found = keel.waste()
    table = Table("kind", "what", "monthly", "detail", "fix", title="Waste")
    for f in found:
        table.add_row(f.kind, f.subject, str(f.monthly_cost), f.detail, f.fix)
    output.show(as_json, found, lambda: table if found else Text("No waste found."))


# -- budgets -----------------------------------------------------------------------------------


def _thresholds(raw: str | None) -> list[int] | None:
    if raw is None:
        return None
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{raw!r} is not a list of whole percentages like 50,80,100",
            param_hint="--thresholds",
        ) from None


@budgets_app.command("set")
def set_budget(
    ctx: typer.Context,
    scope: Annotated[str, typer.Argument(help="model, team or portfolio.")],
    target: Annotated[str | None, typer.Argument(help="The model or team.")] = None,
    amount: Annotated[str, typer.Option(help="Per month, in the server's currency.")] = "",
    thresholds: Annotated[
        str | None, typer.Option(help="Percentages to alert at (default 50,80,100).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set a monthly budget (a model's or team's: its team's approvers; portfolio: admins)."""
    if not amount:
        raise typer.BadParameter(
            "give the monthly amount, e.g. --amount 2500", param_hint="--amount"
        )
    with connected(ctx) as keel:
        budget = keel.set_budget(scope, amount, target=target, thresholds=_thresholds(thresholds))
    output.show(
        as_json,
        budget,
        lambda: Text(
            f"Budget {budget.id}: {budget.scope} {budget.target or ''} {budget.amount} a month, "
            f"alerts at {', '.join(f'{t}%' for t in budget.thresholds)}"
        ),
    )


@budgets_app.command("list")
def list_budgets(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every budget."""
    with connected(ctx) as keel:
        found = keel.budgets()
    table = Table("id", "scope", "target", "amount", "thresholds", title="Budgets")
    for b in found:
        table.add_row(str(b.id), b.scope, b.target, str(b.amount), ",".join(map(str, b.thresholds)))
    output.show(as_json, found, lambda: table)


@budgets_app.command("delete")
def delete_budget(
    ctx: typer.Context,
    budget_id: Annotated[int, typer.Argument(help="The budget's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Delete a budget."""
    with connected(ctx) as keel:
        gone = keel.delete_budget(budget_id)
    output.show(as_json, gone, lambda: Text(f"Deleted budget {gone.id}."))


def _status_table(found: list[BudgetStatusOut]) -> Table:
    table = Table(
        "budget", "amount", "spent", "forecast (95%)", "method", "backtest MAPE", "crossed",
        title="Budgets",
    )  # fmt: skip
    for s in found:
        f = s.forecast
        mape = "-" if f.backtest_mape is None else f"{f.backtest_mape:.1f}%"
        over = " (over)" if s.forecast_over_budget else ""
        table.add_row(
            f"{s.budget.scope} {s.budget.target}".strip(),
            str(s.budget.amount),
            str(s.spent),
            f"{f.point} [{f.low}, {f.high}]{over}",
            f.method,
            mape,
            ",".join(f"{t}%" for t in s.thresholds_crossed) or "-",
        )
    return table


def _as_of(raw: str | None) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise typer.BadParameter(f"{raw!r} is not YYYY-MM-DD", param_hint="--as-of") from None


AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Judge the month as of this day (YYYY-MM-DD).")
]


@budgets_app.command("status")
def status(
    ctx: typer.Context, month: MonthOption, as_of: AsOfOption = None, as_json: JsonFlag = False
) -> None:
    """Each budget's spend, month-end forecast with its interval and backtest error."""
    with connected(ctx) as keel:
        found = keel.budget_status(month, as_of=_as_of(as_of))
    output.show(as_json, found, lambda: _status_table(found))


@budgets_app.command("check")
def check(
    ctx: typer.Context, month: MonthOption, as_of: AsOfOption = None, as_json: JsonFlag = False
) -> None:
    """Raise the month's new budget alerts: an incident and a budget.* webhook, once each."""
    with connected(ctx) as keel:
        raised = keel.check_budgets(month, as_of=_as_of(as_of))
    table = Table("budget", "signal", "webhook", "incident", title="Alerts raised")
    for a in raised:
        table.add_row(str(a.budget_id), a.signal, a.event_type, str(a.incident_id or "-"))
    output.show(as_json, raised, lambda: table if raised else Text("No new budget alerts."))


# -- gc ----------------------------------------------------------------------------------------


def _gc_view(done: GcOut) -> Text:
    verb = "Would delete" if done.dry_run else "Deleted"
    lines = [
        f"{verb} {len(done.deleted)} unreferenced blob(s), {output.size(done.bytes)}; "
        f"{done.kept_recent} younger than {done.retention_days} days kept."
    ]
    lines += [f"  {b.sha256}  {output.size(b.size)}" for b in done.deleted]
    return Text("\n".join(lines))


def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")
    ] = False,
    retention_days: Annotated[
        int, typer.Option(help="Only blobs last written more than this many days ago.")
    ] = 7,
    as_json: JsonFlag = False,
) -> None:
    """Delete artifact blobs no model version references (admins; audited)."""
    with connected(ctx) as keel:
        done = keel.collect_garbage(dry_run=dry_run, retention_days=retention_days)
    output.show(as_json, done, lambda: _gc_view(done))
