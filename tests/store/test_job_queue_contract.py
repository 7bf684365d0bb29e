"""The job queue's contract, on SQLite and PostgreSQL: leases, fencing, retries, dead letters,
cancelling, idempotency keys and the once-per-period claims of scheduled work."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from keel.domain.jobs import JobState
from keel.errors import Conflict, NotFound
from keel.store.sql.jobs import SqlJobStore
from keel.store.sql.tables import audit_events

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


@pytest.fixture
def queue(engine: Engine) -> SqlJobStore:
    return SqlJobStore(engine)


def _queue(queue: SqlJobStore, n: int = 1, *, max_attempts: int = 3) -> list[int]:
    return [
        queue.enqueue("gate-run", {"n": i}, actor="dana", max_attempts=max_attempts, now=T0)[0].id
        for i in range(n)
    ]


def test_a_claimed_job_is_not_claimed_again_while_its_lease_holds(queue: SqlJobStore) -> None:
    (job_id,) = _queue(queue)
    claimed = queue.claim("w1", lease=LEASE, now=T0)
    assert claimed is not None
    assert (claimed.id, claimed.state, claimed.attempts) == (job_id, JobState.RUNNING, 1)
    assert queue.claim("w2", lease=LEASE, now=T0 + timedelta(seconds=29)) is None
    assert queue.heartbeat(job_id, "w1", lease=LEASE, progress="half", now=T0 + LEASE / 2)
    # The heartbeat moved the lease: still held after the first lease would have ended.
    assert queue.claim("w2", lease=LEASE, now=T0 + timedelta(seconds=40)) is None
    assert queue.finish(job_id, "w1", JobState.SUCCEEDED, result={"ok": True})
    done = queue.get(job_id)
    assert (done.state, done.result, done.progress) == (JobState.SUCCEEDED, {"ok": True}, "half")
    assert queue.claim("w2", lease=LEASE, now=T0 + timedelta(hours=1)) is None


def test_a_silent_workers_job_is_retried_and_the_old_worker_is_fenced_out(
    queue: SqlJobStore,
) -> None:
    (job_id,) = _queue(queue)
    assert queue.claim("killed", lease=LEASE, now=T0) is not None
    retried = queue.claim("alive", lease=LEASE, now=T0 + LEASE + timedelta(seconds=1))
    assert retried is not None
    assert (retried.id, retried.attempts, retried.lease_owner) == (job_id, 2, "alive")
    # The first worker wakes up: it can neither extend nor finish what it no longer holds.
    assert not queue.heartbeat(job_id, "killed", lease=LEASE)
    assert not queue.holds(job_id, "killed")
    assert not queue.finish(job_id, "killed", JobState.SUCCEEDED, result={"twice": True})
    assert queue.finish(job_id, "alive", JobState.SUCCEEDED, result={"once": True})
    assert queue.get(job_id).result == {"once": True}


def test_a_job_that_exhausts_its_attempts_is_dead_lettered_and_audited(
    queue: SqlJobStore, engine: Engine
) -> None:
    (job_id,) = _queue(queue, max_attempts=2)
    at = T0
    for owner in ("w1", "w2"):
        assert queue.claim(owner, lease=LEASE, now=at) is not None
        at += LEASE + timedelta(seconds=1)
    assert queue.claim("w3", lease=LEASE, now=at) is None
    dead = queue.get(job_id)
    assert (dead.state, dead.attempts) == (JobState.DEAD, 2)
    assert dead.error is not None and "w2" in dead.error
    with engine.connect() as conn:
        actions = conn.execute(
            select(audit_events.c.action).where(audit_events.c.subject_id == str(job_id))
        ).scalars()
        assert list(actions) == ["job.dead_lettered"]


def test_cancelling_a_queued_job_and_refusing_a_finished_one(queue: SqlJobStore) -> None:
    first, second = _queue(queue, 2)
    assert queue.cancel(first, "dana").state == JobState.CANCELLED
    claimed = queue.claim("w1", lease=LEASE, now=T0)
    assert claimed is not None and claimed.id == second  # the cancelled job is never run
    assert queue.finish(second, "w1", JobState.FAILED, error="boom")
    for job_id, state in ((first, "cancelled"), (second, "failed")):
        with pytest.raises(Conflict) as refused:
            queue.cancel(job_id, "dana")
        assert refused.value.details == {"job_id": job_id, "state": state}
        assert f"already {state}" in refused.value.message
    with pytest.raises(NotFound):
        queue.cancel(10**6, "dana")
    with pytest.raises(NotFound):
        queue.get(10**6)


def test_cancelling_a_running_job_fences_its_worker_out(queue: SqlJobStore) -> None:
    (job_id,) = _queue(queue)
    assert queue.claim("w1", lease=LEASE, now=T0) is not None
    assert queue.cancel(job_id, "dana").state == JobState.CANCELLED
    assert not queue.heartbeat(job_id, "w1", lease=LEASE)
    assert not queue.finish(job_id, "w1", JobState.SUCCEEDED, result={})
    assert queue.get(job_id).state == JobState.CANCELLED


def test_an_idempotency_key_queues_one_job(queue: SqlJobStore) -> None:
    first, new = queue.enqueue("retrain", {}, actor="s", max_attempts=3, idempotency_key="k")
    again, new_again = queue.enqueue("retrain", {}, actor="s", max_attempts=3, idempotency_key="k")
    assert (new, new_again, again.id) == (True, False, first.id)
    assert len(queue.list_jobs()) == 1


def test_concurrent_workers_claim_each_job_exactly_once(queue: SqlJobStore) -> None:
    ids = set(_queue(queue, 12))
    claimed: dict[str, list[int]] = {}

    def work(owner: str) -> None:
        mine = claimed.setdefault(owner, [])
        while (job := queue.claim(owner, lease=LEASE)) is not None:
            mine.append(job.id)
            assert queue.finish(job.id, owner, JobState.SUCCEEDED, result={})

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [job_id for jobs in claimed.values() for job_id in jobs]
    assert sorted(every) == sorted(ids)  # none lost, none twice
    assert {j.attempts for j in queue.list_jobs()} == {1}


def test_one_worker_claims_each_period_of_scheduled_work(queue: SqlJobStore) -> None:
    assert queue.claim_period("monitors", T0, "w1")
    assert not queue.claim_period("monitors", T0, "w2")
    assert queue.claim_period("monitors", T0 + timedelta(seconds=30), "w2")
    assert queue.claim_period("retention", T0, "w2")
    assert queue.forget_periods_before(T0 + timedelta(seconds=1)) == 2


def test_queue_depth_counts_queued_jobs_per_kind_and_the_oldest_age(queue: SqlJobStore) -> None:
    _queue(queue, 2)
    queue.enqueue("retrain", {}, actor="s", max_attempts=3, now=T0 + timedelta(seconds=50))
    assert queue.claim("w1", lease=LEASE, now=T0) is not None  # one gate run is running
    depth = {d.kind: d for d in queue.queue_depth(now=T0 + timedelta(seconds=60))}
    assert (depth["gate-run"].queued, depth["gate-run"].oldest_age_seconds) == (1, 60.0)
    assert (depth["retrain"].queued, depth["retrain"].oldest_age_seconds) == (1, 10.0)
