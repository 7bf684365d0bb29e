"""A real job runner (the worker's queue half) in a thread, for tests that drive the app
in-process: the API answers 202 with a job, and this runs it as `keel up`'s worker would."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from keel.services.backend import Backend
from keel.worker.loop import JobRunner

DEADLINE_S = 120.0


@contextlib.contextmanager
def running_jobs(backend: Backend) -> Iterator[JobRunner]:
    runner = JobRunner(backend.jobs, name="test-worker", poll_seconds=0.02)
    thread = threading.Thread(target=runner.run_forever, name="test-jobs", daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        runner.stop()
        thread.join(timeout=DEADLINE_S)
        assert not thread.is_alive(), "the test's job runner did not stop"


def finished_job(
    client: Any,
    job_id: int,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = DEADLINE_S,
) -> dict[str, Any]:
    """Poll ``GET /api/v1/jobs/{id}`` through a TestClient until the job is finished."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.get(f"/api/v1/jobs/{job_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        if job["state"] in ("succeeded", "failed", "dead", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']}"
        time.sleep(0.02)  # spaces out the polls; the deadline above decides


def monitor_run(
    client: Any, model: str, body: dict[str, Any], *, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """``POST /models/{model}/monitors/run`` (202: a job), then the finished job's result: the
    run's status and points, as the synchronous route answered before it became a job."""
    queued = client.post(f"/api/v1/models/{model}/monitors/run", json=body, headers=headers)
    assert queued.status_code == 202, queued.text
    job = finished_job(client, queued.json()["id"], headers=headers)
    assert job["state"] == "succeeded", job
    return dict(job["result"])
