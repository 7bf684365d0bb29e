"""Receiver down, receiver back: incident webhooks queue in the outbox while a real loopback
receiver is unreachable, arrive exactly once per idempotency key when it returns, and a delivery
that keeps failing is dead-lettered and delivered by a manual retry. Time is driven by passing
``now`` to the delivery job; nothing sleeps."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.webhook_receiver import Receiver

from keel.config import Settings
from keel.domain.incidents import Severity
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model
from keel.domain.webhooks import DeliveryStatus, verify
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
MAX_ATTEMPTS = 4


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    env = {"KEEL_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS)}
    opened = Backend.open(Settings.load(data_dir=tmp_path / "keel", env=env))
    opened.migrate()
    opened.registry.create_team(ADMIN, "risk")
    opened.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    yield opened
    opened.close()


def test_events_queue_while_the_receiver_is_down_and_arrive_once_each(backend: Backend) -> None:
    receiver = Receiver().start()
    port = receiver.port
    receiver.stop()  # the port is closed: connections are refused
    sub = backend.notifications.subscribe(ADMIN, url=receiver.url, events=["incident.*"])
    incidents = backend.incidents
    t = datetime.now(UTC) + timedelta(minutes=1)

    # Three incidents change state while the receiver is down: 5 events in the outbox.
    first, _ = incidents.trigger(
        ADMIN, key="k1", model="churn", version=None, title="drift", severity=Severity.P2
    )
    second, _ = incidents.trigger(
        ADMIN, key="k2", model="churn", version=None, title="latency", severity=Severity.P3
    )
    incidents.trigger(  # same key: an update of the first, not a new incident
        ADMIN, key="k1", model="churn", version=None, title="drift", severity=Severity.P2
    )
    incidents.acknowledge(ADMIN, first.id)
    incidents.resolve(ADMIN, second.id)
    queued = backend.notifications.deliveries(status="pending")
    assert len(queued) == 5
    assert Counter(d.event_type for d in queued) == {
        "incident.triggered": 2,
        "incident.updated": 1,
        "incident.acknowledged": 1,
        "incident.resolved": 1,
    }

    for minutes in (0, 1, 2):  # three failed passes (each retry is due within 2 minutes)
        run = backend.notifications.deliver_due(now=t + timedelta(minutes=minutes))
        assert run.delivered == 0 and run.attempted == 5
    assert all(d.status == DeliveryStatus.PENDING for d in backend.notifications.deliveries())
    assert all("ConnectError" in (d.last_error or "") for d in backend.notifications.deliveries())

    receiver = Receiver(port=port).start()  # back, on the same URL
    try:
        later = t + timedelta(hours=1)
        assert backend.notifications.deliver_due(now=later).delivered == 5
        # Further passes find nothing to send: nothing is delivered twice.
        assert backend.notifications.deliver_due(now=later + timedelta(hours=1)).attempted == 0
        keys = receiver.keys()
        assert len(keys) == 5 and len(set(keys)) == 5
        assert set(keys) == {d.idempotency_key for d in queued}
        for got in receiver.received:
            assert verify(
                sub.secret.encode(),
                got.headers["X-Keel-Timestamp"],
                got.body,
                got.headers["X-Keel-Signature"],
                now=later,
            )
        events = sorted(json.loads(r.body)["type"] for r in receiver.received)
        assert events == sorted(d.event_type for d in queued)

        # A receiver that answers 503: dead after MAX_ATTEMPTS, then retried by hand.
        receiver.failing = True
        incidents.comment(ADMIN, first.id, "rolling back")
        now = later + timedelta(days=1)
        for _ in range(MAX_ATTEMPTS):
            backend.notifications.deliver_due(now=now)
            now += timedelta(hours=7)  # past any backoff (capped at 6 h)
        [dead] = backend.notifications.deliveries(status="dead")
        assert dead.event_type == "incident.updated" and dead.attempts == MAX_ATTEMPTS
        assert dead.last_error == "HTTP 503"
        assert backend.notifications.deliver_due(now=now + timedelta(days=1)).attempted == 0

        receiver.failing = False
        backend.notifications.retry(ADMIN, dead.id, now=now)
        assert backend.notifications.deliver_due(now=now).delivered == 1
        assert receiver.keys().count(dead.idempotency_key) == 1
        assert len(receiver.keys()) == len(set(receiver.keys())) == 6
    finally:
        receiver.stop()
