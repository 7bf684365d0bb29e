"""What an attacker with write access to the metadata database (but not the audit key) can do to
the audit trail: the six tampering patterns, as SQL behind Keel's back, on SQLite or PostgreSQL.

Each function returns the seq `keel audit verify` must name and the kind of tampering it must
report, so the CLI test (SQLite, a real `keel up`) and the service test (both backends) check the
same patterns the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Connection, Engine, delete, select, update

from keel.domain.audit import AuditEvent, recompute
from keel.store.sql import codec
from keel.store.sql.tables import audit_events, audit_head

Tampering = Callable[[Engine], tuple[int, str]]


def _events(conn: Connection, from_seq: int = 1) -> list[AuditEvent]:
    rows = conn.execute(
        select(audit_events).where(audit_events.c.seq >= from_seq).order_by(audit_events.c.seq)
    )
    return [
        AuditEvent(
            r.seq,
            codec.utc(r.at),
            r.actor,
            r.action,
            r.subject_type,
            r.subject_id,
            dict(r.details),
            r.prev_hash,
            r.hash,
            r.signature,
        )
        for r in rows
    ]


def _head(conn: Connection) -> int:
    return int(conn.execute(select(audit_head.c.seq)).scalar_one())


def edit_a_field(engine: Engine) -> tuple[int, str]:
    """Change who did event 3, and nothing else."""
    with engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 3).values(actor="mallory"))
    return 3, "edited"


def delete_a_middle_event(engine: Engine) -> tuple[int, str]:
    with engine.begin() as conn:
        conn.execute(delete(audit_events).where(audit_events.c.seq == 3))
    return 3, "deleted"


def reorder_two_events(engine: Engine) -> tuple[int, str]:
    """Swap events 3 and 4 (their numbers), so the story reads in another order."""
    with engine.begin() as conn:
        seq = audit_events.c.seq
        conn.execute(update(audit_events).where(seq == 3).values(seq=1_000_000))
        conn.execute(update(audit_events).where(seq == 4).values(seq=3))
        conn.execute(update(audit_events).where(seq == 1_000_000).values(seq=4))
    return 3, "reordered"


def rewrite_the_chain(engine: Engine) -> tuple[int, str]:
    """Edit event 3, then recompute every hash after it and the stored head: the chain alone
    is consistent again; only the signatures (made with the key) tell."""
    with engine.begin() as conn:
        events = _events(conn, 3)
        prev = events[0].prev_hash
        for event in events:
            changed = replace(
                event, prev_hash=prev, actor="mallory" if event.seq == 3 else event.actor
            )
            digest = recompute(changed)
            conn.execute(
                update(audit_events)
                .where(audit_events.c.seq == event.seq)
                .values(actor=changed.actor, prev_hash=prev, hash=digest)
            )
            prev = digest
        conn.execute(update(audit_head).values(hash=prev))
    return 3, "forged"


def delete_the_newest_and_fix_the_head(engine: Engine) -> tuple[int, str]:
    """Delete the two newest events and set the stored head to the one before them."""
    with engine.begin() as conn:
        head = _head(conn)
        keep = _events(conn, head - 2)[0]
        conn.execute(delete(audit_events).where(audit_events.c.seq > keep.seq))
        conn.execute(update(audit_head).values(seq=keep.seq, hash=keep.hash))
    return head - 1, "truncated"


def append_forged_events(engine: Engine) -> tuple[int, str]:
    """Append two events with correct seq, prev_hash and hash (and the head moved on); the
    forger copies the newest event's signature, having no key to make one."""
    with engine.begin() as conn:
        newest = _events(conn, _head(conn))[0]
        prev, first = newest.hash, newest.seq + 1
        for seq in (first, first + 1):
            forged = replace(
                newest,
                seq=seq,
                actor="mallory",
                action="alias.set",
                subject_type="model",
                subject_id="credit",
                details={"alias": "production", "version": 666},
                prev_hash=prev,
            )
            digest = recompute(forged)
            conn.execute(
                audit_events.insert().values(
                    seq=seq,
                    at=forged.at,
                    actor=forged.actor,
                    action=forged.action,
                    subject_type=forged.subject_type,
                    subject_id=forged.subject_id,
                    details=forged.details,
                    prev_hash=prev,
                    hash=digest,
                    signature=newest.signature,
                )
            )
            prev = digest
        conn.execute(update(audit_head).values(seq=first + 1, hash=prev))
    return first, "forged"


def truncate_to_before(seq: int) -> Tampering:
    """Delete every event from ``seq`` on (e.g. a checkpointed one and all after it), head fixed."""

    def tamper(engine: Engine) -> tuple[int, str]:
        with engine.begin() as conn:
            keep = _events(conn, seq - 1)[0]
            conn.execute(delete(audit_events).where(audit_events.c.seq >= seq))
            conn.execute(update(audit_head).values(seq=keep.seq, hash=keep.hash))
        return seq, "truncated"

    return tamper


SIX_PATTERNS: dict[str, Tampering] = {
    "edit a field": edit_a_field,
    "delete a middle event": delete_a_middle_event,
    "reorder two events": reorder_two_events,
    "edit and recompute the chain": rewrite_the_chain,
    "delete the newest events and fix the head": delete_the_newest_and_fix_the_head,
    "append forged events with recomputed hashes": append_forged_events,
}
