"""Engines for the metadata database, with SQLite set up for many readers and safe writers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

_WRITE = "keel_write"

# A check every write transaction of this context runs first, inside the transaction: a job's
# handler sets one (its lease fence), so a worker that lost its job cannot commit any effect.
WriteGuard = Callable[[Connection], None]
_write_guard: ContextVar[WriteGuard | None] = ContextVar("keel_write_guard", default=None)


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` (SQLite file or PostgreSQL via psycopg)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # A connection per checkout: SQLite connections are cheap, and a pooled connection shared
    # across threads is the usual source of "database is locked" surprises.
    engine = create_engine(url, poolclass=NullPool, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN, so writes can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY without
        # waiting; BEGIN IMMEDIATE takes the write lock first, so concurrent writers queue.
        mode = "IMMEDIATE" if connection.get_execution_options().get(_WRITE) else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that will write; commits on success, rolls back on error."""
    with engine.connect() as connection:
        connection = connection.execution_options(**{_WRITE: True})
        with connection.begin():
            guard = _write_guard.get()
            if guard is not None:
                guard(connection)
            yield connection


@contextmanager
def guarded_writes(guard: WriteGuard) -> Iterator[None]:
    """Run ``guard`` at the start of every write transaction opened in this context (this
    thread or task): it raises to refuse the transaction, which then writes nothing."""
    token = _write_guard.set(guard)
    try:
        yield
    finally:
        _write_guard.reset(token)


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection, connection.begin():
        yield connection
