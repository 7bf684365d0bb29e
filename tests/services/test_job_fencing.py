"""A worker that stalls past its lease (a long GC pause, a suspended process) while another
worker claims its job again and finishes it must not record the job's effects a second time.

Two `JobRunner`s share one queue in one process, with an injected clock: worker A claims the job
and is held right before its effect; the clock moves past A's lease; worker B claims the job
(attempt 2) and finishes it; then A resumes. A's effect is refused by the fence (its attempt is
no longer the job's), so the gate results and the retrained version exist once.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.services.governed_credit import MODEL, ROOT, promote_new_version, register, set_up
from tests.test_retrain_e2e import TRAIN, log_window, training_code

from keel.domain.jobs import JobState
from keel.services.backend import Backend
from keel.services.job_kinds import queue_gate_run, queue_retrain
from keel.worker.loop import JobRunner

DEADLINE_S = 120.0
STALLED = "worker-a"


class Clock:
    """The queue's clock, moved by the test: no sleeping while a lease runs out."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class Stall:
    """Wraps a call so that the first call from worker A's thread stops there until released."""

    def __init__(self, real: Callable[..., Any], *, before: bool) -> None:
        self.real = real
        self.before = before
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        stalls = threading.current_thread().name == STALLED and not self.reached.is_set()
        if stalls and self.before:
            self._hold()
        result = self.real(*args, **kwargs)
        if stalls and not self.before:
            self._hold()
        return result

    def _hold(self) -> None:
        self.reached.set()
        assert self.release.wait(DEADLINE_S), "the test never released worker A"


@pytest.fixture
def backend(empty_backend: Backend) -> Iterator[Backend]:
    set_up(empty_backend)
    clock = Clock(datetime.now(UTC))
    empty_backend.jobs.clock = clock
    # Heartbeats come every third of the lease in real time: an hour keeps them out of the test,
    # so the lease runs out only when the test moves the clock.
    empty_backend.jobs.lease = timedelta(hours=1)
    yield empty_backend


def _race(backend: Backend, job_id: int, stall: Stall) -> None:
    """A claims the job and stalls; the lease runs out; B claims and finishes it; A resumes."""
    worker_a = JobRunner(backend.jobs, name=STALLED)
    a_ran: list[int] = []
    thread = threading.Thread(target=lambda: a_ran.append(worker_a.run_pending()), name=STALLED)
    thread.start()
    try:
        assert stall.reached.wait(DEADLINE_S), "worker A never reached its effect"
        clock = backend.jobs.clock
        assert isinstance(clock, Clock)
        clock.at += timedelta(hours=2)
        assert JobRunner(backend.jobs, name="worker-b").run_pending() == 1
        finished = backend.jobs.store.get(job_id)
        assert (finished.state, finished.attempts, finished.lease_owner) == (
            JobState.SUCCEEDED,
            2,
            "worker-b",
        )
    finally:
        stall.release.set()
        thread.join(DEADLINE_S)
    assert not thread.is_alive()
    assert a_ran == [1]


def test_a_stalled_workers_gate_run_records_its_gates_once(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = register(backend, seed=1)
    stall = Stall(backend.governance._verdicts, before=False)
    monkeypatch.setattr(backend.governance, "_verdicts", stall)
    job = queue_gate_run(backend.jobs, backend.governance, ROOT, MODEL, version)

    _race(backend, job.id, stall)

    gates = [str(r.gate) for r in backend.governance.gate_results(MODEL, version)]
    assert gates and len(gates) == len(set(gates))
    recorded = backend.audit.events(ROOT, action="gate.run")
    assert sorted(e.details["gate"] for e in recorded) == sorted(gates)
    done = backend.jobs.store.get(job.id)
    assert done.state == JobState.SUCCEEDED
    assert done.result is not None and done.result["from_earlier_attempt"] is False


def test_a_stalled_workers_retraining_run_registers_one_version(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    promote_new_version(backend, seed=1)
    log_window(backend, 1, 300)
    code = training_code(tmp_path, "train.py", TRAIN)
    backend.retraining.set_job(
        ROOT,
        MODEL,
        command=[sys.executable, str(code / "train.py"), "--data", "{data}", "--out", "."],
        code_paths=[str(code)],
        timeout_s=120,
    )
    registry = backend.retraining.registry
    stall = Stall(registry.register_version, before=True)
    monkeypatch.setattr(registry, "register_version", stall)
    job = queue_retrain(backend.jobs, backend.retraining, ROOT, MODEL, None)

    _race(backend, job.id, stall)

    versions = sorted(v.version for v in backend.registry.list_versions(MODEL).items)
    assert versions == [1, 2]
    assert backend.registry.get_version(MODEL, 2).params["keel_job"] == f"job-{job.id}"
    done = backend.jobs.store.get(job.id)
    assert done.result is not None and done.result["registered_version"] == 2
    # Worker A's run never registered anything: its effect was refused.
    runs = backend.retraining.runs(ROOT, MODEL)
    assert [r.registered_version for r in runs if r.registered_version is not None] == [2]
