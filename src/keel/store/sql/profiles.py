"""Reference and hourly window profiles, ingest bookkeeping and retention in the metadata database.

Profiles are stored as JSON text; this module never interprets them. Merging happens in the
service, inside `IngestTransaction`, which holds the version's write lock for its whole duration:
``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` of the version's row on PostgreSQL. So two
ingests of one version never merge into the same hour concurrently, and a reference being replaced
(which rebuilds the window profiles from the raw files) never races an ingest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from keel.errors import NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import model_versions, models
from keel.store.sql.tables_telemetry import (
    ingest_batches,
    reference_profiles,
    rejected_rows,
    telemetry_retention,
    window_profiles,
)

Merge = Callable[[str, str], str]
"""Given the stored profile JSON and a new one, the merged JSON."""


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class StoredReference:
    rows: int
    profile: str
    source: str
    set_by: str
    set_at: datetime


@dataclass(frozen=True)
class StoredBatch:
    batch_id: str
    kind: str
    version: int | None
    rows: int
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class StoredWindow:
    hour: datetime
    rows: int
    profile: str | None


def _batch(row: Any) -> StoredBatch:
    parts = tuple(p for p in str(row.partitions).split(",") if p)
    return StoredBatch(row.batch_id, row.kind, row.version, int(row.rows), parts)


def _upsert_ignore(conn: Connection, table: Any, values: Mapping[str, Any]) -> None:
    """INSERT, doing nothing when the primary key exists (both dialects support it)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(postgresql.insert(table).values(**values).on_conflict_do_nothing())
    else:
        conn.execute(sqlite.insert(table).values(**values).on_conflict_do_nothing())


class IngestTransaction:
    """The writes of one batch of one version, under the version's lock."""

    def __init__(self, conn: Connection, model_id: int, version_id: int) -> None:
        self._conn = conn
        self._model_id = model_id
        self.version_id = version_id

    def reference(self) -> StoredReference | None:
        """The version's reference, as it is now that the lock is held."""
        return _reference(self._conn, self.version_id)

    def seen(self, batch_id: str) -> StoredBatch | None:
        row = self._conn.execute(
            select(ingest_batches).where(ingest_batches.c.batch_id == batch_id)
        ).first()
        return None if row is None else _batch(row)

    def add_to_window(self, hour: datetime, rows: int, profile: str | None, merge: Merge) -> None:
        """Add ``rows`` (and their profile, if any) to the hour's window profile."""
        hour, now = _utc(hour), _now()
        key = (window_profiles.c.version_id == self.version_id) & (window_profiles.c.hour == hour)
        stored = self._conn.execute(
            select(window_profiles.c.rows, window_profiles.c.profile).where(key)
        ).first()
        if stored is None:
            self._conn.execute(
                insert(window_profiles).values(
                    version_id=self.version_id,
                    hour=hour,
                    rows=rows,
                    profile=profile,
                    updated_at=now,
                )
            )
            return
        merged = stored.profile
        if profile is not None:
            merged = profile if stored.profile is None else merge(stored.profile, profile)
        self._conn.execute(
            update(window_profiles)
            .where(key)
            .values(rows=window_profiles.c.rows + rows, profile=merged, updated_at=now)
        )

    def record_batch(
        self, batch_id: str, kind: str, version: int | None, rows: int, partitions: list[str]
    ) -> None:
        self._conn.execute(
            insert(ingest_batches).values(
                batch_id=batch_id,
                model_id=self._model_id,
                version=version,
                kind=kind,
                rows=rows,
                partitions=",".join(partitions),
                received_at=_now(),
            )
        )

    def replace_reference(
        self,
        *,
        rows: int,
        profile: str,
        source: str,
        actor: str,
        model: str,
        version: int,
        windows: Mapping[datetime, tuple[int, str | None]],
    ) -> None:
        """Store a new reference and the window profiles rebuilt on its bins; audited."""
        now = _now()
        self._conn.execute(
            delete(reference_profiles).where(reference_profiles.c.version_id == self.version_id)
        )
        self._conn.execute(
            insert(reference_profiles).values(
                version_id=self.version_id,
                rows=rows,
                profile=profile,
                source=source[:256],
                set_by=actor,
                set_at=now,
            )
        )
        self._conn.execute(
            delete(window_profiles).where(window_profiles.c.version_id == self.version_id)
        )
        if windows:
            self._conn.execute(
                insert(window_profiles),
                [
                    {
                        "version_id": self.version_id,
                        "hour": _utc(hour),
                        "rows": n,
                        "profile": text,
                        "updated_at": now,
                    }
                    for hour, (n, text) in windows.items()
                ],
            )
        audit.append(
            self._conn,
            actor=actor,
            action="telemetry.reference.set",
            subject_type="version",
            subject_id=f"{model}/{version}",
            details={"rows": rows, "source": source[:256], "windows_rebuilt": len(windows)},
        )


def _reference(conn: Connection, version_id: int) -> StoredReference | None:
    row = conn.execute(
        select(reference_profiles).where(reference_profiles.c.version_id == version_id)
    ).first()
    if row is None:
        return None
    return StoredReference(
        int(row.rows), row.profile, row.source, row.set_by, codec.utc(row.set_at)
    )


class SqlTelemetryStore:
    """Profiles and ingest bookkeeping over SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlTelemetryStore(backend={self._engine.dialect.name!r})"

    # -- lookups -------------------------------------------------------------------------------

    @staticmethod
    def _ids(conn: Connection, model: str, version: int, *, lock: bool = False) -> tuple[int, int]:
        query = (
            select(models.c.id, model_versions.c.id.label("version_id"))
            .join(model_versions, model_versions.c.model_id == models.c.id)
            .where(models.c.name == model, model_versions.c.version == version)
        )
        if lock:
            query = query.with_for_update(of=model_versions)
        row = conn.execute(query).first()
        if row is None:
            SqlTelemetryStore._model_id(conn, model)  # "No model named ..." first
            raise NotFound(
                f"Model {model!r} has no version {version}. List its versions with "
                f"`keel versions list {model}`.",
                {"model": model, "version": version},
            )
        return int(row.id), int(row.version_id)

    @staticmethod
    def _model_id(conn: Connection, model: str) -> int:
        found = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
        if found is None:
            raise NotFound(f"No model named {model!r}.", {"model": model})
        return int(found)

    # -- ingest --------------------------------------------------------------------------------

    @contextmanager
    def ingest(self, model: str, version: int) -> Iterator[IngestTransaction]:
        """A write transaction holding ``model``/``version``'s lock; commits when the block ends."""
        with write_transaction(self._engine) as conn:
            model_id, version_id = self._ids(conn, model, version, lock=True)
            yield IngestTransaction(conn, model_id, version_id)

    def record_labels(self, model: str, batch_id: str, rows: int, partitions: list[str]) -> None:
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            IngestTransaction(conn, model_id, 0).record_batch(
                batch_id, "labels", None, rows, partitions
            )

    def batch(self, batch_id: str) -> StoredBatch | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(ingest_batches).where(ingest_batches.c.batch_id == batch_id)
            ).first()
        return None if row is None else _batch(row)

    def count_rejected(self, model: str, version: int, hour: datetime, rows: int) -> None:
        """Add ``rows`` to the hour's count of rows refused at ingest."""
        with write_transaction(self._engine) as conn:
            _, version_id = self._ids(conn, model, version)
            hour = _utc(hour)
            _upsert_ignore(conn, rejected_rows, {"version_id": version_id, "hour": hour, "rows": 0})
            conn.execute(
                update(rejected_rows)
                .where((rejected_rows.c.version_id == version_id) & (rejected_rows.c.hour == hour))
                .values(rows=rejected_rows.c.rows + rows)
            )

    # -- reads ---------------------------------------------------------------------------------

    def reference(self, model: str, version: int) -> StoredReference | None:
        with read_transaction(self._engine) as conn:
            _, version_id = self._ids(conn, model, version)
            return _reference(conn, version_id)

    def windows(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> list[StoredWindow]:
        """The hours with start <= hour < end, oldest first."""
        with read_transaction(self._engine) as conn:
            _, version_id = self._ids(conn, model, version)
            rows = conn.execute(
                select(window_profiles.c.hour, window_profiles.c.rows, window_profiles.c.profile)
                .where(
                    window_profiles.c.version_id == version_id,
                    window_profiles.c.hour >= _utc(start),
                    window_profiles.c.hour < _utc(end),
                )
                .order_by(window_profiles.c.hour)
            ).all()
        return [StoredWindow(codec.utc(r.hour), int(r.rows), r.profile) for r in rows]

    def rejected(self, model: str, version: int, start: datetime, end: datetime) -> int:
        with read_transaction(self._engine) as conn:
            _, version_id = self._ids(conn, model, version)
            total = conn.execute(
                select(func.coalesce(func.sum(rejected_rows.c.rows), 0)).where(
                    rejected_rows.c.version_id == version_id,
                    rejected_rows.c.hour >= _utc(start),
                    rejected_rows.c.hour < _utc(end),
                )
            ).scalar_one()
        return int(total)

    # -- retention -----------------------------------------------------------------------------

    def retention_days(self, model: str) -> int | None:
        with read_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            days = conn.execute(
                select(telemetry_retention.c.days).where(telemetry_retention.c.model_id == model_id)
            ).scalar()
        return None if days is None else int(days)

    def retention_by_model(self) -> dict[str, int]:
        """Every model with a retention set, and its days."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(models.c.name, telemetry_retention.c.days).join(
                    telemetry_retention, telemetry_retention.c.model_id == models.c.id
                )
            ).all()
        return {r.name: int(r.days) for r in rows}

    def set_retention(self, model: str, days: int, actor: str) -> datetime:
        now = _now()
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            conn.execute(
                delete(telemetry_retention).where(telemetry_retention.c.model_id == model_id)
            )
            conn.execute(
                insert(telemetry_retention).values(
                    model_id=model_id, days=days, set_by=actor, set_at=now
                )
            )
            audit.append(
                conn,
                actor=actor,
                action="telemetry.retention.set",
                subject_type="model",
                subject_id=model,
                details={"days": days},
            )
        return now

    def record_purge(self, model: str, actor: str, cutoff: str, partitions: list[str]) -> None:
        """Audit the deletion of expired raw partitions."""
        with write_transaction(self._engine) as conn:
            audit.append(
                conn,
                actor=actor,
                action="telemetry.purge",
                subject_type="model",
                subject_id=model,
                details={
                    "before": cutoff,
                    "partitions": partitions[:100],
                    "count": len(partitions),
                },
            )
