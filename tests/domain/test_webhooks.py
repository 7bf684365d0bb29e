"""Webhook signatures (HMAC-SHA256 over "timestamp." + body), replay tolerance, backoff."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from keel.domain.webhooks import backoff_seconds, check_events, matches, sign, verify
from keel.errors import InvalidInput

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))
BODY = b'{"type":"incident.triggered"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # What a receiver in any language computes, with the standard library only.
    expected = hmac.new(b"k", f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(b"k", TS, BODY) == f"v1={expected}"


def test_verify_refuses_tampering_wrong_secrets_and_replays() -> None:
    signature = sign(b"k", TS, BODY)
    assert verify(b"k", TS, BODY, signature, now=NOW)
    assert not verify(b"k", TS, BODY + b" ", signature, now=NOW)  # body changed
    assert not verify(b"other", TS, BODY, signature, now=NOW)  # wrong secret
    later = NOW + timedelta(seconds=301)
    assert not verify(b"k", TS, BODY, signature, now=later)  # replayed after 5 minutes
    assert verify(b"k", TS, BODY, signature, now=later, tolerance_s=600)
    assert not verify(b"k", "soon", BODY, signature, now=NOW)  # malformed timestamp


def test_backoff_is_exponential_with_full_jitter_and_a_cap() -> None:
    # ceilings 30, 60, 120, 240 s ... each delay is ceiling * rand
    assert [backoff_seconds(n, rand=lambda: 0.5) for n in (1, 2, 3, 4)] == [15, 30, 60, 120]
    assert backoff_seconds(3, rand=lambda: 0.0) == 0.0
    assert backoff_seconds(30, rand=lambda: 0.5) == 3 * 3600.0  # cap 6 h * 0.5
    with pytest.raises(ValueError):
        backoff_seconds(0)


def test_event_patterns() -> None:
    assert matches(["incident.*"], "incident.resolved")
    assert not matches(["incident.*"], "gate.failed")
    assert matches(["*"], "budget.exceeded")
    assert check_events([" incident.* ", "gate.failed"]) == ("incident.*", "gate.failed")
    with pytest.raises(InvalidInput, match="'events'"):
        check_events(["alerts.*"])
    with pytest.raises(InvalidInput, match="'events'"):
        check_events([])
