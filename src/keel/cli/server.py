"""`keel up` and `keel db`: run the server and manage its database."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from keel.config import ADMIN_TOKEN_FILE, Settings, remember_local_server
from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.services.backend import Backend

db_app = typer.Typer(help="Manage Keel's metadata database.", no_args_is_help=True)
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (env KEEL_HOME, default ./.keel)."),
]


def up(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8420,
    log_level: Annotated[str, typer.Option(help="Server log level.")] = "info",
) -> None:
    """Start Keel: API, dashboard and worker in one process.

    On the embedded default (SQLite in the data directory) the database is migrated first.
    With KEEL_DATABASE_URL pointing at PostgreSQL, run `keel db upgrade` once beforehand.
    """
    # The server stack is imported here, not at module level, so that client commands
    # (`keel models list`...) start in a fraction of the time.
    import uvicorn

    from keel.server import build_app
    from keel.services.backend import Backend
    from keel.services.leftovers import remove_leftovers
    from keel.store import migrate
    from keel.worker.loop import Worker, scheduled_jobs

    started = datetime.now(UTC)
    settings = Settings.load(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        backend = Backend.open(settings)
    except KeelError as exc:  # e.g. an unusable KEEL_AUDIT_KEY_FILE: one line, no traceback
        err.print(exc.message, markup=False, soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    removed = remove_leftovers(backend.registry.artifacts, backend.telemetry.files, started)
    if removed:
        err.print(f"Removed {len(removed)} temporary files left by a stopped Keel.")
    if settings.embedded:
        backend.migrate()
    elif migrate.current_revision(backend.engine) != migrate.head_revision():
        err.print(
            "[yellow]The metadata database is not migrated; run `keel db upgrade`. "
            "Until then /readyz answers 503.[/yellow]"
        )
    _bootstrap_admin(backend, settings.data_dir)
    remember_local_server(os.environ, port, settings.data_dir)
    worker = Worker(jobs=scheduled_jobs(backend))
    thread = threading.Thread(
        target=worker.run_forever, args=(time.monotonic,), name="keel-worker", daemon=True
    )
    thread.start()
    app = build_app(backend)
    url = f"http://{host}:{port}"
    err.print(
        f"Keel is up at [bold]{url}[/bold]  (API docs {url}/docs, data in {settings.data_dir})",
        soft_wrap=True,
    )
    logging.basicConfig(level=log_level.upper())
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)
    finally:
        worker.stop()
        thread.join(timeout=5)
        app.state.gateway.close()  # its model workers, and the last prediction rows logged
        backend.close()


def serve(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8421,
    log_level: Annotated[str, typer.Option(help="Server log level.")] = "info",
) -> None:
    """Run the prediction gateway alone, without the API or the dashboard.

    Stateless: it reads deployments from the metadata database (KEEL_DATABASE_URL) and artifacts
    from the artifact store (KEEL_ARTIFACT_URL), so several can run beside the API. It answers
    /models/NAME/invocations (MLflow) and /v2/models/NAME/infer (Open Inference V2), plus
    /healthz, /readyz and /metrics. It never migrates the database: run `keel up` or
    `keel db upgrade` first.
    """
    import uvicorn

    from keel.server import build_gateway_app
    from keel.services.backend import Backend

    settings = Settings.load(data_dir=data_dir)
    try:
        backend = Backend.open(settings)
    except KeelError as exc:
        err.print(exc.message, markup=False, soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    app = build_gateway_app(backend)
    err.print(f"Keel's gateway is up at [bold]http://{host}:{port}[/bold]", soft_wrap=True)
    logging.basicConfig(level=log_level.upper())
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)
    finally:
        app.state.gateway.close()
        backend.close()


def _bootstrap_admin(backend: Backend, data_dir: Path) -> None:
    """On an empty store, create the first admin; print its token once and keep it in
    ``<data dir>/admin-token`` (mode 0600) for the CLI and SDK on this machine."""
    token = backend.identity.bootstrap_admin()
    if token is None:
        return
    path = data_dir / ADMIN_TOKEN_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    # Created with 0600 from the start: no moment where another user could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)  # an existing file keeps its old mode through O_TRUNC
    err.print(
        "Created the first admin. Its API token, shown this once:\n\n"
        f"    {token}\n\n"
        f"It is also in {path} (readable by you only); the CLI and SDK on this machine use it "
        "when no token is given.",
        soft_wrap=True,
        highlight=False,
    )


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Run the metadata database migrations up to the newest (safe to run again)."""
    from keel.store import migrate
    from keel.store.sql.engine import make_engine

    settings = Settings.load(data_dir=data_dir)
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The database alone: no backend, so no audit key or other local state is made on a host
    # that only runs migrations against PostgreSQL.
    engine = make_engine(settings.database_url)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        err.print(f"Already at the newest schema ({after}).")
    else:
        err.print(f"Migrated the metadata database from {before or 'empty'} to {after}.")
