"""Jobs over REST: list, show and cancel the long work the API queued (answers of 202)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from keel.api.deps import Reader, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.jobs import Job
from keel.schemas.base import Id
from keel.schemas.jobs import JobOut
from keel.services.backend import Backend

BackendDep = Annotated[Backend, Depends(get_backend)]
router = APIRouter(prefix=API_PREFIX, tags=["jobs"])


def job_out(job: Job) -> JobOut:
    return JobOut.model_validate(job, from_attributes=True)


@router.get("/jobs", summary="Jobs, newest first (filter by state and kind)")
def list_jobs(
    backend: BackendDep,
    caller: Reader,
    state: Annotated[str | None, Query(max_length=16)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query()] = 50,
) -> list[JobOut]:
    return [job_out(j) for j in backend.jobs.list_jobs(caller, state=state, kind=kind, limit=limit)]


@router.get("/jobs/{job_id}", summary="A job: its state, progress, result or error")
def get_job(job_id: Id, backend: BackendDep, caller: Reader) -> JobOut:
    return job_out(backend.jobs.get(caller, job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    summary="Cancel a queued or running job (409 naming the state of a finished one)",
)
def cancel_job(job_id: Id, backend: BackendDep, caller: Writer) -> JobOut:
    return job_out(backend.jobs.cancel(caller, job_id))
