"""The audit trail: read it, and prove nobody rewrote it."""

from __future__ import annotations

from datetime import datetime

from keel.domain.audit import AuditEvent, Verification, verify_chain
from keel.domain.permissions import Permission, Principal, authorize
from keel.errors import InvalidInput
from keel.store.sql.audit import SqlAuditLog


def parse_anchor(anchor: str) -> tuple[int, str]:
    """``SEQ:HASH`` as printed by ``keel audit head``.

    >>> parse_anchor("12:" + "a" * 64)[0]
    12
    """
    seq, _, digest = anchor.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise InvalidInput(
            f"An anchor is SEQ:HASH as printed by `keel audit head`. Got {anchor!r}.",
            {"field": "anchor"},
        )
    return int(seq), digest


class AuditTrail:
    def __init__(self, log: SqlAuditLog) -> None:
        self.log = log

    def events(
        self,
        by: Principal,
        *,
        actor: str | None = None,
        action: str | None = None,
        subject_type: str | None = None,
        subject_id: str | None = None,
        since: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[AuditEvent]:
        authorize(by, Permission.ADMIN)
        return self.log.events(
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            since=since,
            after_seq=after_seq,
            limit=limit,
        )

    def head(self, by: Principal) -> tuple[int, str]:
        authorize(by, Permission.ADMIN)
        return self.log.head()

    def verify(self, by: Principal, anchor: tuple[int, str] | None = None) -> Verification:
        authorize(by, Permission.ADMIN)
        return verify_chain(self.log.walk(), expected_head=self.log.head(), anchor=anchor)
