"""Costs over SQLAlchemy Core: imported bills, split rules, prices, budgets and budget alerts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from keel.domain.costs import Budget, BudgetScope, CostImport
from keel.errors import NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import model_versions, models, teams
from keel.store.sql.tables_costs import (
    budget_alerts,
    budgets,
    cost_imports,
    cost_lines,
    cost_settings,
    cost_split_rules,
)
from keel.store.sql.tables_playbooks import retrain_runs
from keel.store.sql.tables_telemetry import window_profiles

_INSERT_BATCH = 5_000


@dataclass(frozen=True)
class DayLine:
    """A bill's cost on one day for one (model tag, team tag, pool)."""

    day: date
    model: str | None
    team: str | None
    pool: str
    effective_micros: int


@dataclass(frozen=True)
class ModelRecord:
    name: str
    team: str
    created_at: datetime


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: int
    status: str
    artifact_sha256: str
    artifact_size: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RunRecord:
    id: int
    model: str
    started_at: datetime
    finished_at: datetime
    status: str
    registered_version: int | None = None


def _import(row: Any, replayed: bool = False) -> CostImport:
    return CostImport(
        id=int(row.id),
        sha256=row.sha256,
        filename=row.filename,
        file_format=row.file_format,
        rows=int(row.rows),
        effective_micros=int(row.effective_micros),
        first_day=row.first_day,
        last_day=row.last_day,
        imported_by=row.imported_by,
        replayed=replayed,
    )


def _budget(row: Any) -> Budget:
    return Budget(
        id=int(row.id),
        scope=BudgetScope(row.scope),
        target=row.target,
        amount_micros=int(row.amount_micros),
        thresholds=tuple(int(t) for t in row.thresholds),
        created_by=row.created_by,
    )


class SqlCostStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlCostStore(backend={self._engine.dialect.name!r})"

    # -- imports -------------------------------------------------------------------------------

    def find_import(self, sha256: str) -> CostImport | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(cost_imports).where(cost_imports.c.sha256 == sha256)).first()
        return None if row is None else _import(row, replayed=True)

    def record_import(
        self,
        *,
        sha256: str,
        filename: str,
        file_format: str,
        rows: int,
        lines: Sequence[Mapping[str, Any]],
        actor: str,
    ) -> CostImport:
        """Store a checked bill's lines with its audit event, all or nothing. The same file
        (by SHA-256) again returns the first import, marked ``replayed``, and writes nothing."""
        days = [line["day"] for line in lines]
        total = sum(int(line["effective_micros"]) for line in lines)
        try:
            with write_transaction(self._engine) as conn:
                import_id = conn.execute(
                    cost_imports.insert()
                    .values(
                        sha256=sha256,
                        filename=filename,
                        file_format=file_format,
                        rows=rows,
                        effective_micros=total,
                        first_day=min(days) if days else None,
                        last_day=max(days) if days else None,
                        imported_by=actor,
                        imported_at=datetime.now(UTC),
                    )
                    .returning(cost_imports.c.id)
                ).scalar_one()
                for start in range(0, len(lines), _INSERT_BATCH):
                    batch = lines[start : start + _INSERT_BATCH]
                    conn.execute(
                        cost_lines.insert(), [{**b, "import_id": import_id} for b in batch]
                    )
                audit.append(
                    conn,
                    actor=actor,
                    action="costs.import",
                    subject_type="cost_import",
                    subject_id=str(import_id),
                    details={
                        "sha256": sha256,
                        "filename": filename,
                        "rows": rows,
                        "effective_micros": total,
                    },
                )
                row = conn.execute(select(cost_imports).where(cost_imports.c.id == import_id)).one()
                return _import(row)
        except IntegrityError:
            found = self.find_import(sha256)
            if found is None:
                raise
            return found

    def imports(self) -> list[CostImport]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(select(cost_imports).order_by(cost_imports.c.id)).all()
        return [_import(r) for r in rows]

    def day_lines(self, start: date, end: date) -> list[DayLine]:
        """Bills' cost per day, model tag, team tag and pool with start <= day < end."""
        total = func.sum(cost_lines.c.effective_micros)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(
                    cost_lines.c.day,
                    cost_lines.c.model,
                    cost_lines.c.team,
                    cost_lines.c.pool,
                    total.label("micros"),
                )
                .where(cost_lines.c.day >= start, cost_lines.c.day < end)
                .group_by(
                    cost_lines.c.day, cost_lines.c.model, cost_lines.c.team, cost_lines.c.pool
                )
                .order_by(cost_lines.c.day)
            ).all()
        return [DayLine(r.day, r.model, r.team, r.pool, int(r.micros)) for r in rows]

    # -- rules and settings --------------------------------------------------------------------

    def split_rules(self) -> dict[str, str]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(select(cost_split_rules)).all()
        return {r.pool: r.rule for r in rows}

    def set_split_rule(self, pool: str, rule: str | None, actor: str) -> None:
        """Set (or with ``rule`` None remove) a pool's split rule, audited."""
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            conn.execute(delete(cost_split_rules).where(cost_split_rules.c.pool == pool))
            if rule is not None:
                conn.execute(
                    cost_split_rules.insert().values(
                        pool=pool, rule=rule, updated_by=actor, updated_at=now
                    )
                )
            audit.append(
                conn,
                actor=actor,
                action="costs.split_rule",
                subject_type="cost_pool",
                subject_id=pool,
                details={"rule": rule},
            )

    def settings(self) -> dict[str, str]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(select(cost_settings)).all()
        return {r.name: r.value for r in rows}

    def set_settings(self, values: Mapping[str, str], actor: str) -> None:
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            for name, value in values.items():
                conn.execute(delete(cost_settings).where(cost_settings.c.name == name))
                conn.execute(
                    cost_settings.insert().values(
                        name=name, value=value, updated_by=actor, updated_at=now
                    )
                )
            audit.append(
                conn,
                actor=actor,
                action="costs.settings",
                subject_type="cost_settings",
                subject_id="keel",
                details=dict(values),
            )

    # -- budgets -------------------------------------------------------------------------------

    def budgets(self) -> list[Budget]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(select(budgets).order_by(budgets.c.id)).all()
        return [_budget(r) for r in rows]

    def put_budget(
        self,
        scope: BudgetScope,
        target: str,
        amount_micros: int,
        thresholds: Iterable[int],
        actor: str,
    ) -> Budget:
        """Create or replace the budget of (scope, target), audited."""
        now = datetime.now(UTC)
        values = {"amount_micros": amount_micros, "thresholds": list(thresholds)}
        with write_transaction(self._engine) as conn:
            where = (budgets.c.scope == str(scope), budgets.c.target == target)
            found = conn.execute(select(budgets.c.id).where(*where)).scalar()
            if found is None:
                conn.execute(
                    budgets.insert().values(
                        scope=str(scope),
                        target=target,
                        created_by=actor,
                        created_at=now,
                        updated_at=now,
                        **values,
                    )
                )
            else:
                conn.execute(update(budgets).where(*where).values(updated_at=now, **values))
            row = conn.execute(select(budgets).where(*where)).one()
            audit.append(
                conn,
                actor=actor,
                action="budget.set",
                subject_type="budget",
                subject_id=f"{scope}:{target}",
                details={**values, "id": int(row.id)},
            )
            return _budget(row)

    def delete_budget(self, budget_id: int, actor: str) -> Budget:
        with write_transaction(self._engine) as conn:
            row = conn.execute(select(budgets).where(budgets.c.id == budget_id)).first()
            if row is None:
                raise NotFound(f"No budget with id {budget_id}.", {"budget_id": budget_id})
            conn.execute(delete(budget_alerts).where(budget_alerts.c.budget_id == budget_id))
            conn.execute(delete(budgets).where(budgets.c.id == budget_id))
            audit.append(
                conn,
                actor=actor,
                action="budget.delete",
                subject_type="budget",
                subject_id=f"{row.scope}:{row.target}",
                details={"id": budget_id},
            )
            return _budget(row)

    def claim_alert(
        self, budget_id: int, month: str, signal: str, details: Mapping[str, Any]
    ) -> bool:
        """Note that (budget, month, signal) alerted; False when it already had."""
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(
                    budget_alerts.insert().values(
                        budget_id=budget_id,
                        month=month,
                        signal=signal,
                        incident_id=None,
                        details=dict(details),
                        sent_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            return False
        return True

    def note_alert_incident(
        self, budget_id: int, month: str, signal: str, incident_id: int
    ) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(budget_alerts)
                .where(
                    budget_alerts.c.budget_id == budget_id,
                    budget_alerts.c.month == month,
                    budget_alerts.c.signal == signal,
                )
                .values(incident_id=incident_id)
            )

    def alerts_sent(self, month: str) -> dict[int, list[str]]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(budget_alerts.c.budget_id, budget_alerts.c.signal)
                .where(budget_alerts.c.month == month)
                .order_by(budget_alerts.c.id)
            ).all()
        sent: dict[int, list[str]] = {}
        for r in rows:
            sent.setdefault(int(r.budget_id), []).append(r.signal)
        return sent

    # -- what metering reads -------------------------------------------------------------------

    def models(self) -> list[ModelRecord]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(models.c.name, teams.c.name.label("team"), models.c.created_at)
                .join(teams, teams.c.id == models.c.team_id)
                .order_by(models.c.name)
            ).all()
        return [ModelRecord(r.name, r.team, codec.utc(r.created_at)) for r in rows]

    def teams(self) -> list[str]:
        with read_transaction(self._engine) as conn:
            return [str(n) for n in conn.execute(select(teams.c.name)).scalars()]

    def versions(self) -> list[VersionRecord]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(
                    models.c.name,
                    model_versions.c.version,
                    model_versions.c.status,
                    model_versions.c.artifact_sha256,
                    model_versions.c.artifact_size,
                    model_versions.c.created_at,
                    model_versions.c.updated_at,
                )
                .join(models, models.c.id == model_versions.c.model_id)
                .order_by(models.c.name, model_versions.c.version)
            ).all()
        return [
            VersionRecord(
                r.name,
                int(r.version),
                r.status,
                r.artifact_sha256,
                int(r.artifact_size),
                codec.utc(r.created_at),
                codec.utc(r.updated_at),
            )
            for r in rows
        ]

    def prediction_hours(
        self, start: datetime, end: datetime
    ) -> list[tuple[str, int, datetime, int]]:
        """(model, version, hour, predictions) from the telemetry windows in [start, end)."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(
                    models.c.name,
                    model_versions.c.version,
                    window_profiles.c.hour,
                    window_profiles.c.rows,
                )
                .join(model_versions, model_versions.c.id == window_profiles.c.version_id)
                .join(models, models.c.id == model_versions.c.model_id)
                .where(window_profiles.c.hour >= start, window_profiles.c.hour < end)
            ).all()
        return [(r.name, int(r.version), codec.utc(r.hour), int(r.rows)) for r in rows]

    def last_prediction_hours(self) -> dict[tuple[str, int], datetime]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(models.c.name, model_versions.c.version, func.max(window_profiles.c.hour))
                .join(model_versions, model_versions.c.id == window_profiles.c.version_id)
                .join(models, models.c.id == model_versions.c.model_id)
                .group_by(models.c.name, model_versions.c.version)
            ).all()
        return {(r[0], int(r[1])): codec.utc(r[2]) for r in rows if r[2] is not None}

    def retrain_runs(self, start: datetime, end: datetime) -> list[RunRecord]:
        """Finished retraining runs with start <= finished_at < end."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(
                    retrain_runs.c.id,
                    models.c.name,
                    retrain_runs.c.started_at,
                    retrain_runs.c.finished_at,
                    retrain_runs.c.status,
                    retrain_runs.c.registered_version,
                )
                .join(models, models.c.id == retrain_runs.c.model_id)
                .where(
                    retrain_runs.c.finished_at.is_not(None),
                    retrain_runs.c.finished_at >= start,
                    retrain_runs.c.finished_at < end,
                )
                .order_by(retrain_runs.c.id)
            ).all()
        return [
            RunRecord(
                int(r.id),
                r.name,
                codec.utc(r.started_at),
                codec.utc(r.finished_at),
                r.status,
                r.registered_version,
            )
            for r in rows
        ]
