"""`keel telemetry import|labels|reference|retention`: bulk predictions, labels and reference data
from files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from keel.cli.output import error_line
from keel.cli.registry import JsonFlag, connected
from keel.errors import InvalidInput
from keel.sdk import Client

telemetry_app = typer.Typer(
    help="Predictions, labels and reference profiles from files.", no_args_is_help=True
)
DEFAULT_BATCH_ROWS = 100_000


def _batches(path: Path, batch_rows: int) -> tuple[int, Any]:
    """The file's row count and an iterator of Arrow record batches (Parquet, Arrow IPC, CSV),
    read batch by batch so a large file never sits in memory whole.

    A missing, unreadable or malformed file is one error line and exit code 1, not a traceback.
    """
    import pyarrow as pa

    try:
        return _open_batches(path, batch_rows)
    except InvalidInput as exc:
        Console(stderr=True).print(error_line(exc), soft_wrap=True)
        raise typer.Exit(1) from None
    except (pa.ArrowException, OSError) as exc:
        problem = InvalidInput(
            f"Cannot read {path.name!r} as {path.suffix.lstrip('.') or 'a data file'}: {exc}. "
            "Check that the file is complete and in the format its name says.",
            {"field": "FILE"},
        )
        Console(stderr=True).print(error_line(problem), soft_wrap=True)
        raise typer.Exit(1) from None


def _open_batches(path: Path, batch_rows: int) -> tuple[int, Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    if not path.is_file():
        raise InvalidInput(f"No file at {str(path)!r}.", {"field": "FILE"})
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        parquet = pq.ParquetFile(path)
        return parquet.metadata.num_rows, parquet.iter_batches(batch_size=batch_rows)
    if suffix in (".arrow", ".feather", ".ipc", ".arrows"):
        try:
            table = ipc.open_file(path).read_all()
        except pa.ArrowInvalid:
            table = ipc.open_stream(path).read_all()
        return table.num_rows, iter(table.to_batches(max_chunksize=batch_rows))
    if suffix == ".csv":
        table = pacsv.read_csv(path)
        return table.num_rows, iter(table.to_batches(max_chunksize=batch_rows))
    raise InvalidInput(
        f"Cannot tell the format of {path.name!r}: use a .parquet, .arrow or .csv file.",
        {"field": "FILE"},
    )


def _upload_in_batches(
    ctx: typer.Context,
    file: Path,
    batch_rows: int,
    *,
    key: str,
    stem: str,
    what: str,
    send: Callable[[Client, Any, str], int],
    quiet: bool,
) -> int:
    """Send ``file`` batch by batch with a progress bar; the rows the server stored.

    Each batch's id comes from the file (path, size, mtime), ``key`` and the batch size, so a
    re-run after an interruption sends the same ids and the server stores nothing twice.
    """
    import pyarrow as pa

    total, batches = _batches(file, batch_rows)
    stat = file.stat()
    identity = f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{key}:{batch_rows}"
    prefix = f"{stem}-" + hashlib.sha256(identity.encode()).hexdigest()[:24]
    sent = 0
    with (
        connected(ctx) as client,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=quiet,
        ) as progress,
    ):
        task = progress.add_task(f"{file.name} -> {what}", total=total)
        for index, batch in enumerate(batches):
            table = pa.Table.from_batches([batch])
            sent += send(client, table, f"{prefix}-{index:06d}")
            progress.update(task, advance=table.num_rows)
    return sent


@telemetry_app.command("import")
def import_predictions(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Parquet, Arrow IPC or CSV file of predictions.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name.")],
    version: Annotated[int, typer.Option("--version", "-v", help="Version number.")],
    batch_rows: Annotated[int, typer.Option(help="Rows per upload.")] = DEFAULT_BATCH_ROWS,
    as_json: JsonFlag = False,
) -> None:
    """Upload a file of predictions in batches, with a progress bar.

    Columns: prediction and the version's features (see `keel versions show`), optionally
    prediction_id, ts, score, latency_ms and error. Each batch gets its own id, so a batch the
    server already stored is not stored twice when you re-run after an interruption.
    """
    sent = _upload_in_batches(
        ctx,
        file,
        batch_rows,
        key=f"{model}:{version}",
        stem="import",
        what=f"{model} v{version}",
        send=lambda client, table, batch_id: (
            client.upload_predictions(model, version, table, batch_id=batch_id).rows
        ),
        quiet=as_json,
    )
    if as_json:
        typer.echo(f'{{"rows": {sent}, "model": "{model}", "version": {version}}}')
    else:
        Console().print(f"Imported {sent:,} predictions into {model} v{version}.")


@telemetry_app.command("labels")
def import_labels(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Parquet, Arrow IPC or CSV file of labels.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name.")],
    batch_rows: Annotated[int, typer.Option(help="Rows per upload.")] = DEFAULT_BATCH_ROWS,
    as_json: JsonFlag = False,
) -> None:
    """Upload a file of ground truth for earlier predictions, in batches, with a progress bar.

    Columns: prediction_id (the id each prediction was logged with), label, and optionally ts.
    Labels join their predictions by id, whichever version made them. Each batch gets its own
    id, so re-running after an interruption stores nothing twice.
    """
    sent = _upload_in_batches(
        ctx,
        file,
        batch_rows,
        key=f"{model}:labels",
        stem="labels",
        what=f"{model} labels",
        send=lambda client, table, batch_id: (
            client.upload_labels(model, table, batch_id=batch_id).rows
        ),
        quiet=as_json,
    )
    if as_json:
        typer.echo(f'{{"rows": {sent}, "model": "{model}"}}')
    else:
        Console().print(f"Imported {sent:,} labels into {model}.")


@telemetry_app.command("reference")
def set_reference(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    file: Annotated[Path, typer.Argument(help="Parquet, Arrow IPC or CSV dataset.")],
    bins: Annotated[int, typer.Option(help="Bins per numeric column.")] = 20,
    top_k: Annotated[int, typer.Option(help="Categories kept per categorical column.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Profile a dataset (e.g. the training data) as the version's reference for drift."""
    import pyarrow as pa

    _, batches = _batches(file, 1_000_000)
    table = pa.Table.from_batches(list(batches))
    with connected(ctx) as client:
        reference = client.set_reference(
            model, version, table, bins=bins, top_k=top_k, source=file.name
        )
    if as_json:
        typer.echo(reference.model_dump_json(exclude={"profile"}))
    else:
        Console().print(
            f"Reference for {model} v{version}: {reference.rows:,} rows, "
            f"columns {', '.join(reference.columns)}."
        )


@telemetry_app.command("retention")
def set_retention(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    days: Annotated[int, typer.Argument(help="Days of raw predictions and labels to keep.")],
) -> None:
    """Keep DAYS of raw telemetry for MODEL; older date partitions are deleted now."""
    with connected(ctx) as client:
        policy = client.set_telemetry_retention(model, days)
    Console().print(
        f"{model}: keeping {policy.days} days; deleted {len(policy.deleted_partitions)} "
        "partition(s)."
    )
