"""`keel retraining set|show|runs`: a model's retraining job and its runs (`keel retrain MODEL`
runs it)."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer
from rich.table import Table

from keel.cli import output
from keel.cli.playbooks import runs_table
from keel.cli.registry import JsonFlag, connected
from keel.errors import InvalidInput
from keel.schemas.playbooks import RetrainingJobOut

retraining_app = typer.Typer(
    help="A model's retraining job (a sandboxed command, admins only; or a webhook) and its runs.",
    no_args_is_help=True,
)


def job_table(job: RetrainingJobOut) -> Table:
    table = Table("field", "value", title=f"{job.model}: {job.kind} retraining job")
    rows = {
        "command": shlex.join(job.command) if job.command else "",
        "code paths (read-only)": ", ".join(job.code_paths),
        "timeout": f"{job.timeout_s}s",
        "memory": f"{job.memory_mb} MB",
        "window": f"last {job.window_days} days",
        "schedule": "" if job.schedule_every_s is None else f"every {job.schedule_every_s}s",
        "set by": f"{job.updated_by}, {output.when(job.updated_at)}",
    }
    for field, value in rows.items():
        table.add_row(field, value)
    return table


@retraining_app.command("set")
def retraining_set(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    command: Annotated[
        str | None,
        typer.Option(
            help="The command, split like a shell would (no shell runs it), with placeholders "
            "{data} {output_dir} {model} {window_start} {window_end} {incident} {run}. "
            "Admins only.",
        ),
    ] = None,
    webhook: Annotated[
        bool, typer.Option("--webhook", help="Emit retrain.requested instead of a command.")
    ] = False,
    code_path: Annotated[
        list[str] | None,
        typer.Option(help="A server path the command may read (its code); repeatable."),
    ] = None,
    timeout: Annotated[int, typer.Option(help="Seconds before the run is killed.")] = 3600,
    memory_mb: Annotated[int, typer.Option(help="Memory limit of the command.")] = 4096,
    window_days: Annotated[int, typer.Option(help="Days of labelled predictions to use.")] = 7,
    schedule_every: Annotated[
        int | None, typer.Option(help="Also run every N seconds (at least 60).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Define (or replace) the model's retraining job."""
    argv: list[str] | None = None
    if command is not None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise InvalidInput(f"--command cannot be split: {exc}.", {"field": "command"}) from None
    with connected(ctx) as keel:
        job = keel.set_retraining_job(
            model,
            command=argv,
            webhook=webhook,
            code_paths=code_path or (),
            memory_mb=memory_mb,
            timeout_s=timeout,
            window_days=window_days,
            schedule_every_s=schedule_every,
        )
    output.show(as_json, job, lambda: job_table(job))


@retraining_app.command("show")
def retraining_show(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """Show the model's retraining job."""
    with connected(ctx) as keel:
        job = keel.retraining_job(model)
    output.show(as_json, job, lambda: job_table(job))


@retraining_app.command("runs")
def retraining_runs(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    as_json: JsonFlag = False,
) -> None:
    """List the model's retrain runs (the model's team and admins only)."""
    with connected(ctx) as keel:
        runs = keel.retrain_runs(model)
    output.show(as_json, runs, lambda: runs_table(runs))
