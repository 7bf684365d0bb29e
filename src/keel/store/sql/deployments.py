"""Deployments over SQLAlchemy Core: each change with its timeline event and audit event in one
transaction; at most one active deployment per model."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from keel.domain.deployments import (
    AnalysisCounts,
    Deployment,
    DeploymentEvent,
    DeploymentState,
    Strategy,
    parse_plan,
)
from keel.errors import Conflict, NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import alias_assignments, model_versions, models
from keel.store.sql.tables_deployments import deployment_events, deployments


class StaleDeployment(Conflict):
    """The deployment changed since it was read (another move won); nothing was written."""


ACTIVE = (str(DeploymentState.PROGRESSING), str(DeploymentState.PAUSED))


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else codec.utc(value)


def _deployment(model: str, row: Any) -> Deployment:
    strategy = Strategy(row.strategy)
    counts = dict(row.counts)
    return Deployment(
        id=int(row.id),
        model=model,
        strategy=strategy,
        state=DeploymentState(row.state),
        candidate=int(row.candidate_version),
        stable=None if row.stable_version is None else int(row.stable_version),
        plan=parse_plan(strategy, row.plan),
        step=int(row.step),
        step_started_at=codec.utc(row.step_started_at),
        counts=AnalysisCounts(
            int(counts.get("failed", 0)),
            int(counts.get("inconclusive", 0)),
            int(counts.get("consecutive_errors", 0)),
        ),
        revision=int(row.revision),
        created_by=row.created_by,
        created_at=codec.utc(row.created_at),
        updated_at=codec.utc(row.updated_at),
        reason=row.reason,
        break_glass=bool(row.break_glass),
        justification=row.justification,
        switched_at=_opt_utc(row.switched_at),
        blue_until=_opt_utc(row.blue_until),
        incident_id=row.incident_id,
        measured_at=(
            codec.utc(datetime.fromisoformat(counts["measured_at"]))
            if counts.get("measured_at")
            else None
        ),
    )


@dataclass(frozen=True)
class NewDeployment:
    strategy: Strategy
    candidate: int
    stable: int | None
    plan: dict[str, Any]
    break_glass: bool
    justification: str
    state: DeploymentState = DeploymentState.PROGRESSING


@dataclass(frozen=True)
class ServingState:
    """What `serving_plan` needs, read in one transaction."""

    deployment: Deployment | None
    production: int | None  # the production alias's version now
    production_changes: int  # grows with every move of the production alias


class SqlDeploymentStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlDeploymentStore(backend={self._engine.dialect.name!r})"

    @staticmethod
    def _model_id(conn: Connection, model: str) -> int:
        model_id = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
        if model_id is None:
            raise NotFound(f"No model named {model!r}.", {"model": model})
        return int(model_id)

    @staticmethod
    def _event(
        conn: Connection,
        deployment_id: int,
        kind: str,
        actor: str,
        details: Mapping[str, Any],
        at: datetime,
    ) -> int:
        return int(
            conn.execute(
                deployment_events.insert()
                .values(
                    deployment_id=deployment_id,
                    at=at,
                    kind=kind,
                    actor=actor,
                    details=dict(details),
                )
                .returning(deployment_events.c.id)
            ).scalar_one()
        )

    def _read(self, conn: Connection, deployment_id: int) -> Deployment:
        row = conn.execute(
            select(deployments, models.c.name.label("model_name"))
            .join(models, models.c.id == deployments.c.model_id)
            .where(deployments.c.id == deployment_id)
        ).first()
        if row is None:
            raise NotFound(
                f"No deployment {deployment_id}. List them with `keel deployments list`.",
                {"deployment": deployment_id},
            )
        return _deployment(row.model_name, row)

    def create(
        self, model: str, new: NewDeployment, actor: str, *, now: datetime | None = None
    ) -> Deployment:
        """Store a deployment with its ``started`` event and audit event; `Conflict` when the
        model already has an active one."""
        now = now or datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            # Touching the model row takes its lock on PostgreSQL, so two deploys queue.
            conn.execute(update(models).where(models.c.id == model_id).values(updated_at=now))
            active = conn.execute(
                select(deployments.c.id, deployments.c.candidate_version).where(
                    deployments.c.model_id == model_id, deployments.c.state.in_(ACTIVE)
                )
            ).first()
            if active is not None:
                raise Conflict(
                    f"{model} already has deployment {active.id} (version "
                    f"{active.candidate_version}) in progress: promote or abort it first "
                    f"(keel deployments abort {model}).",
                    {"model": model, "deployment": int(active.id)},
                )
            deployment_id = conn.execute(
                deployments.insert()
                .values(
                    model_id=model_id,
                    strategy=str(new.strategy),
                    state=str(new.state),
                    candidate_version=new.candidate,
                    stable_version=new.stable,
                    plan=new.plan,
                    step=0,
                    step_started_at=now,
                    counts=AnalysisCounts().to_dict(),
                    revision=0,
                    reason="",
                    break_glass=new.break_glass,
                    justification=new.justification,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
                .returning(deployments.c.id)
            ).scalar_one()
            details = {
                "deployment": int(deployment_id),
                "strategy": str(new.strategy),
                "version": new.candidate,
                "stable_version": new.stable,
                "break_glass": new.break_glass,
            }
            event_id = self._event(conn, deployment_id, "started", actor, details, now)
            conn.execute(
                update(deployments)
                .where(deployments.c.id == deployment_id)
                .values(revision=event_id)
            )
            audit.append(
                conn,
                actor=actor,
                action="deployment.start",
                subject_type="model",
                subject_id=model,
                details={**details, "plan": new.plan},
            )
            return self._read(conn, deployment_id)

    def save(
        self,
        deployment_id: int,
        *,
        expect_revision: int,
        kind: str,
        actor: str,
        details: Mapping[str, Any],
        values: Mapping[str, Any],
        serving_changes: bool = True,
        audited: bool = True,
        now: datetime | None = None,
    ) -> Deployment:
        """Apply ``values`` and record the ``kind`` event, only if nothing changed what serves
        since ``expect_revision`` (else `Conflict`). ``serving_changes`` moves the revision."""
        now = now or datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            current = self._read(conn, deployment_id)
            if current.revision != expect_revision:
                raise StaleDeployment(
                    f"Deployment {deployment_id} of {current.model} changed meanwhile (it is "
                    f"{current.state} now); look at it again and retry.",
                    {"deployment": deployment_id, "state": str(current.state)},
                )
            event_id = self._event(conn, deployment_id, kind, actor, details, now)
            changes = {**values, "updated_at": now}
            if serving_changes:
                changes["revision"] = event_id
            conn.execute(
                update(deployments).where(deployments.c.id == deployment_id).values(**changes)
            )
            if audited:
                audit.append(
                    conn,
                    actor=actor,
                    action=f"deployment.{kind}",
                    subject_type="model",
                    subject_id=current.model,
                    details={"deployment": deployment_id, **details},
                )
            return self._read(conn, deployment_id)

    def get(self, deployment_id: int) -> Deployment:
        with read_transaction(self._engine) as conn:
            return self._read(conn, deployment_id)

    def list(
        self, model: str | None = None, *, active_only: bool = False, limit: int = 100
    ) -> list[Deployment]:
        """Deployments newest first, of one model or all."""
        query = (
            select(deployments, models.c.name.label("model_name"))
            .join(models, models.c.id == deployments.c.model_id)
            .order_by(deployments.c.id.desc())
            .limit(limit)
        )
        if model is not None:
            query = query.where(models.c.name == model)
        if active_only:
            query = query.where(deployments.c.state.in_(ACTIVE))
        with read_transaction(self._engine) as conn:
            if model is not None:
                self._model_id(conn, model)
            rows = conn.execute(query).all()
        return [_deployment(r.model_name, r) for r in rows]

    def events(self, deployment_id: int) -> builtins.list[DeploymentEvent]:
        with read_transaction(self._engine) as conn:
            self._read(conn, deployment_id)
            rows = conn.execute(
                select(deployment_events)
                .where(deployment_events.c.deployment_id == deployment_id)
                .order_by(deployment_events.c.id)
            ).all()
        return [
            DeploymentEvent(
                int(r.id), int(r.deployment_id), codec.utc(r.at), r.kind, r.actor, dict(r.details)
            )
            for r in rows
        ]

    def events_of(self, deployment_ids: Sequence[int]) -> dict[int, builtins.list[DeploymentEvent]]:
        """The events of several deployments in one statement, each one's oldest first."""
        found: dict[int, builtins.list[DeploymentEvent]] = {i: [] for i in deployment_ids}
        if not deployment_ids:
            return found
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(deployment_events)
                .where(deployment_events.c.deployment_id.in_(list(deployment_ids)))
                .order_by(deployment_events.c.id)
            ).all()
        for r in rows:
            found[int(r.deployment_id)].append(
                DeploymentEvent(
                    int(r.id),
                    int(r.deployment_id),
                    codec.utc(r.at),
                    r.kind,
                    r.actor,
                    dict(r.details),
                )
            )
        return found

    def serving_state(self, model: str) -> ServingState:
        """The model's newest deployment and its production alias, in one read transaction."""
        with read_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            row = conn.execute(
                select(deployments)
                .where(deployments.c.model_id == model_id)
                .order_by(deployments.c.id.desc())
                .limit(1)
            ).first()
            production = conn.execute(
                select(model_versions.c.version)
                .join(alias_assignments, alias_assignments.c.version_id == model_versions.c.id)
                .where(
                    alias_assignments.c.model_id == model_id,
                    alias_assignments.c.alias == "production",
                    alias_assignments.c.cleared_at.is_(None),
                )
            ).scalar()
            changes = conn.execute(
                select(func.count()).where(
                    alias_assignments.c.model_id == model_id,
                    alias_assignments.c.alias == "production",
                )
            ).scalar_one()
        return ServingState(
            None if row is None else _deployment(model, row),
            None if production is None else int(production),
            int(changes),
        )
