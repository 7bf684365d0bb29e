"""The audit trail as a hash chain: each event's hash covers its content and the previous hash,
so editing, deleting or reordering any event breaks every hash after it.

``hash = SHA-256(prev_hash || "\\n" || canonical JSON of the event)``, where the canonical JSON
has sorted keys, no whitespace, UTF-8, and times as ISO 8601 UTC with microseconds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keel.domain.audit_checkpoints import AuditKey, Checkpoint

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
    signature: str | None = None  # HMAC of ``hash`` with the audit key; None on legacy events


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
    """The outcome of a walk. ``kind`` names the tampering when not ``intact``: edited, deleted,
    reordered, forged, rewritten, truncated, bad-checkpoint or wrong-key."""

    intact: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""
    kind: str = ""
    signed: int = 0
    unsigned_legacy: int = 0
    checkpoint_seq: int | None = None
    checkpoint_at: datetime | None = None


def _checkpoint_problem(key: AuditKey, checkpoints: Sequence[Checkpoint]) -> tuple[str, str]:
    """(kind, reason) for the first checkpoint that is not this key's genuine signature."""
    for number, checkpoint in enumerate(checkpoints, start=1):
        if checkpoint.key_id != key.key_id:
            return "wrong-key", (
                f"checkpoint {number} (event {checkpoint.seq}) was signed with audit key "
                f"{checkpoint.key_id}, but this server's key is {key.key_id}: point "
                "KEEL_AUDIT_KEY_FILE at the key that signed the trail"
            )
        if not key.checkpoint_holds(checkpoint):
            return "bad-checkpoint", (
                f"checkpoint {number} (event {checkpoint.seq}) has a bad signature: "
                "the checkpoint file was edited"
            )
    return "", ""


def verify_chain(
    events: Iterable[AuditEvent],
    *,
    expected_head: tuple[int, str] | None = None,
    anchor: tuple[int, str] | None = None,
    key: AuditKey | None = None,
    checkpoints: Sequence[Checkpoint] = (),
    start: tuple[int, str] | None = None,
) -> Verification:
    """Walk the chain from the first event; stop at the first one that does not hold.

    ``expected_head`` is the (seq, hash) the store recorded as its newest (catches deleted
    tail events); ``anchor`` is a (seq, hash) an operator wrote down earlier, which must still
    be in the chain (catches a rewrite of the whole chain and of the head together).

    With ``key``, every event after the legacy ones must carry the key's signature (catches
    forged and rewritten events), and every one of ``checkpoints`` must be the key's genuine
    signature of an event still in the chain with the same hash (catches truncation: a chain
    shorter than its newest checkpoint). ``start`` (seq, hash) walks only the events after an
    already verified one.
    """
    prev_hash, expected_seq = (GENESIS, 1) if start is None else (start[1], start[0] + 1)
    checked = signed = legacy = 0
    newest = max(checkpoints, key=lambda c: (c.seq, c.at), default=None)
    seen = (newest.seq, newest.at) if newest else (None, None)

    def broken(seq: int | None, kind: str, reason: str) -> Verification:
        return Verification(
            False, checked, expected_seq - 1, prev_hash, seq, reason, kind, signed, legacy, *seen
        )

    if key is not None:
        kind, reason = _checkpoint_problem(key, checkpoints)
        if kind:
            return broken(None, kind, reason)
    at_seq = {c.seq: c for c in checkpoints}
    legacy_until = min((c.unsigned_until for c in checkpoints), default=None)
    anchor_seen = anchor is None
    for event in events:
        if event.seq != expected_seq:
            if event.seq > expected_seq:
                return broken(
                    expected_seq,
                    "deleted",
                    f"event {expected_seq} is missing (the next stored is {event.seq}): "
                    "deleted or reordered",
                )
            return broken(event.seq, "reordered", f"event {event.seq} is out of order")
        if event.prev_hash != prev_hash:
            return broken(
                event.seq,
                "reordered",
                "its prev_hash does not match the hash of the event before: reordered or replaced",
            )
        if recompute(event) != event.hash:
            return broken(event.seq, "edited", "its content no longer matches its hash (edited)")
        if key is not None:
            if event.signature is None:
                if signed or (legacy_until is not None and event.seq > legacy_until):
                    return broken(
                        event.seq,
                        "forged",
                        "it has no signature although events before it were signed: it was "
                        "added or rewritten without the audit key (forged)",
                    )
                legacy += 1
            elif key.event_holds(event.hash, event.signature):
                signed += 1
            else:
                hint = (
                    ""
                    if signed
                    else ", or this server's audit key is not the one that signed the trail "
                    "(KEEL_AUDIT_KEY_FILE)"
                )
                return broken(
                    event.seq,
                    "forged",
                    "its signature does not match the audit key: it was added or rewritten "
                    f"without the key (forged){hint}",
                )
        checkpoint = at_seq.get(event.seq)
        if checkpoint is not None and checkpoint.hash != event.hash:
            return broken(
                event.seq,
                "rewritten",
                f"its hash differs from the signed checkpoint of {_time(checkpoint.at)}: "
                "the chain was rewritten since",
            )
        if anchor is not None and event.seq == anchor[0]:
            if event.hash != anchor[1]:
                return broken(
                    event.seq,
                    "rewritten",
                    "the anchor's hash differs: the chain was rewritten since it was taken",
                )
            anchor_seen = True
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    head_seq = expected_seq - 1
    if newest is not None and head_seq < newest.seq:
        return broken(
            head_seq + 1,
            "truncated",
            f"the chain ends at event {head_seq}, but the signed checkpoint of "
            f"{_time(newest.at)} saw event {newest.seq}: events {head_seq + 1} to {newest.seq} "
            "were deleted (truncated)",
        )
    # A chain longer than the head read before the walk is a concurrent append, not tampering
    # (an event added behind the head's back fails its signature instead).
    if expected_head is not None and (
        head_seq < expected_head[0]
        or (head_seq == expected_head[0] and prev_hash != expected_head[1])
    ):
        return broken(
            head_seq + 1,
            "deleted",
            f"the recorded head is event {expected_head[0]}, but the chain ends at {head_seq}: "
            "events after it were deleted",
        )
    if not anchor_seen:
        assert anchor is not None
        return broken(
            anchor[0], "deleted", f"the anchor's event {anchor[0]} is no longer in the chain"
        )
    return Verification(True, checked, head_seq, prev_hash, None, "", "", signed, legacy, *seen)


def now() -> datetime:
    return datetime.now(UTC)
