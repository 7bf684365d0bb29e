"""A key derived from the audit key for another purpose (the dashboard's form tokens)."""

from __future__ import annotations

import hashlib
import hmac

from keel.domain.audit_checkpoints import AuditKey


def test_a_subkey_is_stable_per_purpose_and_signs_nothing_the_audit_trail_accepts() -> None:
    key = AuditKey(b"k" * 32)
    csrf = key.subkey("dashboard-csrf")
    assert csrf == AuditKey(b"k" * 32).subkey("dashboard-csrf")  # every replica agrees
    assert csrf != key.subkey("something-else")
    assert csrf != AuditKey(b"j" * 32).subkey("dashboard-csrf")
    assert csrf != b"k" * 32
    head = "ab" * 32
    forged = hmac.new(csrf, f"keel-audit-event\n{head}".encode(), hashlib.sha256).hexdigest()
    assert not key.event_holds(head, forged)
