"""Incident drills and their schedules over SQLAlchemy Core; every change is audited in the
same transaction."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update

from keel.domain.drills import Drill, DrillSchedule, DrillStatus, PlaybookStep, Scenario
from keel.errors import NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import models
from keel.store.sql.tables_drills import drill_schedules, drills

MAX_LIST = 500
_REPORT_KEYS = ("rules_fired", "points", "steps", "failures", "deliveries", "notes")


def _opt(value: datetime | None) -> datetime | None:
    return None if value is None else codec.utc(value)


def _drill(row: Any) -> Drill:
    report: Mapping[str, Any] = row.report or {}
    return Drill(
        id=row.id,
        model=row.model_name,
        scenario=Scenario(row.scenario),
        alias=row.alias,
        version=row.version,
        live=bool(row.live),
        status=DrillStatus(row.status),
        requested_by=row.requested_by,
        scheduled=bool(row.scheduled),
        started_at=codec.utc(row.started_at),
        detected_at=_opt(row.detected_at),
        paged_at=_opt(row.paged_at),
        acknowledged_at=_opt(row.acknowledged_at),
        resolved_at=_opt(row.resolved_at),
        incident_id=row.incident_id,
        job_id=row.job_id,
        rules_fired=tuple(report.get("rules_fired", ())),
        points=tuple(report.get("points", ())),
        steps=tuple(PlaybookStep(**s) for s in report.get("steps", ())),
        failures=tuple(report.get("failures", ())),
        deliveries=tuple(int(d) for d in report.get("deliveries", ())),
        detection_wait_s=row.detection_wait_s,
        notes=tuple(report.get("notes", ())),
    )


def report_of(drill: Drill) -> dict[str, Any]:
    """The JSON the ``report`` column holds for ``drill``."""
    return {
        "rules_fired": list(drill.rules_fired),
        "points": [dict(p) for p in drill.points],
        "steps": [
            {"playbook": s.playbook, "action": s.action, "outcome": s.outcome, "would": s.would}
            for s in drill.steps
        ],
        "failures": list(drill.failures),
        "deliveries": list(drill.deliveries),
        "notes": list(drill.notes),
    }


_SELECT = select(drills, models.c.name.label("model_name")).join(
    models, models.c.id == drills.c.model_id
)


def _model_id(conn: Connection, model: str) -> int:
    found = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
    if found is None:
        raise NotFound(f"No model named {model!r}.", {"model": model})
    return int(found)


class SqlDrillStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- drills --------------------------------------------------------------------------------

    def _get(self, conn: Connection, drill_id: int) -> Drill:
        row = conn.execute(_SELECT.where(drills.c.id == drill_id)).first()
        if row is None:
            raise NotFound(
                f"No drill with id {drill_id}. List drills with `keel drills list`.",
                {"drill": drill_id},
            )
        return _drill(row)

    def get(self, drill_id: int) -> Drill:
        with read_transaction(self._engine) as conn:
            return self._get(conn, drill_id)

    def by_job(self, job_id: int) -> Drill | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(_SELECT.where(drills.c.job_id == job_id)).first()
            return None if row is None else _drill(row)

    def by_incident(self, incident_id: int) -> Drill | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(_SELECT.where(drills.c.incident_id == incident_id)).first()
            return None if row is None else _drill(row)

    def list(
        self, *, model: str | None = None, since: datetime | None = None, limit: int = MAX_LIST
    ) -> list[Drill]:
        """Drills, newest first."""
        query = _SELECT
        if model is not None:
            query = query.where(models.c.name == model)
        if since is not None:
            query = query.where(drills.c.started_at >= since)
        query = query.order_by(drills.c.id.desc()).limit(limit)
        with read_transaction(self._engine) as conn:
            return [_drill(r) for r in conn.execute(query).all()]

    def start(
        self,
        *,
        model: str,
        scenario: Scenario,
        alias: str,
        version: int | None,
        live: bool,
        requested_by: str,
        scheduled: bool,
        job_id: int | None,
        started_at: datetime,
    ) -> Drill:
        with write_transaction(self._engine) as conn:
            new_id = int(
                conn.execute(
                    drills.insert()
                    .values(
                        model_id=_model_id(conn, model),
                        scenario=str(scenario),
                        alias=alias,
                        version=version,
                        live=live,
                        status=str(DrillStatus.RUNNING),
                        requested_by=requested_by,
                        scheduled=scheduled,
                        job_id=job_id,
                        started_at=started_at,
                        report={},
                    )
                    .returning(drills.c.id)
                ).scalar_one()
            )
            audit.append(
                conn,
                actor=requested_by,
                action="drill.start",
                subject_type="drill",
                subject_id=str(new_id),
                details={
                    "model": model,
                    "scenario": str(scenario),
                    "alias": alias,
                    "version": version,
                    "live": live,
                    "scheduled": scheduled,
                },
            )
            return self._get(conn, new_id)

    def save(self, drill: Drill, *, actor: str, action: str) -> Drill:
        """Store the drill's progress and report; audited as ``action``."""
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(drills)
                .where(drills.c.id == drill.id)
                .values(
                    status=str(drill.status),
                    version=drill.version,
                    detected_at=drill.detected_at,
                    paged_at=drill.paged_at,
                    acknowledged_at=drill.acknowledged_at,
                    resolved_at=drill.resolved_at,
                    incident_id=drill.incident_id,
                    detection_wait_s=drill.detection_wait_s,
                    report=report_of(drill),
                )
            )
            audit.append(
                conn,
                actor=actor,
                action=action,
                subject_type="drill",
                subject_id=str(drill.id),
                details={
                    "model": drill.model,
                    "status": str(drill.status),
                    "incident": drill.incident_id,
                    "failures": list(drill.failures),
                },
            )
            return self._get(conn, drill.id)

    # -- schedules -----------------------------------------------------------------------------

    def schedules(self, model: str | None = None) -> builtins.list[DrillSchedule]:
        query = select(drill_schedules, models.c.name.label("model_name")).join(
            models, models.c.id == drill_schedules.c.model_id
        )
        if model is not None:
            query = query.where(models.c.name == model)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query.order_by(drill_schedules.c.id)).all()
        return [
            DrillSchedule(
                id=r.id,
                model=r.model_name,
                scenario=Scenario(r.scenario),
                alias=r.alias,
                every_days=r.every_days,
                created_by=r.created_by,
                created_at=codec.utc(r.created_at),
            )
            for r in rows
        ]

    def set_schedule(
        self,
        *,
        model: str,
        scenario: Scenario,
        alias: str,
        every_days: int,
        actor: str,
        at: datetime,
    ) -> DrillSchedule:
        """One schedule per (model, scenario): setting it again replaces it."""
        with write_transaction(self._engine) as conn:
            model_id = _model_id(conn, model)
            conn.execute(
                delete(drill_schedules).where(
                    drill_schedules.c.model_id == model_id,
                    drill_schedules.c.scenario == str(scenario),
                )
            )
            new_id = int(
                conn.execute(
                    drill_schedules.insert()
                    .values(
                        model_id=model_id,
                        scenario=str(scenario),
                        alias=alias,
                        every_days=every_days,
                        created_by=actor,
                        created_at=at,
                    )
                    .returning(drill_schedules.c.id)
                ).scalar_one()
            )
            audit.append(
                conn,
                actor=actor,
                action="drill.schedule",
                subject_type="drill_schedule",
                subject_id=str(new_id),
                details={
                    "model": model,
                    "scenario": str(scenario),
                    "alias": alias,
                    "every_days": every_days,
                },
            )
        return DrillSchedule(new_id, model, scenario, alias, every_days, actor, at)

    def remove_schedule(self, model: str, scenario: Scenario, *, actor: str) -> DrillSchedule:
        found = [s for s in self.schedules(model) if s.scenario == scenario]
        if not found:
            raise NotFound(
                f"{model!r} has no {scenario} drill schedule. List them with "
                "`keel drills schedules`.",
                {"model": model, "scenario": str(scenario)},
            )
        with write_transaction(self._engine) as conn:
            conn.execute(delete(drill_schedules).where(drill_schedules.c.id == found[0].id))
            audit.append(
                conn,
                actor=actor,
                action="drill.unschedule",
                subject_type="drill_schedule",
                subject_id=str(found[0].id),
                details={"model": model, "scenario": str(scenario)},
            )
        return found[0]
