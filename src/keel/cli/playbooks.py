"""`keel playbooks apply|list|test`, `keel rollback MODEL`, `keel retrain MODEL`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from keel.cli import output
from keel.cli.jobs import NoWait, jobs_table, progress_printer
from keel.cli.registry import JsonFlag, connected
from keel.errors import InvalidInput
from keel.schemas.playbooks import DryRunOut, PlaybookOut, RetrainRunOut

playbooks_app = typer.Typer(
    help="Playbooks: what Keel does when an incident matches (YAML).", no_args_is_help=True
)


def _read(path: Path) -> str:
    if not path.is_file():
        raise InvalidInput(f"No playbook file at {path}.", {"field": "file"})
    return path.read_text(encoding="utf-8")


def playbooks_table(playbooks: Iterable[PlaybookOut]) -> Table:
    table = Table("name", "version", "attached to", "enabled", "actions", "by")
    for p in playbooks:
        actions = p.document.get("actions", [])
        names = [a if isinstance(a, str) else next(iter(a)) for a in actions]
        table.add_row(
            p.name,
            str(p.version),
            f"{p.scope} {p.target}",
            "yes" if p.enabled else "no",
            ", ".join(names),
            p.created_by,
        )
    return table


def dry_run_table(plan: DryRunOut) -> Table:
    table = Table("#", "action", "what would happen", title=f"{plan.playbook}: {plan.reason}")
    for a in plan.actions:
        table.add_row(str(a.index + 1), a.action, a.would)
    return table


def runs_table(runs: Iterable[RetrainRunOut]) -> Table:
    table = Table("run", "trigger", "incident", "status", "exit", "version", "started", "reason")
    for r in runs:
        table.add_row(
            str(r.id),
            r.trigger,
            "" if r.incident_id is None else str(r.incident_id),
            r.status,
            "" if r.exit_code is None else str(r.exit_code),
            "" if r.registered_version is None else str(r.registered_version),
            output.when(r.started_at),
            r.reason,
        )
    return table


@playbooks_app.command("apply")
def playbooks_apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Playbook YAML file.")],
    as_json: JsonFlag = False,
) -> None:
    """Apply a playbook (a new version of its name)."""
    with connected(ctx) as keel:
        stored = keel.apply_playbook(_read(file), file.name)
    output.show(as_json, stored, lambda: playbooks_table([stored]))


@playbooks_app.command("list")
def playbooks_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the playbooks in force."""
    with connected(ctx) as keel:
        found = keel.list_playbooks()
    output.show(as_json, found, lambda: playbooks_table(found))


@playbooks_app.command("test")
def playbooks_test(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Playbook YAML file.")],
    incident: Annotated[int, typer.Option("--incident", help="Incident id.")],
    as_json: JsonFlag = False,
) -> None:
    """Show what the playbook would do for the incident, without doing it."""
    with connected(ctx) as keel:
        plan = keel.test_playbook(_read(file), incident, file.name)
    output.show(as_json, plan, lambda: dry_run_table(plan))


def rollback(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    reason: Annotated[str, typer.Option(help="Why production goes back (recorded).")],
    incident: Annotated[int | None, typer.Option(help="The incident this answers.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Move production back to the previous promoted version (refused with the reasons)."""
    with connected(ctx) as keel:
        promotion = keel.rollback(model, reason=reason, incident_id=incident)
    output.show(
        as_json,
        promotion,
        lambda: (
            f"{model}: production is version {promotion.version} again "
            f"(was {promotion.previous_version})."
        ),
    )


def retrain(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    incident: Annotated[int | None, typer.Option(help="The incident this answers.")] = None,
    no_wait: NoWait = False,
    as_json: JsonFlag = False,
) -> None:
    """Run the model's retraining job now and wait for it, showing its progress (define it
    with `keel retraining set`). A worker runs it; with --no-wait, print the queued job."""
    with connected(ctx) as keel:
        if no_wait:
            job = keel.start_retrain(model, incident_id=incident)
            output.show(as_json, job, lambda: jobs_table([job]))
            return
        run = keel.retrain(model, incident_id=incident, on_progress=progress_printer())
    output.show(as_json, run, lambda: runs_table([run]))
    if run.status not in ("succeeded", "sent"):
        raise typer.Exit(1)
