"""Wire models for users, service accounts, role grants, tokens and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keel.domain.permissions import PrincipalKind, Role


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PrincipalIn(_In):
    name: str = Field(max_length=128)
    kind: PrincipalKind = PrincipalKind.USER


class GrantSpec(_Out):
    role: Role
    team: str | None = None


class GrantIn(_In):
    role: Role
    team: str | None = Field(default=None, max_length=128)


class PrincipalOut(_Out):
    name: str
    kind: PrincipalKind
    grants: list[GrantSpec]


class TokenIn(_In):
    name: str = Field(default="default", min_length=1, max_length=128)
    principal: str | None = Field(
        default=None, max_length=128, description="Whose token (admins only); default: yours."
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(_Out):
    id: int
    principal: str
    name: str
    hint: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class TokenCreated(_Out):
    token: str = Field(repr=False, description="Shown once: Keel keeps only its SHA-256.")
    info: TokenOut


class AuditEventOut(_Out):
    seq: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(_Out):
    items: list[AuditEventOut]
    next_cursor: str | None = None


class AuditHead(_Out):
    seq: int
    hash: str
    anchor: str = Field(description="SEQ:HASH, to write down and pass to verify later.")


class AuditVerification(_Out):
    intact: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""
