"""The audit trail as a hash chain: each event's hash covers its content and the previous hash,
so editing, deleting or reordering any event breaks every hash after it.

``hash = SHA-256(prev_hash || "\\n" || canonical JSON of the event)``, where the canonical JSON
has sorted keys, no whitespace, UTF-8, and times as ISO 8601 UTC with microseconds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
# Keys whose values never enter the trail, whatever a caller passes in details.
SECRET_KEYS = frozenset({"token", "secret", "password", "authorization", "api_key", "digest"})


def redact(details: Mapping[str, Any]) -> dict[str, Any]:
    """Drop secret-looking keys, recursively.

    >>> redact({"name": "ci", "token": "keel_abc", "nested": {"password": "x", "n": 1}})
    {'name': 'ci', 'nested': {'n': 1}}
    """
    clean: dict[str, Any] = {}
    for key, value in details.items():
        if key.lower() in SECRET_KEYS or "token_hash" in key.lower():
            continue
        clean[key] = redact(value) if isinstance(value, Mapping) else value
    return clean


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: Mapping[str, Any],
) -> str:
    body = {
        "seq": seq,
        "at": _time(at),
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "details": details,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def recompute(event: AuditEvent) -> str:
    return event_hash(
        event.prev_hash,
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        details=event.details,
    )


@dataclass(frozen=True)
class Verification:
    intact: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""


def verify_chain(
    events: Iterable[AuditEvent],
    *,
    expected_head: tuple[int, str] | None = None,
    anchor: tuple[int, str] | None = None,
) -> Verification:
    """Walk the chain from the first event; stop at the first one that does not hold.

    ``expected_head`` is the (seq, hash) the store recorded as its newest (catches deleted
    tail events); ``anchor`` is a (seq, hash) an operator wrote down earlier, which must still
    be in the chain (catches a rewrite of the whole chain and of the head together).
    """
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    anchor_seen = anchor is None
    for event in events:
        problem = ""
        if event.seq != expected_seq:
            problem = (
                f"event {expected_seq} is missing (the next stored is {event.seq}): "
                "deleted or reordered"
                if event.seq > expected_seq
                else f"event {event.seq} is out of order"
            )
            broken = min(event.seq, expected_seq)
        elif event.prev_hash != prev_hash:
            problem, broken = "its prev_hash does not match the hash of the event before", event.seq
        elif recompute(event) != event.hash:
            problem, broken = "its content no longer matches its hash (edited)", event.seq
        if problem:
            return Verification(False, checked, expected_seq - 1, prev_hash, broken, problem)
        if anchor is not None and event.seq == anchor[0]:
            if event.hash != anchor[1]:
                return Verification(
                    False,
                    checked,
                    event.seq,
                    prev_hash,
                    event.seq,
                    "the anchor's hash differs: the chain was rewritten since it was taken",
                )
            anchor_seen = True
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    head_seq = expected_seq - 1
    if expected_head is not None and expected_head != (head_seq, prev_hash):
        return Verification(
            False,
            checked,
            head_seq,
            prev_hash,
            head_seq + 1,
            f"the recorded head is event {expected_head[0]}, but the chain ends at {head_seq}: "
            "events after it were deleted",
        )
    if not anchor_seen:
        assert anchor is not None
        return Verification(
            False,
            checked,
            head_seq,
            prev_hash,
            anchor[0],
            f"the anchor's event {anchor[0]} is no longer in the chain",
        )
    return Verification(True, checked, head_seq, prev_hash)


def now() -> datetime:
    return datetime.now(UTC)
