"""Jobs: long work (gate runs, retraining runs, monitor runs...) done by a worker, not a request.

A job is ``queued`` until a worker claims it with a lease; ``running`` while the worker holds the
lease (renewed by heartbeats); then ``succeeded`` or ``failed``. A job whose worker stopped
heartbeating is claimed again when the lease runs out, up to its ``max_attempts``; after that it
is ``dead`` (dead-lettered). ``cancelled`` is a user's doing. The last four are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobLost(Exception):
    """This worker no longer holds the job (its lease ran out and another worker claimed it, or
    a user cancelled it): it must stop and record nothing."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD, JobState.CANCELLED})


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    state: JobState
    attempts: int
    max_attempts: int
    created_by: str
    created_at: datetime
    idempotency_key: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    progress: str = ""
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class QueueDepth:
    """Queued jobs of one kind, and how long the oldest has waited."""

    kind: str
    queued: int
    oldest_age_seconds: float
