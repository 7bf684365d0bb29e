"""Webhooks: what a subscription and a delivery are, how a delivery is signed, when it is retried.

Signing follows the scheme receivers already know from Stripe and Slack: an HMAC-SHA256 over
``f"{timestamp}.".encode() + body`` with the subscription's shared secret, sent as
``X-Keel-Signature: v1=<hex>`` beside ``X-Keel-Timestamp`` (Unix seconds). A receiver recomputes the
HMAC (`verify`) and refuses a timestamp older than its tolerance, so a captured request cannot be
replayed later. Stdlib ``hmac`` does the work; nothing here is home-grown cryptography.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from keel.errors import InvalidInput

SIGNATURE_VERSION = "v1"
HEADER_TIMESTAMP = "X-Keel-Timestamp"
HEADER_SIGNATURE = "X-Keel-Signature"
HEADER_IDEMPOTENCY_KEY = "X-Keel-Idempotency-Key"
HEADER_EVENT = "X-Keel-Event"
DEFAULT_TOLERANCE_S = 300
# The event families Keel emits; a subscription's patterns must name one of them.
EVENT_FAMILIES = (
    "incident",
    "gate",
    "promotion",
    "rollback",
    "retrain",
    "budget",
    "slo",
    "test",
    "audit",
    "deployment",
)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True)
class Subscription:
    """Where events matching ``events`` (glob patterns like ``incident.*``) are POSTed.

    ``secret`` is only filled in when the subscription is created (shown once); reads leave it
    empty.
    """

    id: int
    url: str
    events: tuple[str, ...]
    slack: bool
    created_by: str
    created_at: datetime
    secret: str = field(default="", repr=False)

    def wants(self, event_type: str) -> bool:
        """Whether this subscription receives ``event_type``."""
        return matches(self.events, event_type)


@dataclass(frozen=True)
class Delivery:
    """One outbox row: one event for one subscription, retried until delivered or dead."""

    id: int
    subscription_id: int
    url: str
    event_type: str
    payload: Mapping[str, Any]
    idempotency_key: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class DeliveryRun:
    """What one pass of the delivery job did."""

    attempted: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether ``event_type`` matches any glob pattern (``incident.*``, ``*``, ``gate.failed``).

    >>> matches(["incident.*"], "incident.triggered"), matches(["gate.*"], "incident.resolved")
    (True, False)
    """
    return any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def check_events(events: Sequence[str]) -> tuple[str, ...]:
    """Validate a subscription's event patterns; raise `InvalidInput` naming the bad one."""
    cleaned = tuple(e.strip() for e in events if e.strip())
    if not cleaned:
        raise InvalidInput(
            "The 'events' field needs at least one event pattern, e.g. 'incident.*'.",
            {"field": "events"},
        )
    for pattern in cleaned:
        family = pattern.split(".", 1)[0]
        if pattern != "*" and family not in EVENT_FAMILIES:
            raise InvalidInput(
                f"The 'events' field has {pattern!r}, which matches no Keel event. Use one of "
                f"{', '.join(f + '.*' for f in EVENT_FAMILIES)} or '*'.",
                {"field": "events", "value": pattern},
            )
    return cleaned


def check_url(url: str) -> str:
    """A webhook URL must be absolute http(s)."""
    if not (url.startswith("https://") or url.startswith("http://")) or len(url) > 2048:
        raise InvalidInput(
            f"The 'url' field must be an http:// or https:// URL (at most 2048 characters). "
            f"Got {url[:80]!r}.",
            {"field": "url"},
        )
    return url


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value: ``v1=`` + hex HMAC-SHA256 of ``f"{timestamp}."`` + body."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: datetime,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether ``signature`` is ours for this body and the timestamp is within ``tolerance_s``.

    Constant-time comparison (`hmac.compare_digest`); a malformed timestamp is simply refused.
    """
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def backoff_seconds(
    attempt: int,
    *,
    base_s: float = 30.0,
    cap_s: float = 6 * 3600.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (1 = after the first failure): full jitter.

    ``uniform(0, min(cap, base * 2 ** (attempt - 1)))`` as in the AWS architecture blog's
    "Exponential Backoff And Jitter": spreads retries of many failed deliveries so a receiver
    coming back is not hit by all of them at once. ``rand`` returns [0, 1); tests inject it.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(cap_s, base_s * 2.0 ** (attempt - 1))
    return ceiling * rand()


def slack_body(event_type: str, payload: Mapping[str, Any]) -> dict[str, str]:
    """A Slack-compatible incoming-webhook body: one line of text a person can read."""
    title = payload.get("title") or payload.get("message") or ""
    model = payload.get("model")
    severity = payload.get("severity")
    parts = [f"[{event_type}]"]
    if severity:
        parts.append(str(severity))
    if model:
        parts.append(f"{model}:")
    if title:
        parts.append(str(title))
    status = payload.get("status")
    if status:
        parts.append(f"({status})")
    return {"text": " ".join(parts)}
