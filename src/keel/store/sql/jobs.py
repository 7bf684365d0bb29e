"""The job queue over SQLAlchemy Core, on SQLite and PostgreSQL alike.

Why our own code and not a queue library: ``procrastinate`` runs on PostgreSQL only, and
``huey``'s SQLite storage has no leases (a consumer killed mid-task loses the task, and several
hosts cannot share it), so neither serves both of Keel's backends with the same guarantees. The
webhook outbox (`keel.store.sql.notifications`) already claims rows this way; jobs follow it:
one short claiming transaction (FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite, BEGIN IMMEDIATE
makes the single writer the arbiter), then work outside any transaction, then writes fenced on
the lease owner, so a worker that lost its lease cannot overwrite what another worker did.

The fencing token is (lease owner, attempt number): each claim increments the attempt. A worker
that stalled (a long GC pause, a suspended process) past its lease, while another worker claimed
the job again and finished it, holds a stale token. `SqlJobStore.fence` gives the handler a check
that every one of its write transactions runs first, inside that transaction (on PostgreSQL it
locks the job's row, so a claim cannot slip between the check and the commit; on SQLite BEGIN
IMMEDIATE already serialises writers): the stale worker's effect is refused, not recorded twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from keel.domain.jobs import FINISHED, Job, JobLost, JobState, QueueDepth
from keel.errors import Conflict, NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import WriteGuard, read_transaction, write_transaction
from keel.store.sql.tables_jobs import jobs, scheduled_runs

MAX_ERROR_CHARS = 4000
MAX_PROGRESS_CHARS = 512


def _now() -> datetime:
    return datetime.now(UTC)


def _opt(value: datetime | None) -> datetime | None:
    return codec.utc(value) if value is not None else None


def _job(row: Any) -> Job:
    return Job(
        id=int(row.id),
        kind=row.kind,
        payload=dict(row.payload),
        state=JobState(row.state),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        created_by=row.created_by,
        created_at=codec.utc(row.created_at),
        idempotency_key=row.idempotency_key,
        started_at=_opt(row.started_at),
        finished_at=_opt(row.finished_at),
        lease_owner=row.lease_owner,
        lease_expires_at=_opt(row.lease_expires_at),
        heartbeat_at=_opt(row.heartbeat_at),
        progress=row.progress,
        result=None if row.result is None else dict(row.result),
        error=row.error,
    )


class SqlJobStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlJobStore({self._engine.url.get_backend_name()})"

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        actor: str,
        max_attempts: int,
        idempotency_key: str | None = None,
        now: datetime | None = None,
    ) -> tuple[Job, bool]:
        """Queue a job; with an ``idempotency_key`` already used, return that job instead.

        Returns the job and whether it is new.
        """
        at = now or _now()
        if idempotency_key is not None:
            found = self.by_key(idempotency_key)
            if found is not None:
                return found, False
        try:
            with write_transaction(self._engine) as conn:
                new_id = conn.execute(
                    jobs.insert()
                    .values(
                        kind=kind,
                        payload=dict(payload),
                        state=JobState.QUEUED.value,
                        attempts=0,
                        max_attempts=max_attempts,
                        idempotency_key=idempotency_key,
                        created_by=actor,
                        created_at=at,
                        progress="",
                    )
                    .returning(jobs.c.id)
                ).scalar_one()
        except IntegrityError:
            # Another replica queued the same key a moment ago: that job is the one.
            if idempotency_key is None:
                raise
            found = self.by_key(idempotency_key)
            assert found is not None
            return found, False
        return self.get(int(new_id)), True

    def by_key(self, idempotency_key: str) -> Job | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(jobs).where(jobs.c.idempotency_key == idempotency_key)
            ).first()
        return None if row is None else _job(row)

    def get(self, job_id: int) -> Job:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"No job {job_id}. List jobs with `keel jobs list`.", {"job_id": job_id})
        return _job(row)

    def list_jobs(
        self, *, state: JobState | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Job]:
        query = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(jobs.c.state == state.value)
        if kind is not None:
            query = query.where(jobs.c.kind == kind)
        with read_transaction(self._engine) as conn:
            return [_job(r) for r in conn.execute(query)]

    def claim(self, owner: str, *, lease: timedelta, now: datetime | None = None) -> Job | None:
        """Take the oldest claimable job for ``lease``: a queued one, or a running one whose
        worker's lease ran out (that worker stopped heartbeating: it died or hung). A job that
        has had its ``max_attempts`` is dead-lettered instead of claimed."""
        at = now or _now()
        claimable = or_(
            jobs.c.state == JobState.QUEUED.value,
            and_(jobs.c.state == JobState.RUNNING.value, jobs.c.lease_expires_at < at),
        )
        while True:
            with write_transaction(self._engine) as conn:
                row = conn.execute(
                    select(jobs)
                    .where(claimable)
                    .order_by(jobs.c.id)
                    .limit(1)
                    # PostgreSQL: rows another worker is claiming are skipped, not waited for.
                    # SQLite ignores this; BEGIN IMMEDIATE (write_transaction) serialises claims.
                    .with_for_update(skip_locked=True, of=jobs)
                ).first()
                if row is None:
                    return None
                if row.attempts >= row.max_attempts:
                    conn.execute(
                        update(jobs)
                        .where(jobs.c.id == row.id)
                        .values(
                            state=JobState.DEAD.value,
                            finished_at=at,
                            lease_owner=None,
                            lease_expires_at=None,
                            error=(
                                f"dead-lettered: its worker stopped heartbeating in each of "
                                f"{row.attempts} attempts (last worker {row.lease_owner})"
                            ),
                        )
                    )
                    audit.append(
                        conn,
                        actor="keel-worker",
                        action="job.dead_lettered",
                        subject_type="job",
                        subject_id=str(row.id),
                        details={"kind": row.kind, "attempts": row.attempts},
                    )
                    continue
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == row.id)
                    .values(
                        state=JobState.RUNNING.value,
                        attempts=row.attempts + 1,
                        lease_owner=owner,
                        lease_expires_at=at + lease,
                        heartbeat_at=at,
                        started_at=row.started_at or at,
                    )
                )
                claimed = conn.execute(select(jobs).where(jobs.c.id == row.id)).one()
            return _job(claimed)

    def heartbeat(
        self,
        job_id: int,
        owner: str,
        *,
        lease: timedelta,
        progress: str | None = None,
        now: datetime | None = None,
        attempt: int | None = None,
    ) -> bool:
        """Extend the lease (and note progress); False when ``owner`` no longer holds the job
        (its lease ran out and another worker took it, or a user cancelled it)."""
        at = now or _now()
        values: dict[str, Any] = {"heartbeat_at": at, "lease_expires_at": at + lease}
        if progress is not None:
            values["progress"] = progress[:MAX_PROGRESS_CHARS]
        with write_transaction(self._engine) as conn:
            done = conn.execute(
                update(jobs).where(*self._held(job_id, owner, attempt)).values(**values)
            ).rowcount
        return bool(done)

    def holds(self, job_id: int, owner: str, attempt: int | None = None) -> bool:
        """Whether ``owner`` still holds the job: checked before an effect that must happen once."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(jobs.c.id).where(*self._held(job_id, owner, attempt))).first()
        return row is not None

    def fence(self, job_id: int, owner: str, attempt: int) -> WriteGuard:
        """The check a handler's write transactions run first (`guarded_writes`): it raises
        `JobLost`, so the transaction writes nothing, unless ``owner`` still holds attempt
        ``attempt`` of the job."""

        def check(conn: Connection) -> None:
            held = conn.execute(
                select(jobs.c.id)
                .where(*self._held(job_id, owner, attempt))
                .with_for_update(of=jobs)
            ).first()
            if held is None:
                raise JobLost(
                    f"job {job_id} attempt {attempt} is no longer held by {owner}: "
                    "its effect is refused"
                )

        return check

    @staticmethod
    def _held(job_id: int, owner: str, attempt: int | None = None) -> tuple[Any, ...]:
        held = (
            jobs.c.id == job_id,
            jobs.c.lease_owner == owner,
            jobs.c.state == JobState.RUNNING.value,
        )
        return held if attempt is None else (*held, jobs.c.attempts == attempt)

    def finish(
        self,
        job_id: int,
        owner: str,
        state: JobState,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        now: datetime | None = None,
        attempt: int | None = None,
    ) -> bool:
        """Record the outcome if ``owner`` still holds (attempt ``attempt`` of) the job; False
        if it lost it."""
        assert state in (JobState.SUCCEEDED, JobState.FAILED)
        with write_transaction(self._engine) as conn:
            done = conn.execute(
                update(jobs)
                .where(*self._held(job_id, owner, attempt))
                .values(
                    state=state.value,
                    finished_at=now or _now(),
                    lease_expires_at=None,
                    result=None if result is None else dict(result),
                    error=None if error is None else error[:MAX_ERROR_CHARS],
                )
            ).rowcount
        return bool(done)

    def cancel(self, job_id: int, actor: str, now: datetime | None = None) -> Job:
        """Cancel a queued or running job (a running job's worker stops at its next heartbeat
        and its outcome is not recorded); a finished job is refused with 409 naming its state."""
        at = now or _now()
        with write_transaction(self._engine) as conn:
            row = conn.execute(
                select(jobs).where(jobs.c.id == job_id).with_for_update(of=jobs)
            ).first()
            if row is None:
                raise NotFound(
                    f"No job {job_id}. List jobs with `keel jobs list`.", {"job_id": job_id}
                )
            state = JobState(row.state)
            if state in FINISHED:
                raise Conflict(
                    f"Job {job_id} is already {state.value}; only a queued or running job can "
                    "be cancelled.",
                    {"job_id": job_id, "state": state.value},
                )
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(state=JobState.CANCELLED.value, finished_at=at, lease_expires_at=None)
            )
            audit.append(
                conn,
                actor=actor,
                action="job.cancelled",
                subject_type="job",
                subject_id=str(job_id),
                details={"kind": row.kind, "was": state.value},
            )
        return self.get(job_id)

    def queue_depth(self, now: datetime | None = None) -> list[QueueDepth]:
        """Queued jobs per kind and the age of the oldest, for /metrics."""
        at = now or _now()
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(jobs.c.kind, func.count(), func.min(jobs.c.created_at))
                .where(jobs.c.state == JobState.QUEUED.value)
                .group_by(jobs.c.kind)
                .order_by(jobs.c.kind)
            ).all()
        return [
            QueueDepth(kind, int(count), max(0.0, (at - codec.utc(oldest)).total_seconds()))
            for kind, count, oldest in rows
        ]

    def claim_period(
        self, name: str, period_start: datetime, owner: str, now: datetime | None = None
    ) -> bool:
        """True for the one worker, across every replica, that claims ``name`` for the period
        starting at ``period_start``; False for all the others."""
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(
                    scheduled_runs.insert().values(
                        name=name,
                        period_start=period_start,
                        claimed_by=owner,
                        claimed_at=now or _now(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def forget_periods_before(self, before: datetime) -> int:
        """Drop period claims older than ``before`` (they only matter while that period is
        current)."""
        with write_transaction(self._engine) as conn:
            return int(
                conn.execute(
                    scheduled_runs.delete().where(scheduled_runs.c.period_start < before)
                ).rowcount
            )
