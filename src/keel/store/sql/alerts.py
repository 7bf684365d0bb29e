"""Alert rules over SQLAlchemy Core (every change audited in its transaction), and the recent
windows of a rule's series read from the monitors' metric points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from keel.domain.alerts import AlertRule, Comparison, rule_to_dict
from keel.domain.incidents import Severity
from keel.domain.monitoring import Check, MetricPoint, Status
from keel.errors import Conflict, NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import models
from keel.store.sql.tables_incidents import alert_rules
from keel.store.sql.tables_monitoring import metric_points


def _now() -> datetime:
    return datetime.now(UTC)


_SELECT = select(alert_rules, models.c.name.label("model_name")).join(
    models, models.c.id == alert_rules.c.model_id
)


def _rule(row: Any) -> AlertRule:
    return AlertRule(
        id=row.id,
        model=row.model_name,
        name=row.name,
        version=row.version,
        check=Check(row.check),
        column=row.column_name,
        metric=row.metric,
        comparison=Comparison(row.comparison),
        threshold=row.threshold,
        windows=row.windows,
        severity=Severity(row.severity),
        labels=dict(row.labels),
        auto_resolve=row.auto_resolve,
        monitor_id=row.monitor_id,
        created_by=row.created_by,
        created_at=codec.utc(row.created_at),
        updated_at=codec.utc(row.updated_at),
    )


def _columns(rule: AlertRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "version": rule.version,
        "check": str(rule.check),
        "column_name": rule.column,
        "metric": rule.metric,
        "comparison": str(rule.comparison),
        "threshold": rule.threshold,
        "windows": rule.windows,
        "severity": str(rule.severity),
        "labels": dict(rule.labels),
        "auto_resolve": rule.auto_resolve,
    }


class SqlAlertStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _model_id(self, conn: Connection, model: str) -> int:
        found = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
        if found is None:
            raise NotFound(f"No model named {model!r}.", {"model": model})
        return int(found)

    def _get(self, conn: Connection, rule_id: int) -> AlertRule:
        row = conn.execute(_SELECT.where(alert_rules.c.id == rule_id)).first()
        if row is None:
            raise NotFound(
                f"No alert rule with id {rule_id}. List a model's rules with "
                "`keel alerts list MODEL`.",
                {"rule": rule_id},
            )
        return _rule(row)

    def get_rule(self, rule_id: int) -> AlertRule:
        with read_transaction(self._engine) as conn:
            return self._get(conn, rule_id)

    def list_rules(self, model: str) -> list[AlertRule]:
        with read_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            rows = conn.execute(
                _SELECT.where(alert_rules.c.model_id == model_id).order_by(alert_rules.c.id)
            ).all()
        return [_rule(r) for r in rows]

    def save_rules(self, rules: Sequence[AlertRule], actor: str) -> list[AlertRule]:
        """Create each rule, or update the model's rule with the same name; one transaction,
        one audit event per rule that changed."""
        saved: list[int] = []
        try:
            with write_transaction(self._engine) as conn:
                for rule in rules:
                    saved.append(self._save(conn, rule, actor))
                return [self._get(conn, i) for i in saved]
        except IntegrityError:
            raise Conflict(
                "Another change to these alert rules landed at the same time; try again.",
                {"field": "name"},
            ) from None

    def _save(self, conn: Connection, rule: AlertRule, actor: str) -> int:
        now = _now()
        model_id = self._model_id(conn, rule.model)
        existing = conn.execute(
            _SELECT.where(alert_rules.c.model_id == model_id, alert_rules.c.name == rule.name)
        ).first()
        definition = rule_to_dict(rule)
        if existing is None:
            new_id = int(
                conn.execute(
                    alert_rules.insert()
                    .values(
                        model_id=model_id,
                        monitor_id=rule.monitor_id,
                        created_by=actor,
                        created_at=now,
                        updated_at=now,
                        **_columns(rule),
                    )
                    .returning(alert_rules.c.id)
                ).scalar_one()
            )
            audit.append(
                conn,
                actor=actor,
                action="alert_rule.create",
                subject_type="alert_rule",
                subject_id=str(new_id),
                details={"model": rule.model, **definition},
            )
            return new_id
        before = rule_to_dict(_rule(existing))
        changed = {k: v for k, v in definition.items() if before[k] != v}
        if changed:
            # A default rule someone edits becomes theirs: it stays when its monitor goes.
            owner = existing.monitor_id if rule.monitor_id == existing.monitor_id else None
            conn.execute(
                update(alert_rules)
                .where(alert_rules.c.id == existing.id)
                .values(updated_at=now, monitor_id=owner, **_columns(rule))
            )
            audit.append(
                conn,
                actor=actor,
                action="alert_rule.update",
                subject_type="alert_rule",
                subject_id=str(existing.id),
                details={"model": rule.model, "name": rule.name, "changed": changed},
            )
        return int(existing.id)

    def create_rule(self, rule: AlertRule, actor: str) -> AlertRule:
        """Create a rule; a name the model already uses is a conflict."""
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, rule.model)
            taken = conn.execute(
                select(alert_rules.c.id).where(
                    alert_rules.c.model_id == model_id, alert_rules.c.name == rule.name
                )
            ).first()
            if taken:
                raise Conflict(
                    f"Model {rule.model!r} already has an alert rule named {rule.name!r}. Pick "
                    "another name, or change it with `keel alerts apply FILE`.",
                    {"field": "name", "name": rule.name},
                )
            return self._get(conn, self._save(conn, rule, actor))

    def delete_rule(self, rule_id: int, actor: str) -> AlertRule:
        with write_transaction(self._engine) as conn:
            current = self._get(conn, rule_id)
            conn.execute(delete(alert_rules).where(alert_rules.c.id == rule_id))
            audit.append(
                conn,
                actor=actor,
                action="alert_rule.delete",
                subject_type="alert_rule",
                subject_id=str(rule_id),
                details={"model": current.model, **rule_to_dict(current)},
            )
            return current

    def release_rules(self, heirs: Mapping[int, int | None], actor: str) -> list[AlertRule]:
        """A deleted monitor's default rules, in one transaction: a rule whose heir is a monitor
        id passes to that monitor, a rule without one is deleted. Returns the deleted rules."""
        deleted: list[AlertRule] = []
        with write_transaction(self._engine) as conn:
            for rule_id, heir in heirs.items():
                current = self._get(conn, rule_id)
                if heir is None:
                    conn.execute(delete(alert_rules).where(alert_rules.c.id == rule_id))
                    action, details = "alert_rule.delete", rule_to_dict(current)
                    deleted.append(current)
                else:
                    conn.execute(
                        update(alert_rules)
                        .where(alert_rules.c.id == rule_id)
                        .values(monitor_id=heir, updated_at=_now())
                    )
                    action = "alert_rule.update"
                    details = {"name": current.name, "changed": {"monitor_id": heir}}
                audit.append(
                    conn,
                    actor=actor,
                    action=action,
                    subject_type="alert_rule",
                    subject_id=str(rule_id),
                    details={"model": current.model, "monitor_deleted": True, **details},
                )
        return deleted

    def recent_windows(self, rule: AlertRule, version: int, count: int) -> list[list[MetricPoint]]:
        """The rule's matching points of ``version`` in the newest ``count`` evaluated windows,
        oldest window first."""
        with read_transaction(self._engine) as conn:
            model_id = self._model_id(conn, rule.model)
            where = [
                metric_points.c.model_id == model_id,
                metric_points.c.check == str(rule.check),
                metric_points.c.version == version,
            ]
            if rule.column is not None:
                where.append(metric_points.c.column_name == rule.column)
            if rule.metric is not None:
                where.append(metric_points.c.metric == rule.metric)
            ends = [
                codec.utc(e)
                for e in conn.execute(
                    select(metric_points.c.window_end)
                    .where(*where)
                    .distinct()
                    .order_by(metric_points.c.window_end.desc())
                    .limit(count)
                ).scalars()
            ]
            if not ends:
                return []
            rows = conn.execute(
                select(metric_points).where(*where, metric_points.c.window_end.in_(ends))
            ).all()
        by_end: dict[datetime, list[MetricPoint]] = {e: [] for e in ends}
        for row in rows:
            point = MetricPoint(
                model=rule.model,
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
            by_end.setdefault(point.window_end, []).append(point)
        return [by_end[e] for e in sorted(by_end)]
