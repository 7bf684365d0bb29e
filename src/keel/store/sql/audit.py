"""Append to and read the audit chain, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Select, func, select, update

from keel.domain.audit import AuditEvent, event_hash, now, redact
from keel.domain.audit_checkpoints import AuditKey
from keel.store.sql import codec
from keel.store.sql.engine import read_transaction
from keel.store.sql.tables import audit_events, audit_head

# The key each engine's appends sign with. Events are appended by every store, inside its own
# transaction, from ~45 places that hold only a Connection; keying the signer by the engine they
# write through keeps the key out of all of them (and out of the database).
_signers: WeakKeyDictionary[Engine, AuditKey] = WeakKeyDictionary()


# The API route a request came through, when it is not Keel's own (the MLflow-compatible API):
# every event the request appends names it, so the trail shows which door a change came in by.
_route: ContextVar[str | None] = ContextVar("keel_audit_route", default=None)


@contextmanager
def recorded_route(route: str) -> Iterator[None]:
    """Name ``route`` in the details of every event appended inside this block."""
    token = _route.set(route)
    try:
        yield
    finally:
        _route.reset(token)


def sign_with(engine: Engine, key: AuditKey) -> None:
    """Sign every event appended through ``engine`` from now on with ``key``."""
    _signers[engine] = key


def append(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the same transaction as the change it records.

    If the change rolls back, so does its event; two concurrent appends are serialised by the
    head row's lock, so the chain never forks.
    """
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=audit_head.c.seq + 1))
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
    seq, prev_hash = int(head.seq), str(head.hash)
    at = now()
    route = _route.get()
    clean = redact({**(details or {}), "route": route} if route else (details or {}))
    digest = event_hash(
        prev_hash,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        details=clean,
    )
    key = _signers.get(conn.engine)
    signature = key.sign_event(digest) if key is not None else None
    conn.execute(
        audit_events.insert().values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            details=clean,
            prev_hash=prev_hash,
            hash=digest,
            signature=signature,
        )
    )
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values(hash=digest))
    return AuditEvent(
        seq, at, actor, action, subject_type, subject_id, clean, prev_hash, digest, signature
    )


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        seq=int(row.seq),
        at=codec.utc(row.at),
        actor=row.actor,
        action=row.action,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        details=dict(row.details),
        prev_hash=row.prev_hash,
        hash=row.hash,
        signature=row.signature,
    )


class SqlAuditLog:
    """Reading the chain: filtered pages for people, the full walk for verification."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def head(self) -> tuple[int, str]:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
        return int(row.seq), str(row.hash)

    def events(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        subject_type: str | None = None,
        subject_id: str | None = None,
        since: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[AuditEvent]:
        stmt: Select[Any] = (
            select(audit_events)
            .where(audit_events.c.seq > after_seq)
            .order_by(audit_events.c.seq)
            .limit(limit)
        )
        if actor:
            stmt = stmt.where(audit_events.c.actor == actor)
        if action:
            stmt = stmt.where(audit_events.c.action == action)
        if subject_type:
            stmt = stmt.where(audit_events.c.subject_type == subject_type)
        if subject_id:
            stmt = stmt.where(audit_events.c.subject_id == subject_id)
        if since:
            # SQLite compares stored times as text, so compare in UTC like they were written.
            utc = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
            stmt = stmt.where(audit_events.c.at >= utc)
        with read_transaction(self._engine) as conn:
            return [_event(r) for r in conn.execute(stmt)]

    def event(self, seq: int) -> AuditEvent | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(audit_events).where(audit_events.c.seq == seq)).first()
        return None if row is None else _event(row)

    def unsigned_until(self) -> int:
        """The last event written before events were signed: the first signed one's seq - 1,
        or the head's seq while none is signed yet."""
        with read_transaction(self._engine) as conn:
            first = conn.execute(
                select(func.min(audit_events.c.seq)).where(audit_events.c.signature.is_not(None))
            ).scalar()
            if first is not None:
                return int(first) - 1
            return int(conn.execute(select(audit_head.c.seq)).scalar_one())

    def walk(self, batch: int = 5_000, *, after_seq: int = 0) -> Iterator[AuditEvent]:
        """Every event in seq order (after ``after_seq``), read in batches so memory stays flat."""
        after = after_seq
        while True:
            chunk = self.events(after_seq=after, limit=batch)
            yield from chunk
            if len(chunk) < batch:
                return
            after = chunk[-1].seq
