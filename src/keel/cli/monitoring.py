"""`keel monitor ...`: define, run and read a model's monitors from a terminal."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.domain.monitoring import Status, worst
from keel.errors import InvalidInput, NotFound
from keel.schemas.monitoring import MetricPointOut, MonitorOut, RunOut

monitor_app = typer.Typer(
    help="Monitors: drift, data quality, live performance, fairness, operations and "
    "explanation drift checks.",
    no_args_is_help=True,
)

_STYLE = {
    Status.OK: "green",
    Status.WARNING: "yellow",
    Status.ALERT: "bold red",
    Status.NO_DATA: "dim",
}


def _thresholds(raw: str | None) -> dict[str, Any]:
    """``--thresholds`` as inline JSON or the path of a JSON file."""
    if raw is None:
        return {}
    text = raw
    if not raw.lstrip().startswith("{"):
        path = Path(raw)
        if not path.is_file():
            raise InvalidInput(
                f"--thresholds must be a JSON object or a JSON file; {raw!r} is neither.",
                {"field": "thresholds"},
            )
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"--thresholds is not valid JSON ({exc.msg} at line {exc.lineno}).",
            {"field": "thresholds"},
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput("--thresholds must be a JSON object.", {"field": "thresholds"})
    return data


def _status(status: Status) -> Text:
    return Text(str(status), style=_STYLE[status])


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def monitors_table(monitors: Iterable[MonitorOut]) -> Table:
    table = Table("id", "name", "version", "checks", "window", "schedule", "next run")
    for m in monitors:
        table.add_row(
            str(m.id),
            m.name,
            str(m.version) if m.version is not None else "live",
            ", ".join(m.checks),
            m.window,
            f"+{m.schedule.delay_minutes}m" if m.schedule.enabled else "manual",
            output.when(m.next_due_at),
        )
    return table


def points_table(points: Iterable[MetricPointOut]) -> Table:
    table = Table("check", "column", "metric", "value", "threshold", "status", "window end")
    for p in points:
        table.add_row(
            p.check,
            p.column or "",
            p.metric,
            _number(p.value),
            _number(p.threshold),
            _status(p.status),
            output.when(p.window_end),
        )
    return table


def status_view(model: str, status: Status, points: list[MetricPointOut]) -> Group:
    headline = Text.assemble(f"{model}: ", _status(status))
    if not points:
        return Group(headline, Text("No metric points yet: run `keel monitor run MODEL`."))
    return Group(headline, points_table(points))


@monitor_app.command("create")
def monitor_create(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    name: Annotated[str, typer.Option(help="Monitor name, unique per model.")] = "default",
    check: Annotated[
        list[str] | None,
        typer.Option(
            help="A check to run (drift, quality, performance, fairness, operations, "
            "explanation_drift); repeat for several. Default: all but explanation_drift."
        ),
    ] = None,
    window: Annotated[
        str, typer.Option(help="hourly, daily, or a size in minutes (a multiple of 60).")
    ] = "hourly",
    version: Annotated[
        int | None, typer.Option(help="Version to watch (default: production alias, else newest).")
    ] = None,
    reference_version: Annotated[
        int | None, typer.Option(help="Compare with this version's reference profile.")
    ] = None,
    thresholds: Annotated[
        str | None, typer.Option(help="Threshold overrides: a JSON object or a JSON file.")
    ] = None,
    schedule: Annotated[bool, typer.Option(help="Let the worker run it after each window.")] = True,
    delay_minutes: Annotated[
        int, typer.Option(help="Minutes after a window ends before the worker runs it.")
    ] = 5,
    as_json: JsonFlag = False,
) -> None:
    """Define a monitor on a model."""
    with connected(ctx) as keel:
        created = keel.create_monitor(
            model,
            name=name,
            checks=check or None,
            window=window,
            version=version,
            reference_version=reference_version,
            thresholds=_thresholds(thresholds),
            schedule=schedule,
            delay_minutes=delay_minutes,
        )
    output.show(as_json, created, lambda: monitors_table([created]))


@monitor_app.command("update")
def monitor_update(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    name: Annotated[str, typer.Option(help="The monitor to change.")] = "default",
    check: Annotated[
        list[str] | None,
        typer.Option(help="Replace the checks (repeat for several)."),
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="hourly, daily, or a size in minutes (a multiple of 60).")
    ] = None,
    version: Annotated[int | None, typer.Option(help="Watch this version.")] = None,
    reference_version: Annotated[
        int | None, typer.Option(help="Compare with this version's reference profile.")
    ] = None,
    thresholds: Annotated[
        str | None,
        typer.Option(help="Replace the threshold overrides: a JSON object or a JSON file."),
    ] = None,
    schedule: Annotated[
        bool | None, typer.Option(help="Let the worker run it after each window.")
    ] = None,
    delay_minutes: Annotated[
        int | None, typer.Option(help="Minutes after a window ends before the worker runs it.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a monitor's checks, window, versions, thresholds or schedule; the rest stays."""
    changes: dict[str, Any] = {}
    if check:
        changes["checks"] = check
    if window is not None:
        changes["window"] = window
    if version is not None:
        changes["version"] = version
    if reference_version is not None:
        changes["reference_version"] = reference_version
    with connected(ctx) as keel:
        if thresholds is not None:
            changes["thresholds"] = _thresholds(thresholds)
        found = next((m for m in keel.list_monitors(model) if m.name == name), None)
        if found is None:
            raise NotFound(
                f"{model} has no monitor named {name!r}; see `keel monitor list {model}`.",
                {"field": "name"},
            )
        if schedule is not None or delay_minutes is not None:
            changes["schedule"] = {
                "enabled": found.schedule.enabled if schedule is None else schedule,
                "delay_minutes": delay_minutes or found.schedule.delay_minutes,
            }
        if not changes:
            raise InvalidInput(
                "Nothing to change: give --check, --window, --version, --reference-version, "
                "--thresholds, --schedule/--no-schedule or --delay-minutes.",
                {},
            )
        updated = keel.update_monitor(found.id, **changes)
    output.show(as_json, updated, lambda: monitors_table([updated]))


@monitor_app.command("list")
def monitor_list(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """List a model's monitors."""
    with connected(ctx) as keel:
        monitors = keel.list_monitors(model)
    output.show(as_json, monitors, lambda: monitors_table(monitors))


@monitor_app.command("delete")
def monitor_delete(
    ctx: typer.Context, monitor_id: Annotated[int, typer.Argument(help="Monitor id.")]
) -> None:
    """Delete a monitor (the points it recorded stay)."""
    with connected(ctx) as keel:
        keel.delete_monitor(monitor_id)
    Console(stderr=True).print(f"Deleted monitor {monitor_id}.")


@monitor_app.command("run")
def monitor_run(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    at: Annotated[
        datetime | None,
        typer.Option(help="Evaluate the newest window complete at this UTC time (default now)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a model's monitors now over their newest complete window."""
    err = Console(stderr=True)
    with connected(ctx) as keel:
        monitors = keel.list_monitors(model)
        if not monitors:
            err.print(f"{model} has no monitors; define one with `keel monitor create {model}`.")
            raise typer.Exit(1)
        runs: list[RunOut] = []
        # One request per monitor, so the bar moves as each finishes (`transient`: it leaves
        # the terminal clean; off a terminal Rich draws nothing).
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task(f"Running {model}'s monitors", total=len(monitors))
            for monitor in monitors:
                progress.update(task, description=f"Monitor {monitor.name}")
                runs.append(keel.run_monitors(model, at=at, monitor=monitor.id))
                progress.advance(task)
    points = [p for run in runs for p in run.points]
    result = RunOut(status=worst([p.status for p in points]), points=points)
    output.show(as_json, result, lambda: status_view(model, result.status, points))


@monitor_app.command("status")
def monitor_status(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """The newest verdict of every check, column and metric of a model."""
    with connected(ctx) as keel:
        found = keel.monitoring_status(model)
    output.show(as_json, found, lambda: status_view(model, found.status, found.points))
