"""Playbooks, their runs, retraining jobs and retrain runs over SQLAlchemy Core.

Every write appends its audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update

from keel.errors import NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import models
from keel.store.sql.tables_playbooks import (
    playbook_runs,
    playbooks,
    retrain_runs,
    retraining_jobs,
    rollbacks,
)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StoredPlaybook:
    id: int
    name: str
    version: int
    scope: str
    target: str
    enabled: bool
    source: str
    document: Mapping[str, Any]
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class PlaybookRun:
    id: int
    playbook_id: int
    incident_id: int
    status: str  # running | waiting | finished
    next_action: int
    outcomes: tuple[Mapping[str, Any], ...]
    started_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RetrainingJob:
    model: str
    kind: str  # command | webhook | unreviewed (a command defined before admins alone could)
    command: tuple[str, ...]
    timeout_s: int
    window_days: int
    schedule_every_s: int | None
    updated_by: str
    updated_at: datetime
    code_paths: tuple[str, ...] = ()
    memory_mb: int = 4096


@dataclass(frozen=True)
class RetrainRun:
    id: int
    model: str
    trigger: str  # playbook | schedule | manual
    incident_id: int | None
    window_start: datetime
    window_end: datetime
    data_dir: str
    status: str  # running | succeeded | failed | timed_out | sent
    started_by: str
    started_at: datetime
    finished_at: datetime | None
    exit_code: int | None
    output_tail: str
    registered_version: int | None
    reason: str = ""


@dataclass(frozen=True)
class Rollback:
    promotion_id: int
    model: str
    from_version: int
    to_version: int
    reason: str
    incident_id: int | None
    rolled_back_by: str
    rolled_back_at: datetime


def _playbook(row: Any) -> StoredPlaybook:
    return StoredPlaybook(
        id=row.id,
        name=row.name,
        version=row.version,
        scope=row.scope,
        target=row.target,
        enabled=bool(row.enabled),
        source=row.source,
        document=dict(row.document),
        created_by=row.created_by,
        created_at=codec.utc(row.created_at),
    )


def _run(row: Any) -> PlaybookRun:
    return PlaybookRun(
        id=row.id,
        playbook_id=row.playbook_id,
        incident_id=row.incident_id,
        status=row.status,
        next_action=row.next_action,
        outcomes=tuple(row.outcomes),
        started_at=codec.utc(row.started_at),
        updated_at=codec.utc(row.updated_at),
    )


def _retrain_run(row: Any) -> RetrainRun:
    return RetrainRun(
        id=row.id,
        model=row.model,
        trigger=row.trigger,
        incident_id=row.incident_id,
        window_start=codec.utc(row.window_start),
        window_end=codec.utc(row.window_end),
        data_dir=row.data_dir,
        status=row.status,
        started_by=row.started_by,
        started_at=codec.utc(row.started_at),
        finished_at=None if row.finished_at is None else codec.utc(row.finished_at),
        exit_code=row.exit_code,
        output_tail=row.output_tail,
        reason=row.reason,
        registered_version=row.registered_version,
    )


class SqlPlaybookStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlPlaybookStore(backend={self._engine.dialect.name!r})"

    @staticmethod
    def _model_id(conn: Any, model: str) -> int:
        found = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
        if found is None:
            raise NotFound(f"No model named {model!r}.", {"model": model})
        return int(found)

    # -- playbooks ------------------------------------------------------------------------------

    def add_playbook(
        self,
        *,
        name: str,
        scope: str,
        target: str,
        enabled: bool,
        source: str,
        document: Mapping[str, Any],
        actor: str,
    ) -> StoredPlaybook:
        """Store the name's next version (the newest version of a name is in force)."""
        with write_transaction(self._engine) as conn:
            newest = conn.execute(
                select(func.max(playbooks.c.version)).where(playbooks.c.name == name)
            ).scalar()
            number = int(newest or 0) + 1
            new_id = conn.execute(
                playbooks.insert()
                .values(
                    name=name,
                    version=number,
                    scope=scope,
                    target=target,
                    enabled=enabled,
                    source=source,
                    document=dict(document),
                    created_by=actor,
                    created_at=_now(),
                )
                .returning(playbooks.c.id)
            ).scalar_one()
            audit.append(
                conn,
                actor=actor,
                action="playbook.apply",
                subject_type="playbook",
                subject_id=name,
                details={"version": number, scope: target, "enabled": enabled},
            )
            return _playbook(conn.execute(select(playbooks).where(playbooks.c.id == new_id)).one())

    def current_playbooks(self) -> list[StoredPlaybook]:
        """The newest version of every playbook name, by name."""
        newest = (
            select(playbooks.c.name, func.max(playbooks.c.version).label("version"))
            .group_by(playbooks.c.name)
            .subquery()
        )
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(playbooks)
                .join(
                    newest,
                    (newest.c.name == playbooks.c.name) & (newest.c.version == playbooks.c.version),
                )
                .order_by(playbooks.c.name)
            ).all()
        return [_playbook(r) for r in rows]

    def playbook(self, playbook_id: int) -> StoredPlaybook:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(playbooks).where(playbooks.c.id == playbook_id)).first()
        if row is None:
            raise NotFound(f"No playbook with id {playbook_id}.", {"playbook_id": playbook_id})
        return _playbook(row)

    # -- playbook runs --------------------------------------------------------------------------

    def start_run(self, playbook_id: int, incident_id: int) -> PlaybookRun:
        now = _now()
        with write_transaction(self._engine) as conn:
            new_id = conn.execute(
                playbook_runs.insert()
                .values(
                    playbook_id=playbook_id,
                    incident_id=incident_id,
                    status="running",
                    next_action=0,
                    outcomes=[],
                    started_at=now,
                    updated_at=now,
                )
                .returning(playbook_runs.c.id)
            ).scalar_one()
            return _run(
                conn.execute(select(playbook_runs).where(playbook_runs.c.id == new_id)).one()
            )

    def claim_waiting(self, incident_id: int) -> list[PlaybookRun]:
        """Take the runs waiting on the incident's acknowledgement (each is claimed once)."""
        claimed: list[PlaybookRun] = []
        with write_transaction(self._engine) as conn:
            rows = conn.execute(
                select(playbook_runs).where(
                    playbook_runs.c.incident_id == incident_id, playbook_runs.c.status == "waiting"
                )
            ).all()
            for row in rows:
                done = conn.execute(
                    update(playbook_runs)
                    .where(playbook_runs.c.id == row.id, playbook_runs.c.status == "waiting")
                    .values(status="running", updated_at=_now())
                ).rowcount
                if done:
                    claimed.append(
                        _run(
                            conn.execute(
                                select(playbook_runs).where(playbook_runs.c.id == row.id)
                            ).one()
                        )
                    )
        return claimed

    def save_run(
        self, run_id: int, *, status: str, next_action: int, outcomes: Sequence[Mapping[str, Any]]
    ) -> PlaybookRun:
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(playbook_runs)
                .where(playbook_runs.c.id == run_id)
                .values(
                    status=status,
                    next_action=next_action,
                    outcomes=[dict(o) for o in outcomes],
                    updated_at=_now(),
                )
            )
            return _run(
                conn.execute(select(playbook_runs).where(playbook_runs.c.id == run_id)).one()
            )

    def runs(self, incident_id: int) -> list[PlaybookRun]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(playbook_runs)
                .where(playbook_runs.c.incident_id == incident_id)
                .order_by(playbook_runs.c.id)
            ).all()
        return [_run(r) for r in rows]

    # -- rollbacks ------------------------------------------------------------------------------

    def rollbacks(self, model: str) -> list[Rollback]:
        with read_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            rows = conn.execute(
                select(rollbacks).where(rollbacks.c.model_id == model_id).order_by(rollbacks.c.id)
            ).all()
        return [
            Rollback(
                promotion_id=r.promotion_id,
                model=model,
                from_version=r.from_version,
                to_version=r.to_version,
                reason=r.reason,
                incident_id=r.incident_id,
                rolled_back_by=r.rolled_back_by,
                rolled_back_at=codec.utc(r.rolled_back_at),
            )
            for r in rows
        ]

    # -- retraining jobs ------------------------------------------------------------------------

    @staticmethod
    def _job(row: Any, model: str) -> RetrainingJob:
        return RetrainingJob(
            model=model,
            kind=row.kind,
            command=tuple(row.command),
            timeout_s=row.timeout_s,
            window_days=row.window_days,
            schedule_every_s=row.schedule_every_s,
            updated_by=row.updated_by,
            updated_at=codec.utc(row.updated_at),
            code_paths=tuple(row.code_paths),
            memory_mb=row.memory_mb,
        )

    def put_job(self, job: RetrainingJob) -> RetrainingJob:
        """Create or replace the model's retraining job."""
        values = {
            "kind": job.kind,
            "command": list(job.command),
            "timeout_s": job.timeout_s,
            "window_days": job.window_days,
            "schedule_every_s": job.schedule_every_s,
            "updated_by": job.updated_by,
            "updated_at": _now(),
            "code_paths": list(job.code_paths),
            "memory_mb": job.memory_mb,
        }
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, job.model)
            exists = conn.execute(
                select(retraining_jobs.c.id).where(retraining_jobs.c.model_id == model_id)
            ).scalar()
            if exists is None:
                conn.execute(retraining_jobs.insert().values(model_id=model_id, **values))
            else:
                conn.execute(
                    update(retraining_jobs)
                    .where(retraining_jobs.c.model_id == model_id)
                    .values(**values)
                )
            audit.append(
                conn,
                actor=job.updated_by,
                action="retraining.job.set",
                subject_type="model",
                subject_id=job.model,
                details={
                    "kind": job.kind,
                    "command": list(job.command),
                    "timeout_s": job.timeout_s,
                    "window_days": job.window_days,
                    "schedule_every_s": job.schedule_every_s,
                    "code_paths": list(job.code_paths),
                    "memory_mb": job.memory_mb,
                },
            )
            row = conn.execute(
                select(retraining_jobs).where(retraining_jobs.c.model_id == model_id)
            ).one()
            return self._job(row, job.model)

    def job(self, model: str) -> RetrainingJob | None:
        with read_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            row = conn.execute(
                select(retraining_jobs).where(retraining_jobs.c.model_id == model_id)
            ).first()
        return None if row is None else self._job(row, model)

    def scheduled_jobs(self) -> list[RetrainingJob]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(retraining_jobs, models.c.name.label("model_name"))
                .join(models, models.c.id == retraining_jobs.c.model_id)
                .where(retraining_jobs.c.schedule_every_s.is_not(None))
                .order_by(models.c.name)
            ).all()
        return [self._job(r, r.model_name) for r in rows]

    # -- retrain runs ---------------------------------------------------------------------------

    def _select_runs(self) -> Any:
        return select(retrain_runs, models.c.name.label("model")).join(
            models, models.c.id == retrain_runs.c.model_id
        )

    def start_retrain(
        self,
        *,
        model: str,
        trigger: str,
        incident_id: int | None,
        window_start: datetime,
        window_end: datetime,
        runs_dir: str,
        actor: str,
    ) -> RetrainRun:
        """Record a started run; its data directory is ``runs_dir/run-<id>``."""
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            new_id = conn.execute(
                retrain_runs.insert()
                .values(
                    model_id=model_id,
                    trigger=trigger,
                    incident_id=incident_id,
                    window_start=window_start,
                    window_end=window_end,
                    data_dir="",
                    status="running",
                    started_by=actor,
                    started_at=_now(),
                    output_tail="",
                )
                .returning(retrain_runs.c.id)
            ).scalar_one()
            conn.execute(
                update(retrain_runs)
                .where(retrain_runs.c.id == new_id)
                .values(data_dir=f"{runs_dir}/run-{new_id}")
            )
            audit.append(
                conn,
                actor=actor,
                action="retrain.start",
                subject_type="model",
                subject_id=model,
                details={
                    "run_id": new_id,
                    "trigger": trigger,
                    "incident_id": incident_id,
                    "window_start": window_start.isoformat(),
                    "window_end": window_end.isoformat(),
                },
            )
            return _retrain_run(
                conn.execute(self._select_runs().where(retrain_runs.c.id == new_id)).one()
            )

    def finish_retrain(
        self,
        run_id: int,
        *,
        status: str,
        exit_code: int | None,
        output_tail: str,
        registered_version: int | None,
        actor: str,
        reason: str = "",
    ) -> RetrainRun:
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(retrain_runs)
                .where(retrain_runs.c.id == run_id)
                .values(
                    status=status,
                    exit_code=exit_code,
                    output_tail=output_tail,
                    registered_version=registered_version,
                    reason=reason,
                    finished_at=_now(),
                )
            )
            row = conn.execute(self._select_runs().where(retrain_runs.c.id == run_id)).one()
            audit.append(
                conn,
                actor=actor,
                action="retrain.finish",
                subject_type="model",
                subject_id=row.model,
                details={
                    "run_id": run_id,
                    "status": status,
                    "exit_code": exit_code,
                    "registered_version": registered_version,
                    "reason": reason,
                    "incident_id": row.incident_id,
                },
            )
            return _retrain_run(row)

    def retrain_runs(self, model: str) -> list[RetrainRun]:
        with read_transaction(self._engine) as conn:
            self._model_id(conn, model)
            rows = conn.execute(
                self._select_runs().where(models.c.name == model).order_by(retrain_runs.c.id)
            ).all()
        return [_retrain_run(r) for r in rows]

    def last_retrain(self, model: str) -> RetrainRun | None:
        runs = self.retrain_runs(model)
        return runs[-1] if runs else None
