"""Governance changes reach webhook subscribers: a gate run, each sign-off decision, the
promotion and a rollback arrive at a real loopback receiver as signed gate.*, promotion.* and
rollback.* events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.services.governed_credit import DANA, MODEL, ROOT, promote_new_version, set_up
from tests.webhook_receiver import Receiver

from keel.config import Settings
from keel.domain.webhooks import verify
from keel.services.backend import Backend


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = Backend.open(Settings.load(data_dir=tmp_path / "keel", env={}))
    opened.migrate()
    yield opened
    opened.close()


def test_gate_signoff_promotion_and_rollback_events_are_delivered_signed(
    backend: Backend,
) -> None:
    receiver = Receiver().start()
    try:
        subscription = backend.notifications.subscribe(
            ROOT, url=receiver.url, events=["gate.*", "promotion.*", "rollback.*"]
        )
        assert subscription.secret is not None
        set_up(backend)
        first = promote_new_version(backend, seed=1)
        second = promote_new_version(backend, seed=3)
        backend.governance.rollback(DANA, MODEL, reason="drift on income")
        run = backend.notifications.deliver_due(now=datetime.now(UTC))
        assert run.failed == 0
    finally:
        receiver.stop()

    events = [
        (r.headers["X-Keel-Event"], json.loads(r.body)["data"], r.headers, r.body)
        for r in receiver.received
    ]
    assert [(kind, body["version"]) for kind, body, _, _ in events] == [
        ("gate.completed", first),
        ("gate.signoff", first),
        ("gate.signoff", first),
        ("promotion.completed", first),
        ("gate.completed", second),
        ("gate.signoff", second),
        ("gate.signoff", second),
        ("promotion.completed", second),
        ("rollback.completed", first),
    ]
    _, rollback, headers, body = events[-1]
    assert (rollback["previous_version"], rollback["reason"]) == (second, "drift on income")
    assert verify(
        subscription.secret.encode(),
        headers["X-Keel-Timestamp"],
        body,
        headers["X-Keel-Signature"],
        now=datetime.now(UTC),
    )
