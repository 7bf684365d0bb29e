"""`keel drills run|list|show|ack|resolve|schedule|schedules|unschedule`: rehearse incidents."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table

from keel.cli import output
from keel.cli.jobs import NoWait, jobs_table, progress_printer
from keel.cli.registry import JsonFlag, connected
from keel.schemas.drills import DrillOut, DrillScheduleOut

drills_app = typer.Typer(
    help="Incident drills: rehearse the incident path on made-up trouble, apart from real data.",
    no_args_is_help=True,
)
DrillId = Annotated[int, typer.Argument(help="The drill's id (keel drills list).")]
Model = Annotated[str, typer.Option("--model", help="The model to drill.")]
Scenario = Annotated[
    str,
    typer.Option("--scenario", help="drift, performance, latency, errors or bad-deploy."),
]
Alias = Annotated[str, typer.Option("--alias", help="The alias whose version is drilled.")]
Comment = Annotated[str, typer.Option("--comment", "-m", help="A note for the timeline.")]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def drills_table(drills: Iterable[DrillOut]) -> Table:
    table = Table(
        "drill", "model", "scenario", "status", "incident", "detect", "page", "ack", "resolve"
    )
    for d in drills:
        table.add_row(
            str(d.id),
            d.model,
            d.scenario,
            d.status,
            "" if d.incident_id is None else str(d.incident_id),
            _seconds(d.time_to_detect_s),
            _seconds(d.time_to_page_s),
            _seconds(d.time_to_acknowledge_s),
            _seconds(d.time_to_resolve_s),
        )
    return table


def drill_view(drill: DrillOut) -> Group:
    parts: list[Table] = [drills_table([drill])]
    if drill.steps:
        steps = Table("playbook", "step", "ran as", "what it did or would have done")
        for s in drill.steps:
            steps.add_row(s.playbook, s.action, s.outcome, s.would)
        parts.append(steps)
    findings = Table("what failed")
    for failure in drill.failures or ["nothing"]:
        findings.add_row(failure)
    parts.append(findings)
    return Group(*parts)


@drills_app.command("run")
def drills_run(
    ctx: typer.Context,
    model: Model,
    scenario: Scenario,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Send the playbooks' notify steps for real (refused on production).",
        ),
    ] = False,
    alias: Alias = "production",
    no_wait: NoWait = False,
    as_json: JsonFlag = False,
) -> None:
    """Run a drill: made-up telemetry through the model's real monitors, alert rules,
    incident, notifications (marked as drills) and playbooks (dry runs). A worker runs it; this
    waits, showing its progress. Then acknowledge and resolve it: `keel drills ack ID`."""
    with connected(ctx) as keel:
        if no_wait:
            job = keel.start_drill(model, scenario, live=live, alias=alias)
            output.show(as_json, job, lambda: jobs_table([job]))
            return
        drill = keel.run_drill(
            model, scenario, live=live, alias=alias, on_progress=progress_printer()
        )
    output.show(as_json, drill, lambda: drill_view(drill))


@drills_app.command("list")
def drills_list(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Only this model's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List drills with their times, newest first."""
    with connected(ctx) as keel:
        found = keel.list_drills(model=model)
    output.show(as_json, found, lambda: drills_table(found))


@drills_app.command("show")
def drills_show(ctx: typer.Context, drill_id: DrillId, as_json: JsonFlag = False) -> None:
    """Show a drill's report: its times, playbook steps and what failed."""
    with connected(ctx) as keel:
        drill = keel.get_drill(drill_id)
    output.show(as_json, drill, lambda: drill_view(drill))


@drills_app.command("ack")
def drills_ack(
    ctx: typer.Context, drill_id: DrillId, comment: Comment = "", as_json: JsonFlag = False
) -> None:
    """Acknowledge the drill's incident (as a person on call would)."""
    with connected(ctx) as keel:
        drill = keel.acknowledge_drill(drill_id, comment)
    output.show(as_json, drill, lambda: drill_view(drill))


@drills_app.command("resolve")
def drills_resolve(
    ctx: typer.Context, drill_id: DrillId, comment: Comment = "", as_json: JsonFlag = False
) -> None:
    """Resolve the drill's incident: the drill is over and its report complete."""
    with connected(ctx) as keel:
        drill = keel.resolve_drill(drill_id, comment)
    output.show(as_json, drill, lambda: drill_view(drill))


def schedules_table(schedules: Iterable[DrillScheduleOut]) -> Table:
    table = Table("model", "scenario", "alias", "every", "by")
    for s in schedules:
        table.add_row(s.model, s.scenario, s.alias, f"{s.every_days} days", s.created_by)
    return table


@drills_app.command("schedule")
def drills_schedule(
    ctx: typer.Context,
    model: Model,
    scenario: Scenario,
    every_days: Annotated[int, typer.Option("--every-days", help="Days between drills.")] = 30,
    alias: Alias = "production",
    as_json: JsonFlag = False,
) -> None:
    """Run a drill every N days (never live); replaces the model's schedule for the scenario."""
    with connected(ctx) as keel:
        schedule = keel.schedule_drill(model, scenario, every_days, alias=alias)
    output.show(as_json, schedule, lambda: schedules_table([schedule]))


@drills_app.command("schedules")
def drills_schedules(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the scheduled drills."""
    with connected(ctx) as keel:
        found = keel.drill_schedules()
    output.show(as_json, found, lambda: schedules_table(found))


@drills_app.command("unschedule")
def drills_unschedule(ctx: typer.Context, model: Model, scenario: Scenario) -> None:
    """Stop a model's scheduled drill of a scenario."""
    with connected(ctx) as keel:
        keel.unschedule_drill(model, scenario)
