"""Wire models for users, service accounts, role grants, tokens and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from keel.domain.permissions import PrincipalKind, Role
from keel.schemas.base import WireIn, WireOut


class PrincipalIn(WireIn):
    name: str = Field(max_length=128)
    kind: PrincipalKind = PrincipalKind.USER


class GrantSpec(WireOut):
    role: Role
    team: str | None = None


class GrantIn(WireIn):
    role: Role
    team: str | None = Field(default=None, max_length=128)


class PrincipalOut(WireOut):
    name: str
    kind: PrincipalKind
    grants: list[GrantSpec]


class TokenIn(WireIn):
    name: str = Field(default="default", min_length=1, max_length=128)
    principal: str | None = Field(
        default=None, max_length=128, description="Whose token (admins only); default: yours."
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(WireOut):
    id: int
    principal: str
    name: str
    hint: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class TokenCreated(WireOut):
    token: str = Field(repr=False, description="Shown once: Keel keeps only its SHA-256.")
    info: TokenOut


class AuditEventOut(WireOut):
    seq: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(WireOut):
    items: list[AuditEventOut]
    next_cursor: str | None = None


class AuditHead(WireOut):
    seq: int
    hash: str
    anchor: str = Field(description="SEQ:HASH, to write down and pass to verify later.")


class AuditVerification(WireOut):
    intact: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""
    kind: str = Field(
        default="",
        description="When not intact: edited, deleted, reordered, forged, rewritten, truncated, "
        "bad-checkpoint or wrong-key.",
    )
    signed: int = Field(default=0, description="Events whose signature the audit key confirms.")
    unsigned_legacy: int = Field(
        default=0, description="Events written before Keel signed events (not tampering)."
    )
    checkpoint_seq: int | None = Field(
        default=None, description="The newest signed checkpoint's event, if any."
    )
    checkpoint_at: datetime | None = None


class AuditCheckpoint(WireOut):
    """A signed statement that the chain's head was event ``seq`` with ``hash`` at ``at``."""

    seq: int
    hash: str
    at: datetime
    unsigned_until: int = Field(description="Events up to here were written before signing.")
    key_id: str = Field(description="Names the audit key that signed it (not the key).")
    signature: str
