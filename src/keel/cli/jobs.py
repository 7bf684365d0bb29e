"""`keel jobs list|show|wait|cancel`: follow the long work the server queued."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keel.cli import output
from keel.cli.registry import JsonFlag, connected
from keel.schemas.jobs import JobOut

jobs_app = typer.Typer(
    help="Jobs: gate runs, retraining runs, monitor runs and compliance exports that a worker "
    "does for you.",
    no_args_is_help=True,
)
JobId = Annotated[int, typer.Argument(help="The job's id (from the command that queued it).")]
NoWait = Annotated[
    bool,
    typer.Option(
        "--no-wait", help="Print the queued job and return; follow it with `keel jobs wait`."
    ),
]


def jobs_table(jobs: Iterable[JobOut]) -> Table:
    table = Table("job", "kind", "state", "attempts", "by", "queued", "progress / error")
    for j in jobs:
        table.add_row(
            str(j.id),
            j.kind,
            j.state,
            f"{j.attempts}/{j.max_attempts}",
            j.created_by,
            output.when(j.created_at),
            j.error or j.progress,
        )
    return table


def progress_printer() -> Callable[[JobOut], None]:
    """Each new state or progress message of a job, as a line on stderr (stdout stays the
    result, for scripts)."""
    console = Console(stderr=True)

    def show(job: JobOut) -> None:
        note = f": {job.progress}" if job.progress else ""
        console.print(f"job {job.id} ({job.kind}) {job.state}{note}", highlight=False)

    return show


@jobs_app.command("list")
def jobs_list(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option(help="queued, running, succeeded, failed, dead or cancelled.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="gate-run, retrain, monitor-run or compliance-export.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List jobs, newest first."""
    with connected(ctx) as keel:
        found = keel.list_jobs(state=state, kind=kind, limit=limit)
    output.show(as_json, found, lambda: jobs_table(found))


@jobs_app.command("show")
def jobs_show(ctx: typer.Context, job_id: JobId, as_json: JsonFlag = False) -> None:
    """Show a job: state, attempts, progress, result or error."""
    with connected(ctx) as keel:
        job = keel.get_job(job_id)
    output.show(as_json, job, lambda: jobs_table([job]))


@jobs_app.command("wait")
def jobs_wait(
    ctx: typer.Context,
    job_id: JobId,
    timeout: Annotated[
        float | None, typer.Option(help="Give up after this many seconds (exit 2).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Wait for a job to finish, showing its progress; exit 1 unless it succeeded."""
    with connected(ctx) as keel:
        try:
            job = keel.wait_for_job(job_id, timeout=timeout, on_progress=progress_printer())
        except TimeoutError as exc:
            Console(stderr=True).print(str(exc), highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    output.show(as_json, job, lambda: jobs_table([job]))
    if job.state != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("cancel")
def jobs_cancel(ctx: typer.Context, job_id: JobId, as_json: JsonFlag = False) -> None:
    """Cancel a queued or running job (a finished job cannot be cancelled)."""
    with connected(ctx) as keel:
        job = keel.cancel_job(job_id)
    output.show(as_json, job, lambda: jobs_table([job]))
