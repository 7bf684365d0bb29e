"""Jobs: long work queued by the API and done by a worker (`keel worker`, or the one in `keel up`).

The API answers ``202`` with the queued job; a worker claims it with a lease (`SqlJobStore`),
keeps the lease alive with heartbeats while the handler runs, and records the outcome. A worker
killed mid-job stops heartbeating, so another worker claims the job again once the lease runs
out, up to ``max_attempts``; then the job is dead-lettered.

A retried job runs its handler again, so handlers make their effects idempotent: before an effect
that must happen once (registering a version, recording gate results), a handler looks for the
effect of an earlier attempt (`JobContext.job` carries the id it tags its effects with) and
checks that it still holds the job (`JobContext.check`).

A check before an effect still leaves a gap: a worker that stalls right after it (a long GC
pause, a suspended process) may outlive its lease while another worker claims the job again and
records the effect. So the handler runs fenced: every write transaction it opens first checks,
inside that transaction, that this worker still holds this attempt of the job
(`SqlJobStore.fence`), and the stale worker's effect is refused with `JobLost`.

A handler's `KeelError` fails the job with that message (running it again would fail again);
any other exception fails it with the exception's type, and the traceback goes to the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from keel.domain.jobs import Job, JobLost, JobState, QueueDepth
from keel.domain.permissions import Permission, Principal, authorize
from keel.errors import InvalidInput, KeelError
from keel.store.sql.engine import guarded_writes
from keel.store.sql.jobs import SqlJobStore

__all__ = ["Handler", "JobContext", "JobLost", "Jobs"]

log = logging.getLogger("keel.jobs")

DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 3
MAX_LIST = 500


def _wall() -> datetime:
    return datetime.now(UTC)


@dataclass
class JobContext:
    """What a handler gets besides the job: progress reports and the lease check."""

    job: Job
    owner: str
    _store: SqlJobStore
    _lease: timedelta
    _clock: Callable[[], datetime] = _wall
    _lost: threading.Event = field(default_factory=threading.Event)

    def progress(self, message: str) -> None:
        """Note progress (shown by `keel jobs wait`); raises `JobLost` if the job is lost."""
        held = self._store.heartbeat(
            self.job.id,
            self.owner,
            lease=self._lease,
            progress=message,
            now=self._clock(),
            attempt=self.job.attempts,
        )
        if not held:
            self._lost.set()
        self.check()

    def check(self) -> None:
        """Raise `JobLost` unless this worker still holds the job; call it before an effect."""
        if self._lost.is_set() or not self._store.holds(self.job.id, self.owner, self.job.attempts):
            self._lost.set()
            raise JobLost(f"job {self.job.id} is no longer held by {self.owner}")


Handler = Callable[[JobContext], Mapping[str, Any]]


class Jobs:
    def __init__(
        self,
        store: SqlJobStore,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        clock: Callable[[], datetime] = _wall,
    ) -> None:
        self.store = store
        # Leases are stamped and compared in this clock's time (tests inject one).
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self._handlers: dict[str, Handler] = {}

    def handle(self, kind: str, handler: Handler) -> None:
        """Register the handler of ``kind`` (one per kind; services register theirs)."""
        self._handlers[kind] = handler

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    # -- the API side ------------------------------------------------------------------------

    def submit(
        self,
        by: Principal,
        kind: str,
        payload: Mapping[str, Any],
        *,
        team: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Queue a job of ``kind`` (the caller already checked ``by`` may ask for it)."""
        if kind not in self._handlers:
            raise InvalidInput(
                f"No job kind {kind!r}; the kinds are {', '.join(self.kinds)}.", {"kind": kind}
            )
        job, _ = self.store.enqueue(
            kind,
            {**payload, "team": team, "requested_by": by.name},
            actor=by.name,
            max_attempts=self.max_attempts,
            idempotency_key=idempotency_key,
        )
        return job

    def get(self, by: Principal, job_id: int) -> Job:
        authorize(by, Permission.READ)
        return self.store.get(job_id)

    def list_jobs(
        self,
        by: Principal,
        *,
        state: str | None = None,
        kind: str | None = None,
        limit: int = 50,
    ) -> list[Job]:
        authorize(by, Permission.READ)
        wanted: JobState | None = None
        if state is not None:
            try:
                wanted = JobState(state)
            except ValueError:
                raise InvalidInput(
                    f"The 'state' must be one of {', '.join(s.value for s in JobState)}. "
                    f"Got {state!r} instead.",
                    {"field": "state"},
                ) from None
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(
                f"The 'limit' must be between 1 and {MAX_LIST}. Got {limit} instead.",
                {"field": "limit"},
            )
        return self.store.list_jobs(state=wanted, kind=kind, limit=limit)

    def cancel(self, by: Principal, job_id: int) -> Job:
        """Cancel a queued or running job: its requester, or a writer of its model's team."""
        job = self.store.get(job_id)
        if job.created_by != by.name:
            authorize(by, Permission.WRITE, job.payload.get("team"))
        return self.store.cancel(job_id, by.name)

    def queue_depth(self) -> list[QueueDepth]:
        return self.store.queue_depth()

    # -- the worker side ---------------------------------------------------------------------

    def run_next(self, owner: str) -> Job | None:
        """Claim one job and run it to its end; None when nothing was claimable."""
        job = self.store.claim(owner, lease=self.lease, now=self.clock())
        if job is None:
            return None
        context = JobContext(job, owner, self.store, self.lease, self.clock)
        beating = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(context, beating), name=f"keel-job-{job.id}", daemon=True
        )
        beat.start()
        try:
            self._run(context)
        finally:
            beating.set()
            beat.join()
        return self.store.get(job.id)

    def _heartbeat(self, context: JobContext, stop: threading.Event) -> None:
        # A third of the lease: two heartbeats may be missed (a slow database) before another
        # worker can claim the job.
        every = self.lease.total_seconds() / 3
        while not stop.wait(every):
            held = self.store.heartbeat(
                context.job.id,
                context.owner,
                lease=self.lease,
                now=self.clock(),
                attempt=context.job.attempts,
            )
            if not held:
                context._lost.set()
                return

    def _run(self, context: JobContext) -> None:
        job = context.job
        handler = self._handlers.get(job.kind)
        if handler is None:
            missing = f"this worker has no handler for job kind {job.kind!r}"
            self._finish(context, JobState.FAILED, None, missing)
            return
        try:
            with guarded_writes(self.store.fence(job.id, context.owner, job.attempts)):
                result = handler(context)
        except JobLost:
            log.warning("job %d (%s): lost its lease or was cancelled; stopped", job.id, job.kind)
            return
        except KeelError as exc:
            # The error's envelope is kept, so the SDK raises the same error class a
            # synchronous call raised before the work became a job.
            failure = {"error": exc.envelope()["error"], "status": exc.status}
            self._finish(context, JobState.FAILED, failure, exc.message)
            return
        except Exception as exc:
            log.exception("job %d (%s) failed", job.id, job.kind)
            self._finish(context, JobState.FAILED, None, f"{type(exc).__name__}: {exc}")
            return
        self._finish(context, JobState.SUCCEEDED, result, None)

    def _finish(
        self,
        context: JobContext,
        state: JobState,
        result: Mapping[str, Any] | None,
        error: str | None,
    ) -> None:
        job = context.job
        recorded = self.store.finish(
            job.id,
            context.owner,
            state,
            result=result,
            error=error,
            now=self.clock(),
            attempt=job.attempts,
        )
        if not recorded:
            log.warning("job %d (%s): finished after losing its lease", job.id, job.kind)
