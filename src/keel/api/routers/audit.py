"""The audit trail: read it, take its head as an anchor, checkpoint it, verify the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from keel.api.deps import Admin, AuditDep
from keel.api.routers import API_PREFIX
from keel.schemas import (
    AuditCheckpoint,
    AuditEventOut,
    AuditHead,
    AuditPage,
    AuditVerification,
)
from keel.services.audit import parse_anchor

router = APIRouter(prefix=f"{API_PREFIX}/audit", tags=["audit"])


@router.get("", summary="Audit events, oldest first, filtered")
def audit_log(
    audit: AuditDep,
    caller: Admin,
    actor: str | None = None,
    action: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    since: datetime | None = None,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    events = audit.events(
        caller,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        since=since,
        after_seq=int(cursor or 0),
        limit=limit,
    )
    items = [AuditEventOut(**vars(e)) for e in events]
    return AuditPage(items=items, next_cursor=str(items[-1].seq) if len(items) == limit else None)


@router.get("/head", summary="The newest event's seq and hash, to anchor elsewhere")
def audit_head(audit: AuditDep, caller: Admin) -> AuditHead:
    seq, digest = audit.head(caller)
    return AuditHead(seq=seq, hash=digest, anchor=f"{seq}:{digest}")


@router.get("/verify", summary="Walk the hash chain; report the first event that does not hold")
def audit_verify(
    audit: AuditDep,
    caller: Admin,
    anchor: Annotated[str | None, Query(description="SEQ:HASH from an earlier head")] = None,
) -> AuditVerification:
    result = audit.verify(caller, parse_anchor(anchor) if anchor else None)
    return AuditVerification(**vars(result))


@router.post(
    "/checkpoints",
    status_code=201,
    summary="Sign the current head with the audit key and export it as a checkpoint",
    responses={409: {"description": "The chain does not verify: no checkpoint is written"}},
)
def audit_checkpoint(audit: AuditDep, caller: Admin) -> AuditCheckpoint:
    return AuditCheckpoint(**vars(audit.checkpoint(caller)))
