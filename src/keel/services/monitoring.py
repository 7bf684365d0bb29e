"""Monitors: define them, run them (now, or on schedule from the worker), read their results.

Late labels: a window's live performance and fairness are judged when the window settles, from
the labels that have arrived by then. When a labels batch arrives for predictions of windows
already judged, the monitors with those checks remember the span touched, and the worker
re-judges those windows' performance and fairness (`rejudge_late_labels`), replacing their
points (never adding a window) and telling the alert rules. Only windows that ended within the
label horizon (``KEEL_LABEL_HORIZON_DAYS``, default 7 days) are re-judged; older labels are
stored and count for a manual run of their window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from keel.domain.monitoring import (
    Check,
    MetricPoint,
    Monitor,
    MonitorChanges,
    MonitoringStatus,
    Status,
    check_drift_columns,
    due_windows,
    next_due,
    worst,
)
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.signature import ColumnRole, ColumnType
from keel.errors import InvalidInput, NotFound
from keel.services.monitoring_checks import (
    CheckContext,
    ExplanationSource,
    TelemetryReader,
    run_check,
)
from keel.services.registry import Registry
from keel.store.sql.monitoring import ANY_LAST_END, SqlMonitoringStore

log = logging.getLogger("keel.monitoring")
# Hooks: after a monitor is created, and after a run stored a window's points (alert rules).
MonitorHook = Callable[[Principal, Monitor], None]
PointsHook = Callable[[Principal, Sequence[MetricPoint]], None]
# After a monitor is deleted: the deleted monitor and the model's remaining monitors.
DeletedHook = Callable[[Principal, Monitor, Sequence[Monitor]], None]
LIVE_ALIAS = "production"
DEFAULT_LABEL_HORIZON = timedelta(days=7)
# The checks that read labels, so the ones a late labels batch can change.
LABEL_CHECKS = frozenset(
    {Check.PERFORMANCE, Check.FAIRNESS, Check.EXPLANATION_DRIFT, Check.ESTIMATED_PERFORMANCE}
)
MAX_SERIES_POINTS = 10_000
NUMERIC_TYPES = frozenset({ColumnType.INTEGER, ColumnType.FLOAT})
PROFILED_ROLES = frozenset({ColumnRole.FEATURE, ColumnRole.PROTECTED_ATTRIBUTE})


def _utc(moment: datetime | None, field: str = "at") -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        raise InvalidInput(
            f"The '{field}' time must carry a time zone (e.g. 2026-03-01T12:00:00Z).",
            {"field": field},
        )
    return moment.astimezone(UTC)


class Monitoring:
    """Monitor definitions over a store, and their runs over telemetry."""

    def __init__(
        self,
        store: SqlMonitoringStore,
        registry: Registry,
        telemetry: TelemetryReader,
        *,
        label_horizon: timedelta = DEFAULT_LABEL_HORIZON,
        explanations: ExplanationSource | None = None,
    ) -> None:
        self.store = store
        self.explanations = explanations
        self.registry = registry
        self.telemetry = telemetry
        self.label_horizon = label_horizon
        self._created_hooks: list[MonitorHook] = []
        self._points_hooks: list[PointsHook] = []
        self._deleted_hooks: list[DeletedHook] = []
        self._checks: dict[Check, Callable[[CheckContext], list[MetricPoint]]] = {}

    def add_check(self, check: Check, runner: Callable[[CheckContext], list[MetricPoint]]) -> None:
        """Run ``check`` with ``runner`` (a check that needs more than telemetry, e.g.
        estimated_performance, which reads the estimation service's fitted estimators)."""
        self._checks[check] = runner

    def on_created(self, hook: MonitorHook) -> None:
        """Call ``hook(by, monitor)`` after a monitor is created (default alert rules)."""
        self._created_hooks.append(hook)

    def on_deleted(self, hook: DeletedHook) -> None:
        """Call ``hook(by, monitor, remaining)`` after a monitor is deleted (its default rules)."""
        self._deleted_hooks.append(hook)

    def on_points(self, hook: PointsHook) -> None:
        """Call ``hook(by, points)`` after each window's points are stored (alert rules)."""
        self._points_hooks.append(hook)

    def _stored(self, by: Principal, points: Sequence[MetricPoint]) -> None:
        for hook in self._points_hooks:
            hook(by, points)

    # -- definitions ---------------------------------------------------------------------------

    def _writable(self, by: Principal, model: str) -> None:
        found = self.registry.get_model(model)
        authorize(by, Permission.WRITE, found.team)

    def _check_versions(self, monitor: Monitor) -> None:
        for field, number in (
            ("version", monitor.version),
            ("reference_version", monitor.reference_version),
        ):
            if number is None:
                continue
            try:
                self.registry.get_version(monitor.model, number)
            except NotFound:
                raise InvalidInput(
                    f"The '{field}' field names version {number} of {monitor.model!r}, which "
                    "does not exist. Register it first, or leave the field out.",
                    {"field": field},
                ) from None

    def _check_thresholds(self, monitor: Monitor) -> None:
        version = self.monitored_version(monitor)
        if version is None or not monitor.thresholds.drift:
            return
        signature = self.registry.get_version(monitor.model, version).signature
        kinds = {
            c.name: "numeric" if c.dtype in NUMERIC_TYPES else "categorical"
            for c in signature.columns
            if c.role in PROFILED_ROLES and c.dtype != ColumnType.DATETIME
        }
        check_drift_columns(monitor.thresholds, kinds)

    def create(self, by: Principal, monitor: Monitor, *, now: datetime | None = None) -> Monitor:
        """Define a monitor on ``monitor.model`` (write access in its team); audited."""
        check_name(monitor.model, "model")
        check_name(monitor.name, "name")
        self._writable(by, monitor.model)
        self._check_versions(monitor)
        self._check_thresholds(monitor)
        scheduled = replace(monitor, last_window_end=None).scheduled(_utc(now))
        created = self.store.create_monitor(scheduled, by.name)
        for hook in self._created_hooks:
            hook(by, created)
        return created

    def list_monitors(self, model: str) -> list[Monitor]:
        return self.store.list_monitors(check_name(model, "model"))

    def get(self, monitor_id: int) -> Monitor:
        return self.store.get_monitor(monitor_id)

    def update(
        self,
        by: Principal,
        monitor_id: int,
        changes: MonitorChanges,
        *,
        now: datetime | None = None,
    ) -> Monitor:
        """Change a monitor's checks, window, versions, thresholds or schedule; audited."""
        current = self.store.get_monitor(monitor_id)
        self._writable(by, current.model)
        changed = changes.apply(current)
        self._check_versions(changed)
        self._check_thresholds(changed)
        return self.store.update_monitor(changed.scheduled(_utc(now)), by.name)

    def delete(self, by: Principal, monitor_id: int) -> Monitor:
        """Remove a monitor and the default alert rules it created; the points it recorded stay
        in the model's series. Audited."""
        current = self.store.get_monitor(monitor_id)
        self._writable(by, current.model)
        deleted = self.store.delete_monitor(monitor_id, by.name)
        remaining = self.store.list_monitors(current.model)
        for hook in self._deleted_hooks:
            hook(by, deleted, remaining)
        return deleted

    # -- runs ----------------------------------------------------------------------------------

    def monitored_version(self, monitor: Monitor) -> int | None:
        """The version a monitor watches: its own, else the model's production alias, else the
        newest version; None while the model has no versions."""
        if monitor.version is not None:
            return monitor.version
        for assignment in self.registry.current_aliases(monitor.model):
            if assignment.alias == LIVE_ALIAS:
                return assignment.version
        latest = self.registry.get_model(monitor.model).latest_version
        return latest or None

    def evaluate(self, monitor: Monitor, window: tuple[datetime, datetime]) -> list[MetricPoint]:
        """Run every check of ``monitor`` over ``window``; nothing is stored."""
        version = self.monitored_version(monitor)
        if version is None:
            return []
        signature = self.registry.get_version(monitor.model, version).signature
        start, end = window
        ctx = CheckContext(
            model=monitor.model,
            version=version,
            reference_version=monitor.reference_version or version,
            signature=signature,
            start=start,
            end=end,
            window=monitor.window,
            thresholds=monitor.thresholds,
            telemetry=self.telemetry,
            monitor_id=monitor.id,
            explanations=self.explanations,
        )
        points: list[MetricPoint] = []
        for check in monitor.checks:
            try:
                runner = self._checks.get(check)
                points.extend(runner(ctx) if runner is not None else run_check(check, ctx))
            except InvalidInput as exc:
                # Data a check cannot use (e.g. a score on a multi-class model) must not stop
                # the other checks, nor block the schedule on this window forever.
                log.warning("monitor %s check %s: %s", monitor.id, check, exc.message)
                points.append(ctx.point(check, None, "check_failed", None, None, Status.NO_DATA))
        return points

    def run(
        self,
        by: Principal,
        model: str,
        *,
        now: datetime | None = None,
        monitor_id: int | None = None,
    ) -> list[MetricPoint]:
        """Run every monitor of ``model`` (or only ``monitor_id``) over its newest complete
        window at ``now`` (default: the current time), store the points and return them.

        A window already evaluated is evaluated again and its points replaced: a manual run
        after late labels arrived updates the record instead of duplicating it.
        """
        at = _utc(now)
        monitors = self.runnable(by, model, monitor_id)
        points: list[MetricPoint] = []
        for monitor in monitors:
            window = monitor.window.last_complete(at)
            found = self.evaluate(monitor, window)
            newest = max(filter(None, (monitor.last_window_end, window[1])))
            self.store.record_run(
                monitor,
                window,
                found,
                actor=by.name,
                expect_last_end=ANY_LAST_END,
                last_window_end=newest,
                next_due_at=next_due(monitor.window, monitor.schedule, newest, at),
            )
            self._stored(by, found)
            points.extend(found)
        return points

    def runnable(self, by: Principal, model: str, monitor_id: int | None = None) -> list[Monitor]:
        """The monitors `run` would run for ``by`` (what it checks first: a refused run is
        refused before it is queued as a job)."""
        check_name(model, "model")
        self._writable(by, model)
        monitors = self.store.list_monitors(model)
        if monitor_id is not None:
            monitors = [m for m in monitors if m.id == monitor_id]
            if not monitors:
                raise NotFound(
                    f"Model {model!r} has no monitor with id {monitor_id}.",
                    {"monitor": monitor_id},
                )
        return monitors

    def run_due(self, by: Principal, *, now: datetime | None = None) -> list[MetricPoint]:
        """Run every scheduled monitor over the windows that have settled since its last run
        (the worker calls this). Of several workers racing for one window, one records it."""
        authorize(by, Permission.ADMIN)
        at = _utc(now)
        points: list[MetricPoint] = []
        for monitor in self.store.due_monitors(at):
            last = monitor.last_window_end
            windows = due_windows(monitor.window, monitor.schedule, last, at)
            if not windows:
                # Due by the clock, but a manual run already covered what has settled.
                self.store.reschedule(monitor, next_due(monitor.window, monitor.schedule, last, at))
                continue
            for window in windows:
                found = self.evaluate(monitor, window)
                claimed = self.store.record_run(
                    monitor,
                    window,
                    found,
                    actor=by.name,
                    expect_last_end=last,
                    last_window_end=window[1],
                    next_due_at=next_due(monitor.window, monitor.schedule, window[1], at),
                )
                if not claimed:
                    break  # another worker moved this monitor on
                last = window[1]
                self._stored(by, found)
                points.extend(found)
        return points

    # -- late labels ---------------------------------------------------------------------------

    def labels_arrived(
        self, model: str, label_files: Sequence[str], *, now: datetime | None = None
    ) -> None:
        """Telemetry's hook after a labels batch is stored: mark the monitors whose judged
        windows (within the label horizon) hold predictions the batch labels."""
        watching = [
            m
            for m in self.store.list_monitors(model)
            if m.id is not None and m.last_window_end is not None and LABEL_CHECKS & set(m.checks)
        ]
        if not watching:
            return
        widest = max(m.window.size for m in watching)
        span = self.telemetry.labelled_span(
            model, label_files, _utc(now) - self.label_horizon - widest
        )
        if span is None:
            return
        first, last = span
        touched = [
            m.id
            for m in watching
            if m.id is not None and m.last_window_end is not None and first < m.last_window_end
        ]
        self.store.mark_relabel(touched, first, last)

    def rejudge_late_labels(
        self, by: Principal, *, now: datetime | None = None
    ) -> list[MetricPoint]:
        """Judge again the performance and fairness of every judged window that late labels
        touched and that ended within the label horizon at ``now``; their points replace the
        old ones and go to the alert rules (the worker calls this)."""
        authorize(by, Permission.ADMIN)
        at = _utc(now)
        points: list[MetricPoint] = []
        for monitor, first, last in self.store.relabelled():
            assert monitor.id is not None
            checks = tuple(c for c in monitor.checks if c in LABEL_CHECKS)
            since = at - self.label_horizon
            for start, end, version in self.store.judged_windows(monitor.id, first, last, since):
                judged = replace(monitor, version=version, checks=checks)
                found = self.evaluate(judged, (start, end))
                self.store.replace_points(monitor, (start, end), checks, found, actor=by.name)
                self._stored(by, found)
                points.extend(found)
            # Cleared only if no labels widened the span meanwhile: a crash before this line
            # re-judges again (same result), never skips.
            self.store.clear_relabel(monitor.id, first, last)
        return points

    # -- results -------------------------------------------------------------------------------

    def series(
        self,
        model: str,
        check: Check | None = None,
        column: str | None = None,
        since: datetime | None = None,
        *,
        metric: str | None = None,
    ) -> list[MetricPoint]:
        """A model's metric points, oldest window first (at most `MAX_SERIES_POINTS`)."""
        return self.store.series(
            check_name(model, "model"),
            check=check,
            column=column,
            metric=metric,
            since=_utc(since, "since") if since is not None else None,
            limit=MAX_SERIES_POINTS,
        )

    def latest(self, model: str) -> MonitoringStatus:
        """The newest verdict of every check, column and metric, and the worst of them."""
        points = self.store.latest(check_name(model, "model"))
        return MonitoringStatus(
            model=model, status=worst([p.status for p in points]), points=tuple(points)
        )
