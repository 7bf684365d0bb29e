"""Keel's compute usage over SQLAlchemy Core: added to per (kind, model, version, hour)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from keel.store.sql import codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables_compute_usage import compute_usage

# (kind, model, version, hour) -> (seconds, events)
UsageKey = tuple[str, str, int, datetime]


@dataclass(frozen=True)
class ComputeUsage:
    kind: str
    model: str
    version: int
    hour: datetime
    seconds: float
    events: int


class SqlComputeUsage:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, usage: Mapping[UsageKey, tuple[float, int]]) -> None:
        """Add seconds and events to each hour's row, in one transaction."""
        if not usage:
            return
        with write_transaction(self._engine) as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            for (kind, model, version, hour), (seconds, events) in sorted(usage.items()):
                statement = dialect.insert(compute_usage).values(
                    kind=kind,
                    model=model,
                    version=version,
                    hour=hour,
                    seconds=seconds,
                    events=events,
                )
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["kind", "model", "version", "hour"],
                        set_={
                            "seconds": compute_usage.c.seconds + statement.excluded.seconds,
                            "events": compute_usage.c.events + statement.excluded.events,
                        },
                    )
                )

    def usage(
        self, start: datetime, end: datetime, *, kind: str | None = None
    ) -> list[ComputeUsage]:
        """Rows with start <= hour < end, oldest first."""
        query = (
            select(compute_usage)
            .where(compute_usage.c.hour >= start, compute_usage.c.hour < end)
            .order_by(
                compute_usage.c.hour,
                compute_usage.c.kind,
                compute_usage.c.model,
                compute_usage.c.version,
            )
        )
        if kind is not None:
            query = query.where(compute_usage.c.kind == kind)
        with read_transaction(self._engine) as conn:
            return [
                ComputeUsage(
                    r.kind, r.model, int(r.version), codec.utc(r.hour), float(r.seconds), r.events
                )
                for r in conn.execute(query)
            ]

    def seconds_per_model(self, start: datetime, end: datetime, kind: str) -> dict[str, float]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(compute_usage.c.model, func.sum(compute_usage.c.seconds))
                .where(
                    compute_usage.c.kind == kind,
                    compute_usage.c.hour >= start,
                    compute_usage.c.hour < end,
                )
                .group_by(compute_usage.c.model)
            ).all()
        return {str(model): float(total) for model, total in rows}
