"""The store reads behind ``/metrics``, each at a cost bounded by what is configured, not by
how much history has piled up:

- monitor verdicts: one indexed lookup per monitor (``ix_metric_points_monitor_window``) of
  its newest window's points (``monitors.last_window_end``), grouped in SQL;
- open incidents: a count grouped by model and severity over open incidents only
  (``ix_incidents_model_status``);
- SLO budgets: one row per SLO (``slo_budgets``), written when the SLO is evaluated;
- at most ``limit`` models and monitors, so a scrape's size has a ceiling too.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite

from keel.domain.incidents import OPEN_STATUSES
from keel.domain.model_metrics import CheckVerdict, DriftShare, ModelMetrics, SloBudget
from keel.domain.monitoring import Check, Status, worst
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import models, teams
from keel.store.sql.tables_incidents import incidents
from keel.store.sql.tables_monitoring import metric_points, monitors
from keel.store.sql.tables_notifications import slos
from keel.store.sql.tables_slo_budgets import slo_budgets

DEFAULT_LIMIT = 1_000


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class SqlModelMetricsStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record_slo_budget(
        self, slo_id: int, budget_remaining: float, requests: int, bad: int, at: datetime
    ) -> None:
        """Keep an SLO's budget as just evaluated (replacing an older evaluation's)."""
        values = {
            "slo_id": slo_id,
            "budget_remaining": budget_remaining,
            "window_requests": requests,
            "window_bad": bad,
            "evaluated_at": at,
        }
        changed = {k: v for k, v in values.items() if k != "slo_id"}
        with write_transaction(self._engine) as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(slo_budgets).values(**values)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["slo_id"],
                    set_=changed,
                    # An evaluation "as of" an earlier moment never replaces a newer one.
                    where=slo_budgets.c.evaluated_at <= statement.excluded.evaluated_at,
                )
            )

    def read(self, limit: int = DEFAULT_LIMIT) -> ModelMetrics:
        """One consistent read of everything a scrape reports."""
        with read_transaction(self._engine) as conn:
            named = (
                select(models.c.name, teams.c.name)
                .join(teams, teams.c.id == models.c.team_id)
                .order_by(models.c.name)
                .limit(limit)
            )
            found = ModelMetrics(models=[(m, t) for m, t in conn.execute(named).all()])

            newest = (
                select(monitors.c.id, monitors.c.last_window_end, models.c.name.label("model"))
                .join(models, models.c.id == monitors.c.model_id)
                .where(monitors.c.last_window_end.is_not(None))
                .order_by(monitors.c.id)
                .limit(limit)
                .subquery()
            )
            in_newest_window = and_(
                metric_points.c.monitor_id == newest.c.id,
                metric_points.c.window_end == newest.c.last_window_end,
            )
            # One row per distinct status of a check's newest window, not one per point.
            points = (
                select(
                    newest.c.model,
                    metric_points.c.version,
                    metric_points.c.check,
                    metric_points.c.window_end,
                    metric_points.c.status,
                )
                .join(newest, in_newest_window)
                .group_by(
                    newest.c.model,
                    metric_points.c.version,
                    metric_points.c.check,
                    metric_points.c.window_end,
                    metric_points.c.status,
                )
            )
            rows = conn.execute(points).all()
            drift_rows = conn.execute(
                select(
                    newest.c.model,
                    metric_points.c.version,
                    metric_points.c.window_end,
                    metric_points.c.value,
                )
                .join(newest, in_newest_window)
                .where(
                    metric_points.c.check == str(Check.DRIFT),
                    metric_points.c.metric == "drift_share",
                    metric_points.c.column_name.is_(None),
                    metric_points.c.value.is_not(None),
                )
            ).all()

            open_counts = conn.execute(
                select(models.c.name, incidents.c.severity, func.count())
                .join(models, models.c.id == incidents.c.model_id)
                .where(
                    incidents.c.status.in_([str(s) for s in OPEN_STATUSES]),
                    incidents.c.drill_id.is_(None),  # a drill's incident is not a real one
                )
                .group_by(models.c.name, incidents.c.severity)
            ).all()

            budgets = conn.execute(
                select(
                    models.c.name,
                    slos.c.name,
                    slos.c.kind,
                    slos.c.objective,
                    slo_budgets.c.budget_remaining,
                    slo_budgets.c.evaluated_at,
                )
                .join(slos, slos.c.id == slo_budgets.c.slo_id)
                .join(models, models.c.id == slos.c.model_id)
                .order_by(slos.c.id)
                .limit(limit)
            ).all()

        # Several monitors may judge the same (model, version, check): the newest window wins,
        # and within it the worst status.
        newest_window: dict[tuple[str, int, str], datetime] = {}
        statuses: dict[tuple[str, int, str], list[Status]] = {}
        for model, version, check, window_end, status in rows:
            key, end = (model, int(version), str(check)), _utc(window_end)
            if key not in newest_window or end > newest_window[key]:
                newest_window[key], statuses[key] = end, []
            if end == newest_window[key]:
                statuses[key].append(Status(status))
        found.verdicts.extend(
            CheckVerdict(m, v, c, worst(statuses[(m, v, c)]), end)
            for (m, v, c), end in sorted(newest_window.items())
        )
        newest_drift: dict[tuple[str, int], DriftShare] = {}
        for model, version, window_end, value in drift_rows:
            share = DriftShare(model, int(version), float(value), _utc(window_end))
            before = newest_drift.get((model, share.version))
            if before is None or share.window_end > before.window_end:
                newest_drift[(model, share.version)] = share
        found.drift.extend(newest_drift[k] for k in sorted(newest_drift))
        found.open_incidents.update({(m, str(s)): int(n) for m, s, n in open_counts})
        found.slo_budgets.extend(
            SloBudget(m, name, str(kind), float(obj), float(left), _utc(at))
            for m, name, kind, obj, left, at in budgets
        )
        return found
