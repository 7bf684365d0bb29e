"""Monitors and metric points over SQLAlchemy Core; every change of a monitor, and every run,
appends its audit event in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from keel.domain.monitoring import (
    Check,
    MetricPoint,
    Monitor,
    Schedule,
    Status,
    Thresholds,
    Window,
)
from keel.errors import Conflict, NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import models
from keel.store.sql.tables_monitoring import metric_points, monitors

# Run claims compare the stored last_window_end with this to mean "whatever it is now".
ANY_LAST_END = object()


def _now() -> datetime:
    return datetime.now(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return codec.utc(value) if value is not None else None


def _monitor(row: Any) -> Monitor:
    return Monitor(
        id=row.id,
        model=row.model_name,
        name=row.name,
        version=row.version,
        checks=tuple(Check(c) for c in row.checks),
        window=Window(row.window_minutes),
        reference_version=row.reference_version,
        thresholds=Thresholds.from_dict(row.thresholds),
        schedule=Schedule(enabled=row.schedule_enabled, delay_minutes=row.delay_minutes),
        last_window_end=_opt_utc(row.last_window_end),
        next_due_at=_opt_utc(row.next_due_at),
        created_by=row.created_by,
        created_at=codec.utc(row.created_at),
        updated_at=codec.utc(row.updated_at),
    )


def _point(row: Any, model: str) -> MetricPoint:
    return MetricPoint(
        model=model,
        version=row.version,
        window_start=codec.utc(row.window_start),
        window_end=codec.utc(row.window_end),
        check=Check(row.check),
        column=row.column_name,
        metric=row.metric,
        value=row.value,
        threshold=row.threshold,
        status=Status(row.status),
        monitor_id=row.monitor_id,
        recorded_at=codec.utc(row.recorded_at),
    )


def _definition(monitor: Monitor) -> dict[str, Any]:
    """The columns a monitor's definition is stored in (also its audit details)."""
    return {
        "name": monitor.name,
        "version": monitor.version,
        "checks": [str(c) for c in monitor.checks],
        "window_minutes": monitor.window.minutes,
        "reference_version": monitor.reference_version,
        "thresholds": monitor.thresholds.to_dict(),
        "schedule_enabled": monitor.schedule.enabled,
        "delay_minutes": monitor.schedule.delay_minutes,
    }


_SELECT = select(monitors, models.c.name.label("model_name")).join(
    models, models.c.id == monitors.c.model_id
)


def _insert_points(
    conn: Connection, monitor_id: int, model_id: int, points: Sequence[MetricPoint]
) -> None:
    if not points:
        return
    recorded = _now()
    conn.execute(
        metric_points.insert(),
        [
            {
                "monitor_id": monitor_id,
                "model_id": model_id,
                "version": p.version,
                "window_start": p.window_start,
                "window_end": p.window_end,
                "check": str(p.check),
                "column_name": p.column,
                "metric": p.metric,
                "value": p.value,
                "threshold": p.threshold,
                "status": str(p.status),
                "recorded_at": recorded,
            }
            for p in points
        ],
    )


class SqlMonitoringStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _model_id(self, conn: Connection, model: str) -> int:
        found = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
        if found is None:
            raise NotFound(f"No model named {model!r}.", {"model": model})
        return int(found)

    def _get(self, conn: Connection, monitor_id: int) -> Monitor:
        row = conn.execute(_SELECT.where(monitors.c.id == monitor_id)).first()
        if row is None:
            raise NotFound(
                f"No monitor with id {monitor_id}. List a model's monitors with "
                "`keel monitor list MODEL`.",
                {"monitor": monitor_id},
            )
        return _monitor(row)

    # -- definitions ---------------------------------------------------------------------------

    def create_monitor(self, monitor: Monitor, actor: str) -> Monitor:
        now = _now()
        conflict = Conflict(
            f"Model {monitor.model!r} already has a monitor named {monitor.name!r}. "
            "Pick another name, or change that one (keel monitor update).",
            {"field": "name", "name": monitor.name},
        )
        try:
            with write_transaction(self._engine) as conn:
                model_id = self._model_id(conn, monitor.model)
                taken = conn.execute(
                    select(monitors.c.id).where(
                        monitors.c.model_id == model_id, monitors.c.name == monitor.name
                    )
                ).first()
                if taken:
                    raise conflict
                definition = _definition(monitor)
                new_id = conn.execute(
                    monitors.insert()
                    .values(
                        model_id=model_id,
                        next_due_at=monitor.next_due_at,
                        last_window_end=None,
                        created_by=actor,
                        created_at=now,
                        updated_at=now,
                        **definition,
                    )
                    .returning(monitors.c.id)
                ).scalar_one()
                audit.append(
                    conn,
                    actor=actor,
                    action="monitor.create",
                    subject_type="monitor",
                    subject_id=str(new_id),
                    details={"model": monitor.model, **definition},
                )
                return self._get(conn, int(new_id))
        except IntegrityError:
            raise conflict from None

    def get_monitor(self, monitor_id: int) -> Monitor:
        with read_transaction(self._engine) as conn:
            return self._get(conn, monitor_id)

    def list_monitors(self, model: str) -> list[Monitor]:
        with read_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            rows = conn.execute(
                _SELECT.where(monitors.c.model_id == model_id).order_by(monitors.c.id)
            ).all()
        return [_monitor(r) for r in rows]

    def update_monitor(self, monitor: Monitor, actor: str) -> Monitor:
        """Store ``monitor``'s definition and schedule state (it must exist)."""
        assert monitor.id is not None
        with write_transaction(self._engine) as conn:
            before = self._get(conn, monitor.id)
            definition = _definition(monitor)
            conn.execute(
                update(monitors)
                .where(monitors.c.id == monitor.id)
                .values(
                    last_window_end=monitor.last_window_end,
                    next_due_at=monitor.next_due_at,
                    updated_at=_now(),
                    **definition,
                )
            )
            old = _definition(before)
            audit.append(
                conn,
                actor=actor,
                action="monitor.update",
                subject_type="monitor",
                subject_id=str(monitor.id),
                details={
                    "model": monitor.model,
                    "changed": {k: v for k, v in definition.items() if old[k] != v},
                },
            )
            return self._get(conn, monitor.id)

    def delete_monitor(self, monitor_id: int, actor: str) -> Monitor:
        with write_transaction(self._engine) as conn:
            gone = self._get(conn, monitor_id)
            conn.execute(delete(monitors).where(monitors.c.id == monitor_id))
            audit.append(
                conn,
                actor=actor,
                action="monitor.delete",
                subject_type="monitor",
                subject_id=str(monitor_id),
                details={"model": gone.model, "name": gone.name},
            )
            return gone

    def due_monitors(self, now: datetime) -> list[Monitor]:
        """Scheduled monitors whose next run is due at ``now``, soonest first."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                _SELECT.where(
                    monitors.c.schedule_enabled.is_(True),
                    monitors.c.next_due_at.is_not(None),
                    monitors.c.next_due_at <= now,
                ).order_by(monitors.c.next_due_at, monitors.c.id)
            ).all()
        return [_monitor(r) for r in rows]

    def reschedule(self, monitor: Monitor, next_due_at: datetime | None) -> None:
        """Move when the worker next looks at ``monitor`` (bookkeeping, not audited)."""
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(monitors).where(monitors.c.id == monitor.id).values(next_due_at=next_due_at)
            )

    # -- runs and their points -----------------------------------------------------------------

    def record_run(
        self,
        monitor: Monitor,
        window: tuple[datetime, datetime],
        points: Sequence[MetricPoint],
        *,
        actor: str,
        expect_last_end: datetime | object | None,
        last_window_end: datetime | None,
        next_due_at: datetime | None,
    ) -> bool:
        """Store one window's points (replacing an earlier run's over the same window) and move
        the monitor's schedule, in one transaction with its audit event.

        With ``expect_last_end`` other than `ANY_LAST_END`, the write happens only if the
        monitor's stored ``last_window_end`` still equals it: of two workers that evaluated the
        same window, one records it and the other gets False.
        """
        assert monitor.id is not None
        start, end = window
        with write_transaction(self._engine) as conn:
            claim = update(monitors).where(monitors.c.id == monitor.id)
            if expect_last_end is not ANY_LAST_END:
                claim = claim.where(
                    monitors.c.last_window_end.is_(None)
                    if expect_last_end is None
                    else monitors.c.last_window_end == expect_last_end
                )
            moved = conn.execute(
                claim.values(last_window_end=last_window_end, next_due_at=next_due_at)
            ).rowcount
            if moved != 1:
                return False
            model_id = self._model_id(conn, monitor.model)
            conn.execute(
                delete(metric_points).where(
                    metric_points.c.monitor_id == monitor.id,
                    metric_points.c.window_start == start,
                    metric_points.c.window_end == end,
                )
            )
            _insert_points(conn, monitor.id, model_id, points)
            counts = {str(s): sum(1 for p in points if p.status == s) for s in Status}
            audit.append(
                conn,
                actor=actor,
                action="monitor.run",
                subject_type="monitor",
                subject_id=str(monitor.id),
                details={
                    "model": monitor.model,
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                    "points": len(points),
                    **counts,
                },
            )
        return True

    # -- re-judging windows after late labels ---------------------------------------------------

    def mark_relabel(self, monitor_ids: Sequence[int], first: datetime, last: datetime) -> None:
        """Widen each monitor's span of predictions labelled after their window was judged to
        cover [first, last] (bookkeeping, not audited: the re-judge run is)."""
        if not monitor_ids:
            return
        start, end = monitors.c.relabel_from, monitors.c.relabel_to
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(monitors)
                .where(monitors.c.id.in_(list(monitor_ids)))
                .values(
                    relabel_from=case((or_(start.is_(None), start > first), first), else_=start),
                    relabel_to=case((or_(end.is_(None), end < last), last), else_=end),
                )
            )

    def relabelled(self) -> list[tuple[Monitor, datetime, datetime]]:
        """Monitors with late labels to re-judge, and the span of prediction times touched."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                _SELECT.where(monitors.c.relabel_from.is_not(None)).order_by(monitors.c.id)
            ).all()
        return [(_monitor(r), codec.utc(r.relabel_from), codec.utc(r.relabel_to)) for r in rows]

    def clear_relabel(self, monitor_id: int, first: datetime, last: datetime) -> bool:
        """Forget the span, unless more labels widened it meanwhile (then the next tick sees it)."""
        with write_transaction(self._engine) as conn:
            return bool(
                conn.execute(
                    update(monitors)
                    .where(
                        monitors.c.id == monitor_id,
                        monitors.c.relabel_from == first,
                        monitors.c.relabel_to == last,
                    )
                    .values(relabel_from=None, relabel_to=None)
                ).rowcount
            )

    def judged_windows(
        self, monitor_id: int, first: datetime, last: datetime, since: datetime
    ) -> list[tuple[datetime, datetime, int]]:
        """The monitor's judged windows (start, end, version judged) holding a moment of
        [first, last] and ending at or after ``since``, oldest first."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(
                    metric_points.c.window_start,
                    metric_points.c.window_end,
                    metric_points.c.version,
                )
                .where(
                    metric_points.c.monitor_id == monitor_id,
                    metric_points.c.window_end > first,
                    metric_points.c.window_start <= last,
                    metric_points.c.window_end >= since,
                )
                .distinct()
                .order_by(metric_points.c.window_end, metric_points.c.version)
            ).all()
        return [(codec.utc(r.window_start), codec.utc(r.window_end), r.version) for r in rows]

    def replace_points(
        self,
        monitor: Monitor,
        window: tuple[datetime, datetime],
        checks: Sequence[Check],
        points: Sequence[MetricPoint],
        *,
        actor: str,
    ) -> None:
        """Replace one judged window's points of ``checks`` (the others stay), with its audit
        event ``monitor.rejudge``; the monitor's schedule does not move."""
        assert monitor.id is not None
        start, end = window
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, monitor.model)
            conn.execute(
                delete(metric_points).where(
                    metric_points.c.monitor_id == monitor.id,
                    metric_points.c.window_start == start,
                    metric_points.c.window_end == end,
                    metric_points.c.check.in_([str(c) for c in checks]),
                )
            )
            _insert_points(conn, monitor.id, model_id, points)
            audit.append(
                conn,
                actor=actor,
                action="monitor.rejudge",
                subject_type="monitor",
                subject_id=str(monitor.id),
                details={
                    "model": monitor.model,
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                    "checks": [str(c) for c in checks],
                    "points": len(points),
                },
            )

    def series(
        self,
        model: str,
        *,
        check: Check | None = None,
        column: str | None = None,
        metric: str | None = None,
        since: datetime | None = None,
        limit: int = 10_000,
    ) -> list[MetricPoint]:
        """A model's points, oldest window first, filtered."""
        with read_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            conditions = [metric_points.c.model_id == model_id]
            if check is not None:
                conditions.append(metric_points.c.check == str(check))
            if column is not None:
                conditions.append(metric_points.c.column_name == column)
            if metric is not None:
                conditions.append(metric_points.c.metric == metric)
            if since is not None:
                conditions.append(metric_points.c.window_end > since)
            rows = conn.execute(
                select(metric_points)
                .where(and_(*conditions))
                .order_by(metric_points.c.window_end, metric_points.c.id)
                .limit(limit)
            ).all()
        return [_point(r, model) for r in rows]

    def latest(self, model: str) -> list[MetricPoint]:
        """The newest point of every (check, column, metric) the model has."""
        with read_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            rank = (
                func.row_number()
                .over(
                    partition_by=(
                        metric_points.c.check,
                        metric_points.c.column_name,
                        metric_points.c.metric,
                    ),
                    order_by=(metric_points.c.window_end.desc(), metric_points.c.id.desc()),
                )
                .label("rank")
            )
            ranked = (
                select(metric_points, rank).where(metric_points.c.model_id == model_id).subquery()
            )
            rows = conn.execute(
                select(ranked)
                .where(ranked.c.rank == 1)
                .order_by(ranked.c.check, ranked.c.column_name, ranked.c.metric)
            ).all()
        return [_point(r, model) for r in rows]
