"""Webhook notifications: subscriptions, a durable outbox, signed delivery with retries.

`emit` writes one outbox row per matching subscription and returns at once; the worker's
delivery job (`deliver_due`) POSTs due rows, signed, and retries failures with exponential
backoff and full jitter until `max_attempts`, after which the row is a dead letter that a person
can retry by hand. Delivery is at-least-once: a receiver dedupes on ``X-Keel-Idempotency-Key``,
which stays the same for a row across every retry.

Who may do what: subscriptions, the delivery log and retries are admin-only. A subscription
receives events of every team, and its URL (a Slack webhook URL, say) is itself a credential.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from keel.domain.incidents import Incident
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.webhooks import (
    HEADER_EVENT,
    HEADER_IDEMPOTENCY_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    Delivery,
    DeliveryRun,
    DeliveryStatus,
    Subscription,
    backoff_seconds,
    check_events,
    check_url,
    sign,
    slack_body,
)
from keel.errors import InvalidInput
from keel.store.sql.notifications import ClaimedDelivery, SqlNotificationStore

log = logging.getLogger("keel.notifications")
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_BACKOFF_BASE_S = 30.0
CLAIM_BATCH = 20
MAX_LIST = 1000


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise InvalidInput("'now' must carry a time zone.", {"field": "now"})
    return now.astimezone(UTC)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def incident_payload(incident: Incident) -> dict[str, Any]:
    """What a receiver gets about an incident (no timeline: it can be long; ask the API)."""
    return {
        "id": incident.id,
        "key": incident.key,
        "model": incident.model,
        "version": incident.version,
        "title": incident.title,
        "severity": str(incident.severity),
        "status": str(incident.status),
        "check": incident.check,
        "column": incident.column,
        "labels": dict(incident.labels),
        "assignee": incident.assignee,
        "opened_at": incident.opened_at.isoformat(),
        "acknowledged_at": incident.acknowledged_at.isoformat()
        if incident.acknowledged_at
        else None,
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
    }


class Notifications:
    """Webhook subscriptions and their outbox (Backend field ``notifications``)."""

    def __init__(
        self,
        store: SqlNotificationStore,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        backoff_base_s: float = DEFAULT_BACKOFF_BASE_S,
        transport: httpx.BaseTransport | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self._transport = transport
        self._rand = rand

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(
        self,
        by: Principal,
        *,
        url: str,
        events: Sequence[str],
        secret: str | None = None,
        slack: bool = False,
    ) -> Subscription:
        """Send events matching ``events`` to ``url``. The returned subscription carries the
        signing secret (generated when not given); it is never shown again."""
        authorize(by, Permission.ADMIN)
        patterns = check_events(events)
        check_url(url)
        if secret is not None and not 16 <= len(secret) <= 256:
            raise InvalidInput(
                "The 'secret' field must be 16 to 256 characters; leave it out to have Keel "
                "generate one.",
                {"field": "secret"},
            )
        return self.store.create_subscription(
            url=url,
            events=patterns,
            secret=secret or secrets.token_urlsafe(32),
            slack=slack,
            actor=by.name,
        )

    def subscriptions(self, by: Principal) -> list[Subscription]:
        """Live subscriptions (without their secrets)."""
        authorize(by, Permission.ADMIN)
        return self.store.list_subscriptions()

    def signing_secrets(self) -> list[str]:
        """Every signing secret, for redacting them from text people read (never shown)."""
        return self.store.signing_secrets()

    def unsubscribe(self, by: Principal, subscription_id: int) -> Subscription:
        """Stop sending to a subscription; its pending deliveries become dead letters."""
        authorize(by, Permission.ADMIN)
        return self.store.remove_subscription(subscription_id, by.name)

    # -- the outbox ----------------------------------------------------------------------------

    def emit(
        self, event_type: str, payload: Mapping[str, Any], *, now: datetime | None = None
    ) -> list[int]:
        """Queue ``event_type`` for every subscription that wants it; returns the outbox ids.

        Event types: incident.*, gate.*, promotion.*, rollback.*, retrain.*, budget.*, slo.*,
        audit.*, deployment.*.
        The deliveries are due from ``now`` (the current time when not given).
        """
        return self.store.enqueue(event_type, _jsonable(payload), _utc(now))

    def incident_listener(self, event_type: str, incident: Incident) -> None:
        """For `Incidents.add_listener`: queue ``incident.*`` webhooks after each change.

        A drill's incident is left to the drill service, which sends it marked as a drill."""
        if incident.is_drill:
            return
        self.emit(event_type, incident_payload(incident))

    def deliveries(self, *, status: str | None = None, limit: int = 100) -> list[Delivery]:
        """The newest deliveries, optionally only ``pending``, ``delivered`` or ``dead``."""
        wanted: DeliveryStatus | None = None
        if status is not None:
            try:
                wanted = DeliveryStatus(status)
            except ValueError:
                raise InvalidInput(
                    f"The 'status' filter must be pending, delivered or dead. Got {status!r}.",
                    {"field": "status"},
                ) from None
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(
                f"The 'limit' field must be between 1 and {MAX_LIST}.", {"field": "limit"}
            )
        return self.store.list_deliveries(status=wanted, limit=limit)

    def delivery(self, delivery_id: int) -> Delivery:
        return self.store.get_delivery(delivery_id)

    def retry(self, by: Principal, delivery_id: int, *, now: datetime | None = None) -> Delivery:
        """Send a dead letter again: back to pending, attempts reset, due now."""
        authorize(by, Permission.ADMIN)
        return self.store.retry(delivery_id, by.name, _utc(now))

    # -- delivery (the worker job) -------------------------------------------------------------

    def deliver_due(self, *, now: datetime | None = None) -> DeliveryRun:
        """POST every due delivery once (up to a batch); record each outcome.

        ``now`` drives the clock (tests pass it instead of sleeping): it decides what is due,
        stamps ``X-Keel-Timestamp`` and schedules retries.
        """
        at = _utc(now)
        lease = timedelta(seconds=self.timeout_s * CLAIM_BATCH + 60)
        claimed = self.store.claim_due(at, limit=CLAIM_BATCH, lease=lease)
        delivered = failed = dead = 0
        if not claimed:
            return DeliveryRun()
        with httpx.Client(
            transport=self._transport, timeout=self.timeout_s, follow_redirects=False
        ) as client:
            for item in claimed:
                error = self._send(client, item, at)
                if error is None:
                    if self.store.record_delivered(item.delivery.id, item.token, at):
                        delivered += 1
                    continue
                attempts = item.delivery.attempts + 1
                retry_at: datetime | None = None
                if attempts < self.max_attempts:
                    delay = backoff_seconds(attempts, base_s=self.backoff_base_s, rand=self._rand)
                    retry_at = at + timedelta(seconds=delay)
                    failed += 1
                else:
                    dead += 1
                # The URL is left out of the log: a Slack webhook URL is itself a credential.
                log.warning(
                    "webhook delivery %s (subscription %s, %s) attempt %s failed: %s",
                    item.delivery.id,
                    item.delivery.subscription_id,
                    item.delivery.event_type,
                    attempts,
                    error,
                )
                self.store.record_failed(
                    item.delivery.id,
                    item.token,
                    error,
                    attempts=attempts,
                    next_attempt_at=retry_at,
                )
        return DeliveryRun(attempted=len(claimed), delivered=delivered, failed=failed, dead=dead)

    def _send(self, client: httpx.Client, item: ClaimedDelivery, at: datetime) -> str | None:
        """POST one delivery; None on 2xx, else what went wrong."""
        d = item.delivery
        document: Mapping[str, Any]
        if item.slack:
            document = slack_body(d.event_type, d.payload)
        else:
            document = {
                "id": d.idempotency_key,
                "type": d.event_type,
                "created_at": d.created_at.isoformat(),
                "data": d.payload,
            }
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(at.timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "keel-webhooks/1",
            HEADER_TIMESTAMP: timestamp,
            HEADER_SIGNATURE: sign(item.secret.encode(), timestamp, body),
            HEADER_IDEMPOTENCY_KEY: d.idempotency_key,
            HEADER_EVENT: d.event_type,
        }
        try:
            response = client.post(d.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
