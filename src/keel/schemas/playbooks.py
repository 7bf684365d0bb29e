"""Wire models for playbooks, dry runs, rollback and retraining."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from keel.schemas.base import Id, WireIn, WireOut

MAX_PLAYBOOK_CHARS = 100_000


class PlaybookIn(WireIn):
    """A playbook's YAML text; ``filename`` is only used in error messages."""

    source: Annotated[str, Field(max_length=MAX_PLAYBOOK_CHARS)]
    filename: Annotated[str, Field(max_length=256)] = "playbook.yaml"


class PlaybookOut(WireOut):
    id: int
    name: str
    version: int
    scope: str
    target: str
    enabled: bool
    source: str
    document: dict[str, Any]
    created_by: str
    created_at: datetime


class PlaybookTestIn(WireIn):
    """A dry run: what the playbook would do for the incident."""

    source: Annotated[str, Field(max_length=MAX_PLAYBOOK_CHARS)]
    incident_id: Id
    filename: Annotated[str, Field(max_length=256)] = "playbook.yaml"


class PlannedActionOut(WireOut):
    index: int
    action: str
    would: str


class DryRunOut(WireOut):
    playbook: str
    incident_id: int
    matches: bool
    reason: str
    actions: list[PlannedActionOut]


class RollbackIn(WireIn):
    reason: Annotated[str, Field(max_length=10_000)]
    incident_id: Id | None = None


class RetrainingJobIn(WireIn):
    """Exactly one of ``command`` (argument list with placeholders; admins only) or
    ``webhook: true`` (writers of the model's team). ``code_paths``: absolute paths on the
    server the command's sandbox may read (the training code)."""

    command: (
        Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=200)] | None
    ) = None
    webhook: bool = False
    code_paths: Annotated[
        list[Annotated[str, Field(max_length=4096)]], Field(max_length=20, default_factory=list)
    ]
    memory_mb: int = 4096
    timeout_s: int = 3600
    window_days: int = 7
    schedule_every_s: int | None = None


class RetrainingJobOut(WireOut):
    model: str
    kind: str
    command: list[str]
    code_paths: list[str]
    memory_mb: int
    timeout_s: int
    window_days: int
    schedule_every_s: int | None
    updated_by: str
    updated_at: datetime


class RetrainIn(WireIn):
    incident_id: Id | None = None


class RetrainRunOut(WireOut):
    id: int
    model: str
    trigger: str
    incident_id: int | None
    window_start: datetime
    window_end: datetime
    data_dir: str
    status: str
    started_by: str
    started_at: datetime
    finished_at: datetime | None
    exit_code: int | None
    output_tail: str
    registered_version: int | None
    reason: str
