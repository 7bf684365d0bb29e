"""Jobs from Python: follow the long work the server queued (gate runs, retraining runs).

These are methods of `keel.sdk.Client` (mixed in), e.g.::

    job = keel.start_retrain("credit")      # answered at once: the job, queued
    done = keel.wait_for_job(job.id, on_progress=print)
    run = keel.retrain("credit")            # the same, waiting (the default)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from keel.errors import KeelError, TransportError, error_from_envelope
from keel.schemas.jobs import JobOut

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"
# Polling starts fast (a gate run takes seconds) and backs off to this.
MAX_POLL_SECONDS = 2.0


class _Http(Protocol):
    url: str

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


def raise_if_unsuccessful(job: JobOut) -> JobOut:
    """The job if it succeeded; else the error it failed with (the same class a synchronous
    call raised), or a `KeelError` saying it was dead-lettered or cancelled."""
    if job.state == "succeeded":
        return job
    failure = job.result or {}
    if job.state == "failed" and isinstance(failure.get("error"), dict):
        raise error_from_envelope(int(failure.get("status") or 500), {"error": failure["error"]})
    raise KeelError(
        f"Job {job.id} ({job.kind}) ended {job.state}: {job.error or 'no error recorded'}",
        {"job_id": job.id, "state": job.state},
    )


class JobCalls:
    """The jobs part of `keel.sdk.Client`."""

    def get_job(self: _Http, job_id: int) -> JobOut:
        """One job: its state, progress, result or error."""
        return self._parse(JobOut, self._json("GET", f"{_API}/jobs/{int(job_id)}"))

    def list_jobs(
        self: _Http, *, state: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[JobOut]:
        """Jobs, newest first."""
        query: dict[str, Any] = {"limit": limit}
        if state is not None:
            query["state"] = state
        if kind is not None:
            query["kind"] = kind
        data = self._json("GET", f"{_API}/jobs", params=query)
        if not isinstance(data, list):
            raise TransportError(f"The server at {self.url} answered a listing with {data!r}.")
        return [self._parse(JobOut, item) for item in data]

    def cancel_job(self: _Http, job_id: int) -> JobOut:
        """Cancel a queued or running job (a finished one: `Conflict` naming its state)."""
        return self._parse(JobOut, self._json("POST", f"{_API}/jobs/{int(job_id)}/cancel"))

    def wait_for_job(
        self: _Http,
        job_id: int,
        *,
        timeout: float | None = None,
        on_progress: Callable[[JobOut], None] | None = None,
    ) -> JobOut:
        """Poll the job until it is finished (or ``timeout`` seconds pass: `TimeoutError`);
        ``on_progress`` sees each new state or progress message. Returns the finished job
        whatever its state; `raise_if_unsuccessful` turns a failure into its error."""
        return wait_for(self, job_id, timeout=timeout, on_progress=on_progress)


def wait_for(
    http: _Http,
    job_id: int,
    *,
    timeout: float | None = None,
    on_progress: Callable[[JobOut], None] | None = None,
) -> JobOut:
    """`JobCalls.wait_for_job` for the other parts of the client."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause, seen = 0.05, ("", "")
    while True:
        job = http._parse(JobOut, http._json("GET", f"{_API}/jobs/{int(job_id)}"))
        if on_progress is not None and (job.state, job.progress) != seen:
            seen = (job.state, job.progress)
            on_progress(job)
        if job.finished:
            return job
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(
                f"Job {job_id} is still {job.state} after {timeout:g}s; follow it with "
                f"`keel jobs wait {job_id}`."
            )
        time.sleep(pause)
        pause = min(pause * 2, MAX_POLL_SECONDS)
