"""Incidents and their timelines over SQLAlchemy Core; every change appends its audit event in
the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, select, update
from sqlalchemy.exc import IntegrityError

from keel.domain.incidents import (
    Incident,
    IncidentStatus,
    Severity,
    TimelineEntry,
    TimelineKind,
    check_transition,
)
from keel.errors import NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import models, teams
from keel.store.sql.tables_incidents import incident_events, incidents

MAX_LIST = 1000
_ACTIONS = {
    IncidentStatus.ACKNOWLEDGED: "incident.acknowledge",
    IncidentStatus.RESOLVED: "incident.resolve",
    IncidentStatus.TRIGGERED: "incident.trigger",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _opt(value: datetime | None) -> datetime | None:
    return codec.utc(value) if value is not None else None


_SELECT: Select[Any] = select(incidents, models.c.name.label("model_name")).join(
    models, models.c.id == incidents.c.model_id
)


def _incident(row: Any, timeline: tuple[TimelineEntry, ...]) -> Incident:
    return Incident(
        id=row.id,
        key=row.key,
        model=row.model_name,
        version=row.version,
        rule_id=row.rule_id,
        title=row.title,
        severity=Severity(row.severity),
        status=IncidentStatus(row.status),
        labels=dict(row.labels),
        check=row.check,
        column=row.column_name,
        assignee=row.assignee,
        opened_at=codec.utc(row.opened_at),
        acknowledged_at=_opt(row.acknowledged_at),
        resolved_at=_opt(row.resolved_at),
        postmortem=row.postmortem,
        timeline=timeline,
        drill_id=row.drill_id,
    )


def _entry(row: Any) -> TimelineEntry:
    return TimelineEntry(
        at=codec.utc(row.at),
        actor=row.actor,
        kind=row.kind,
        message=row.message,
        details=dict(row.details),
    )


class SqlIncidentStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- reading -------------------------------------------------------------------------------

    def _timeline(self, conn: Connection, incident_id: int) -> tuple[TimelineEntry, ...]:
        rows = conn.execute(
            select(incident_events)
            .where(incident_events.c.incident_id == incident_id)
            .order_by(incident_events.c.id)
        ).all()
        return tuple(_entry(r) for r in rows)

    def _get(self, conn: Connection, incident_id: int) -> Incident:
        row = conn.execute(_SELECT.where(incidents.c.id == incident_id)).first()
        if row is None:
            raise NotFound(
                f"No incident with id {incident_id}. List incidents with `keel incidents list`.",
                {"incident": incident_id},
            )
        return _incident(row, self._timeline(conn, incident_id))

    def get(self, incident_id: int) -> Incident:
        with read_transaction(self._engine) as conn:
            return self._get(conn, incident_id)

    def open_by_key(self, key: str) -> Incident | None:
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(incidents.c.id).where(incidents.c.open_key == key)).scalar()
            return None if found is None else self._get(conn, int(found))

    def list(
        self,
        *,
        model: str | None = None,
        team: str | None = None,
        statuses: frozenset[IncidentStatus] | None = None,
        teams_visible: frozenset[str] | None = None,
        limit: int = MAX_LIST,
        with_timeline: bool = False,
        drill: bool | None = False,
    ) -> list[Incident]:
        """Incidents, newest first; ``teams_visible`` None means every team. ``drill``: False
        (the default) leaves drill incidents out, True lists only them, None lists both."""
        query = _SELECT.join(teams, teams.c.id == models.c.team_id)
        if drill is not None:
            query = query.where(
                incidents.c.drill_id.is_not(None) if drill else incidents.c.drill_id.is_(None)
            )
        if model is not None:
            query = query.where(models.c.name == model)
        if team is not None:
            query = query.where(teams.c.name == team)
        if statuses is not None:
            query = query.where(incidents.c.status.in_([str(s) for s in statuses]))
        if teams_visible is not None:
            query = query.where(teams.c.name.in_(sorted(teams_visible)))
        query = query.order_by(incidents.c.id.desc()).limit(limit)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
            return [_incident(r, self._timeline(conn, r.id) if with_timeline else ()) for r in rows]

    def team_of(self, model: str) -> str:
        with read_transaction(self._engine) as conn:
            found = conn.execute(
                select(teams.c.name)
                .join(models, models.c.team_id == teams.c.id)
                .where(models.c.name == model)
            ).scalar()
        if found is None:
            raise NotFound(f"No model named {model!r}.", {"model": model})
        return str(found)

    # -- writing -------------------------------------------------------------------------------

    def _append(
        self,
        conn: Connection,
        incident_id: int,
        *,
        actor: str,
        kind: TimelineKind,
        message: str,
        details: Mapping[str, Any] | None,
        at: datetime,
    ) -> None:
        conn.execute(
            incident_events.insert().values(
                incident_id=incident_id,
                at=at,
                actor=actor,
                kind=str(kind),
                message=message,
                details=dict(details or {}),
            )
        )

    def trigger(
        self,
        *,
        key: str,
        model: str,
        version: int | None,
        title: str,
        severity: Severity,
        check: str | None,
        column: str | None,
        labels: Mapping[str, str],
        rule_id: int | None,
        assignee: str | None,
        actor: str,
        details: Mapping[str, Any],
        drill_id: int | None = None,
    ) -> tuple[Incident, bool]:
        """Open an incident for ``key``, or add an alert entry to the open one with that key."""
        for _attempt in range(3):
            try:
                return self._trigger_once(
                    key=key,
                    model=model,
                    version=version,
                    title=title,
                    severity=severity,
                    check=check,
                    column=column,
                    labels=labels,
                    rule_id=rule_id,
                    assignee=assignee,
                    actor=actor,
                    details=details,
                    drill_id=drill_id,
                )
            except IntegrityError:
                # Another writer opened the incident for this key between our read and insert;
                # the next attempt finds it and appends to it.
                continue
        raise RuntimeError(f"could not open or update the incident for key {key!r}")

    def _trigger_once(
        self,
        *,
        key: str,
        model: str,
        version: int | None,
        title: str,
        severity: Severity,
        check: str | None,
        column: str | None,
        labels: Mapping[str, str],
        rule_id: int | None,
        assignee: str | None,
        actor: str,
        details: Mapping[str, Any],
        drill_id: int | None,
    ) -> tuple[Incident, bool]:
        now = _now()
        with write_transaction(self._engine) as conn:
            found = conn.execute(select(incidents.c.id).where(incidents.c.open_key == key)).scalar()
            if found is not None:
                incident_id = int(found)
                self._append(
                    conn,
                    incident_id,
                    actor=actor,
                    kind=TimelineKind.ALERT,
                    message=title,
                    details=details,
                    at=now,
                )
                audit.append(
                    conn,
                    actor=actor,
                    action="incident.alert",
                    subject_type="incident",
                    subject_id=str(incident_id),
                    details={"key": key, "model": model, **details},
                )
                return self._get(conn, incident_id), False
            model_id = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
            if model_id is None:
                raise NotFound(f"No model named {model!r}.", {"model": model})
            new_id = int(
                conn.execute(
                    incidents.insert()
                    .values(
                        key=key,
                        open_key=key,
                        model_id=model_id,
                        version=version,
                        rule_id=rule_id,
                        title=title,
                        severity=str(severity),
                        status=str(IncidentStatus.TRIGGERED),
                        labels=dict(labels),
                        check=check,
                        column_name=column,
                        assignee=assignee,
                        opened_at=now,
                        postmortem="",
                        drill_id=drill_id,
                    )
                    .returning(incidents.c.id)
                ).scalar_one()
            )
            self._append(
                conn,
                new_id,
                actor=actor,
                kind=TimelineKind.ALERT,
                message=title,
                details=details,
                at=now,
            )
            self._append(
                conn,
                new_id,
                actor=actor,
                kind=TimelineKind.STATUS,
                message=f"Triggered ({severity}), assigned to {assignee or 'nobody'}.",
                details={"status": str(IncidentStatus.TRIGGERED), "assignee": assignee},
                at=now,
            )
            audit.append(
                conn,
                actor=actor,
                action="incident.trigger",
                subject_type="incident",
                subject_id=str(new_id),
                details={
                    "key": key,
                    "model": model,
                    "version": version,
                    "severity": str(severity),
                    "title": title,
                    "assignee": assignee,
                    **({"drill": drill_id} if drill_id is not None else {}),
                },
            )
            return self._get(conn, new_id), True

    def transition(
        self,
        incident_id: int,
        target: IncidentStatus,
        *,
        actor: str,
        comment: str,
        automatic: bool = False,
    ) -> Incident:
        """Move an incident to ``target`` (checked against the lifecycle); audited."""
        now = _now()
        with write_transaction(self._engine) as conn:
            current = self._get(conn, incident_id)
            check_transition(current.status, target)
            values: dict[str, Any] = {"status": str(target)}
            if target == IncidentStatus.ACKNOWLEDGED:
                values["acknowledged_at"] = now
            if target == IncidentStatus.RESOLVED:
                values["resolved_at"] = now
                values["open_key"] = None
            conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))
            how = " automatically (the alert condition cleared)" if automatic else ""
            message = f"{str(target).capitalize()}{how}." + (f" {comment}" if comment else "")
            self._append(
                conn,
                incident_id,
                actor=actor,
                kind=TimelineKind.STATUS,
                message=message,
                details={
                    "from": str(current.status),
                    "status": str(target),
                    "automatic": automatic,
                    "comment": comment,
                },
                at=now,
            )
            audit.append(
                conn,
                actor=actor,
                action=_ACTIONS[target],
                subject_type="incident",
                subject_id=str(incident_id),
                details={
                    "model": current.model,
                    "from": str(current.status),
                    "to": str(target),
                    "automatic": automatic,
                    "comment": comment,
                },
            )
            return self._get(conn, incident_id)

    def add_entry(
        self,
        incident_id: int,
        *,
        actor: str,
        kind: TimelineKind,
        message: str,
        details: Mapping[str, Any] | None,
        audit_action: str,
    ) -> Incident:
        """Append a timeline entry (comment, action, notification); audited as ``audit_action``."""
        now = _now()
        with write_transaction(self._engine) as conn:
            current = self._get(conn, incident_id)
            self._append(
                conn,
                incident_id,
                actor=actor,
                kind=kind,
                message=message,
                details=details,
                at=now,
            )
            audit.append(
                conn,
                actor=actor,
                action=audit_action,
                subject_type="incident",
                subject_id=str(incident_id),
                details={"model": current.model, "message": message, **dict(details or {})},
            )
            return self._get(conn, incident_id)

    def set_postmortem(self, incident_id: int, markdown: str, *, actor: str) -> Incident:
        now = _now()
        with write_transaction(self._engine) as conn:
            current = self._get(conn, incident_id)
            conn.execute(
                update(incidents).where(incidents.c.id == incident_id).values(postmortem=markdown)
            )
            verb = "Updated" if current.postmortem else "Attached"
            self._append(
                conn,
                incident_id,
                actor=actor,
                kind=TimelineKind.POSTMORTEM,
                message=f"{verb} the post-mortem ({len(markdown)} characters).",
                details={"characters": len(markdown)},
                at=now,
            )
            audit.append(
                conn,
                actor=actor,
                action="incident.postmortem",
                subject_type="incident",
                subject_id=str(incident_id),
                details={"model": current.model, "characters": len(markdown)},
            )
            return self._get(conn, incident_id)
