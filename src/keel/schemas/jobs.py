"""Wire models for jobs: long work the API queued (202) and a worker runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keel.schemas.base import WireOut

FINISHED_STATES = frozenset({"succeeded", "failed", "dead", "cancelled"})


class JobOut(WireOut):
    id: int
    kind: str
    state: str  # queued | running | succeeded | failed | dead | cancelled
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_owner: str | None
    heartbeat_at: datetime | None
    progress: str
    result: dict[str, Any] | None
    error: str | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES
