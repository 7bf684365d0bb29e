"""The audit trail: read it, checkpoint it, and prove nobody rewrote it.

A checkpoint is only signed over a chain that verifies from the previous checkpoint on, so a
checkpoint never launders tampering that happened before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from keel.domain.audit import AuditEvent, Verification, now, verify_chain
from keel.domain.audit_checkpoints import AuditKey, Checkpoint
from keel.domain.permissions import Permission, Principal, authorize
from keel.errors import Conflict, InvalidInput
from keel.store.audit_checkpoints import CheckpointFile, CheckpointFileDamaged
from keel.store.sql.audit import SqlAuditLog

# Told of every checkpoint written, e.g. `Notifications.emit` (webhook receivers as witnesses).
CheckpointListener = Callable[[str, Mapping[str, Any]], object]


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
    def __init__(self, log: SqlAuditLog, key: AuditKey, checkpoints: CheckpointFile) -> None:
        self.log = log
        self.key = key
        self.checkpoints = checkpoints
        self._listeners: list[CheckpointListener] = []

    def add_listener(self, listener: CheckpointListener) -> None:
        """Call ``listener("audit.checkpoint", checkpoint)`` after each checkpoint is written."""
        self._listeners.append(listener)

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
        """The whole chain, its signatures, and every exported checkpoint."""
        authorize(by, Permission.ADMIN)
        try:
            checkpoints = self.checkpoints.read()
        except CheckpointFileDamaged as damaged:
            head_seq, head_hash = self.log.head()
            return Verification(
                False, 0, head_seq, head_hash, None, damaged.message, "bad-checkpoint"
            )
        return verify_chain(
            self.log.walk(),
            expected_head=self.log.head(),
            anchor=anchor,
            key=self.key,
            checkpoints=checkpoints,
        )

    def checkpoint(self, by: Principal) -> Checkpoint:
        """Sign and export the current head now (`keel audit checkpoint`)."""
        authorize(by, Permission.ADMIN)
        checkpoint = self._take(only_if_moved=False)
        assert checkpoint is not None
        return checkpoint

    def checkpoint_if_moved(self) -> Checkpoint | None:
        """The worker's periodic checkpoint: written only when the head moved since the last."""
        return self._take(only_if_moved=True)

    def _take(self, *, only_if_moved: bool) -> Checkpoint | None:
        try:
            previous = self.checkpoints.read()
        except CheckpointFileDamaged as damaged:
            raise Conflict(
                f"No checkpoint written: {damaged.message} Run `keel audit verify`.",
                damaged.details,
            ) from None
        latest = max(previous, key=lambda c: (c.seq, c.at), default=None)
        head = self.log.head()
        if only_if_moved and latest is not None and (latest.seq, latest.hash) == head:
            return None
        unsigned_until = self.log.unsigned_until()
        result = self._verify_since(latest, head)
        if not result.intact:
            raise Conflict(
                f"No checkpoint written: the audit trail breaks at seq {result.broken_seq} "
                f"({result.kind}): {result.reason}. Run `keel audit verify`.",
                {"broken_seq": result.broken_seq, "kind": result.kind},
            )
        checkpoint = self.key.checkpoint(head[0], head[1], now(), unsigned_until)
        self.checkpoints.append(checkpoint)
        for listener in self._listeners:
            listener("audit.checkpoint", checkpoint.to_json())
        return checkpoint

    def _verify_since(self, latest: Checkpoint | None, head: tuple[int, str]) -> Verification:
        """Verify only what the newest checkpoint does not already vouch for."""
        if latest is None:
            return verify_chain(self.log.walk(), expected_head=head, key=self.key)
        start = self.log.event(latest.seq) if latest.seq else None
        if latest.seq and (start is None or start.hash != latest.hash):
            # The full walk names the first bad event and the kind of tampering.
            return verify_chain(
                self.log.walk(), expected_head=head, key=self.key, checkpoints=[latest]
            )
        return verify_chain(
            self.log.walk(after_seq=latest.seq),
            expected_head=head,
            key=self.key,
            checkpoints=[latest],
            start=(latest.seq, latest.hash),
        )
