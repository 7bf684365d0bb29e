"""Webhook subscriptions and the outbox over a real database (SQLite and PostgreSQL) and a real
HTTP receiver on loopback: signed deliveries, retries with backoff, dead letters, manual retry,
and concurrent workers that never send one delivery twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.webhook_receiver import Receiver

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.webhooks import DeliveryStatus, verify
from keel.errors import Conflict, InvalidInput, PermissionDenied
from keel.services.backend import Backend
from keel.services.notifications import Notifications

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
CONTRIBUTOR = Principal("cora", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
# Deliveries are due from the moment they are emitted (the real clock); the tests drive the
# delivery clock from an hour after that.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
SECRET = "s3cret-for-tests-0123456789"


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    return empty_backend


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


def notifications(backend: Backend, max_attempts: int = 3) -> Notifications:
    # rand=0.5: each retry waits half its backoff ceiling (30 s, 60 s, ... times 0.5).
    return Notifications(backend.notifications.store, max_attempts=max_attempts, rand=lambda: 0.5)


def test_a_delivery_is_signed_and_carries_its_headers(backend: Backend, receiver: Receiver) -> None:
    hub = notifications(backend)
    sub = hub.subscribe(ADMIN, url=receiver.url, events=["incident.*"], secret=SECRET)
    assert sub.secret == SECRET
    assert hub.subscriptions(ADMIN)[0].secret == ""  # never shown again

    ids = hub.emit("incident.triggered", {"model": "churn", "title": "drift", "at": T0})
    assert len(ids) == 1
    assert hub.emit("gate.failed", {"model": "churn"}) == []  # not subscribed

    run = hub.deliver_due(now=T0)
    assert (run.attempted, run.delivered) == (1, 1)
    [got] = receiver.received
    assert got.headers["X-Keel-Event"] == "incident.triggered"
    assert got.headers["X-Keel-Timestamp"] == str(int(T0.timestamp()))
    assert verify(
        SECRET.encode(),
        got.headers["X-Keel-Timestamp"],
        got.body,
        got.headers["X-Keel-Signature"],
        now=T0,
    )
    assert not verify(b"wrong", got.headers["X-Keel-Timestamp"], got.body,
                      got.headers["X-Keel-Signature"], now=T0)  # fmt: skip
    document = json.loads(got.body)
    assert document["data"] == {"model": "churn", "title": "drift", "at": T0.isoformat()}
    assert document["id"] == got.key
    [row] = hub.deliveries(status="delivered")
    assert row.id == ids[0] and row.attempts == 1 and row.delivered_at == T0


def test_a_slack_subscription_gets_a_text_body(backend: Backend, receiver: Receiver) -> None:
    hub = notifications(backend)
    hub.subscribe(ADMIN, url=receiver.url, events=["incident.*"], slack=True)
    hub.emit(
        "incident.triggered",
        {"model": "churn", "title": "PSI 0.4 on income", "severity": "P2", "status": "triggered"},
    )
    hub.deliver_due(now=T0)
    [got] = receiver.received
    assert json.loads(got.body) == {
        "text": "[incident.triggered] P2 churn: PSI 0.4 on income (triggered)"
    }


def test_failures_back_off_then_dead_letter_then_manual_retry(
    backend: Backend, receiver: Receiver
) -> None:
    hub = notifications(backend, max_attempts=3)
    hub.subscribe(ADMIN, url=receiver.url, events=["*"])
    receiver.failing = True
    [delivery_id] = hub.emit("promotion.completed", {"model": "churn", "version": 2})

    assert hub.deliver_due(now=T0).failed == 1
    first = hub.delivery(delivery_id)
    # attempt 1 failed: ceiling 30 s * 2**0, jitter 0.5 -> due again 15 s later
    assert first.attempts == 1 and first.next_attempt_at == T0 + timedelta(seconds=15)
    assert first.last_error == "HTTP 503"
    assert hub.deliver_due(now=T0 + timedelta(seconds=14)).attempted == 0  # not due yet
    assert hub.deliver_due(now=T0 + timedelta(seconds=15)).failed == 1
    # attempt 2 failed: ceiling 60 s, jitter 0.5 -> 30 s later
    second = hub.delivery(delivery_id)
    assert second.next_attempt_at == T0 + timedelta(seconds=45)
    run = hub.deliver_due(now=T0 + timedelta(seconds=45))
    assert run.dead == 1
    dead = hub.delivery(delivery_id)
    assert dead.status == DeliveryStatus.DEAD and dead.attempts == 3
    assert [d.id for d in hub.deliveries(status="dead")] == [delivery_id]
    assert hub.deliver_due(now=T0 + timedelta(days=1)).attempted == 0  # dead stays dead

    receiver.failing = False
    retried = hub.retry(ADMIN, delivery_id, now=T0 + timedelta(days=1))
    assert retried.status == DeliveryStatus.PENDING and retried.attempts == 0
    assert hub.deliver_due(now=T0 + timedelta(days=1)).delivered == 1
    assert receiver.keys() == [dead.idempotency_key]  # the same key as every earlier attempt
    with pytest.raises(Conflict):
        hub.retry(ADMIN, delivery_id)

    actions = [e.action for e in backend.audit.log.walk() if e.action.startswith("webhook")]
    assert actions == ["webhook.subscribed", "webhook.dead_lettered", "webhook.retried"]


def test_concurrent_workers_send_each_delivery_once(backend: Backend, receiver: Receiver) -> None:
    hub = notifications(backend)
    hub.subscribe(ADMIN, url=receiver.url, events=["incident.*"])
    ids = [hub.emit("incident.updated", {"n": n})[0] for n in range(40)]

    workers = [threading.Thread(target=lambda: [hub.deliver_due(now=T0) for _ in range(3)])
               for _ in range(4)]  # fmt: skip
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    keys = receiver.keys()
    assert len(keys) == len(set(keys)) == 40
    assert {d.id for d in hub.deliveries(status="delivered")} == set(ids)


def test_bad_input_is_refused_and_writes_nothing(backend: Backend) -> None:
    hub = notifications(backend)
    with pytest.raises(InvalidInput, match="'events'"):
        hub.subscribe(ADMIN, url="http://127.0.0.1:9/x", events=["drift.*"])
    with pytest.raises(InvalidInput, match="'url'"):
        hub.subscribe(ADMIN, url="ftp://example.org/x", events=["incident.*"])
    with pytest.raises(InvalidInput, match="'secret'"):
        hub.subscribe(ADMIN, url="http://127.0.0.1:9/x", events=["incident.*"], secret="short")
    with pytest.raises(InvalidInput, match="'status'"):
        hub.deliveries(status="lost")
    with pytest.raises(PermissionDenied):
        hub.subscribe(CONTRIBUTOR, url="http://127.0.0.1:9/x", events=["incident.*"])
    assert hub.subscriptions(ADMIN) == []


def test_removing_a_subscription_dead_letters_its_pending_deliveries(backend: Backend) -> None:
    hub = notifications(backend)
    sub = hub.subscribe(ADMIN, url="http://127.0.0.1:9/x", events=["incident.*"])
    [delivery_id] = hub.emit("incident.triggered", {"model": "churn"})
    hub.unsubscribe(ADMIN, sub.id)
    gone = hub.delivery(delivery_id)
    assert gone.status == DeliveryStatus.DEAD and gone.last_error == "subscription removed"
    assert hub.emit("incident.triggered", {"model": "churn"}) == []
    assert hub.deliver_due(now=T0).attempted == 0
