"""Webhook subscriptions, the delivery outbox and SLO definitions over SQLAlchemy Core.

Subscription changes, manual retries, dead letters and SLO changes append their audit event in
the same transaction. A subscription's secret is never written to the audit trail.
"""

from __future__ import annotations

import secrets as _secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from keel.domain.slo import Slo, SloKind
from keel.domain.webhooks import Delivery, DeliveryStatus, Subscription, matches
from keel.errors import Conflict, NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import models
from keel.store.sql.tables_notifications import slos, webhook_deliveries, webhook_subscriptions

MAX_ERROR_CHARS = 1024


def _now() -> datetime:
    return datetime.now(UTC)


def _opt(value: datetime | None) -> datetime | None:
    return codec.utc(value) if value is not None else None


def _subscription(row: Any, secret: str = "") -> Subscription:
    return Subscription(
        id=row.id,
        url=row.url,
        events=tuple(row.events),
        slack=bool(row.slack),
        created_by=row.created_by,
        created_at=codec.utc(row.created_at),
        secret=secret,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=int(row.id),
        subscription_id=row.subscription_id,
        url=row.url,
        event_type=row.event_type,
        payload=dict(row.payload),
        idempotency_key=row.idempotency_key,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=_opt(row.next_attempt_at),
        last_error=row.last_error,
        created_at=codec.utc(row.created_at),
        delivered_at=_opt(row.delivered_at),
    )


def _slo(row: Any) -> Slo:
    return Slo(
        id=row.id,
        model=row.model_name,
        name=row.name,
        kind=SloKind(row.kind),
        objective=row.objective,
        window_days=row.window_days,
        latency_threshold_ms=row.latency_threshold_ms,
        created_by=row.created_by,
        created_at=codec.utc(row.created_at),
    )


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery this worker holds until ``lease`` runs out, with what it needs to send it."""

    delivery: Delivery
    secret: str
    slack: bool
    token: str


_DELIVERIES = select(webhook_deliveries, webhook_subscriptions.c.url).join(
    webhook_subscriptions, webhook_subscriptions.c.id == webhook_deliveries.c.subscription_id
)
_SLOS = select(slos, models.c.name.label("model_name")).join(models, models.c.id == slos.c.model_id)


class SqlNotificationStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- subscriptions -------------------------------------------------------------------------

    def create_subscription(
        self, *, url: str, events: Sequence[str], secret: str, slack: bool, actor: str
    ) -> Subscription:
        now = _now()
        with write_transaction(self._engine) as conn:
            new_id = conn.execute(
                webhook_subscriptions.insert()
                .values(
                    url=url,
                    events=list(events),
                    secret=secret,
                    slack=slack,
                    created_by=actor,
                    created_at=now,
                    removed_at=None,
                )
                .returning(webhook_subscriptions.c.id)
            ).scalar_one()
            audit.append(
                conn,
                actor=actor,
                action="webhook.subscribed",
                subject_type="webhook",
                subject_id=str(new_id),
                details={"url": url, "events": list(events), "slack": slack},
            )
            row = conn.execute(
                select(webhook_subscriptions).where(webhook_subscriptions.c.id == new_id)
            ).one()
        return _subscription(row, secret)

    def list_subscriptions(self) -> list[Subscription]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(webhook_subscriptions)
                .where(webhook_subscriptions.c.removed_at.is_(None))
                .order_by(webhook_subscriptions.c.id)
            ).all()
        return [_subscription(r) for r in rows]

    def signing_secrets(self) -> list[str]:
        """Every subscription's signing secret (removed ones too: old signatures stay valid)."""
        with read_transaction(self._engine) as conn:
            return list(conn.execute(select(webhook_subscriptions.c.secret)).scalars().all())

    def remove_subscription(self, subscription_id: int, actor: str) -> Subscription:
        """Stop sending to a subscription; its pending deliveries become dead letters."""
        now = _now()
        with write_transaction(self._engine) as conn:
            row = conn.execute(
                select(webhook_subscriptions).where(
                    webhook_subscriptions.c.id == subscription_id,
                    webhook_subscriptions.c.removed_at.is_(None),
                )
            ).first()
            if row is None:
                raise NotFound(
                    f"No webhook subscription with id {subscription_id}. See them with "
                    "`keel webhooks list`.",
                    {"subscription": subscription_id},
                )
            conn.execute(
                update(webhook_subscriptions)
                .where(webhook_subscriptions.c.id == subscription_id)
                .values(removed_at=now)
            )
            dropped = conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.subscription_id == subscription_id,
                    webhook_deliveries.c.status == DeliveryStatus.PENDING.value,
                )
                .values(
                    status=DeliveryStatus.DEAD.value,
                    last_error="subscription removed",
                    next_attempt_at=None,
                    claim_token=None,
                )
            ).rowcount
            audit.append(
                conn,
                actor=actor,
                action="webhook.removed",
                subject_type="webhook",
                subject_id=str(subscription_id),
                details={"url": row.url, "pending_dropped": int(dropped or 0)},
            )
        return _subscription(row)

    # -- the outbox ----------------------------------------------------------------------------

    def enqueue(
        self, event_type: str, payload: Mapping[str, Any], now: datetime | None = None
    ) -> list[int]:
        """One pending delivery per live subscription that wants ``event_type``."""
        at = now or _now()
        ids: list[int] = []
        with write_transaction(self._engine) as conn:
            subs = conn.execute(
                select(webhook_subscriptions.c.id, webhook_subscriptions.c.events).where(
                    webhook_subscriptions.c.removed_at.is_(None)
                )
            ).all()
            for sub in subs:
                if not matches(sub.events, event_type):
                    continue
                ids.append(
                    int(
                        conn.execute(
                            webhook_deliveries.insert()
                            .values(
                                subscription_id=sub.id,
                                event_type=event_type,
                                payload=dict(payload),
                                # Stable for the row's life: receivers dedupe retries on it.
                                idempotency_key=uuid.uuid4().hex,
                                status=DeliveryStatus.PENDING.value,
                                attempts=0,
                                next_attempt_at=at,
                                claim_token=None,
                                last_error=None,
                                created_at=at,
                                delivered_at=None,
                            )
                            .returning(webhook_deliveries.c.id)
                        ).scalar_one()
                    )
                )
        return ids

    def claim_due(self, now: datetime, *, limit: int, lease: timedelta) -> list[ClaimedDelivery]:
        """Take up to ``limit`` due deliveries for ``lease``: no other worker sees them as due
        until the lease runs out (a crashed worker's rows come back then: at-least-once)."""
        token = _secrets.token_hex(16)
        with write_transaction(self._engine) as conn:
            due = (
                conn.execute(
                    select(webhook_deliveries.c.id)
                    .where(
                        webhook_deliveries.c.status == DeliveryStatus.PENDING.value,
                        webhook_deliveries.c.next_attempt_at <= now,
                    )
                    .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
                    .limit(limit)
                    # PostgreSQL: rows another worker is claiming are skipped, not waited for.
                    # SQLite ignores this; BEGIN IMMEDIATE (write_transaction) serialises claims.
                    .with_for_update(skip_locked=True, of=webhook_deliveries)
                )
                .scalars()
                .all()
            )
            if not due:
                return []
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id.in_(due))
                .values(next_attempt_at=now + lease, claim_token=token)
            )
            rows = conn.execute(
                select(
                    webhook_deliveries,
                    webhook_subscriptions.c.url,
                    webhook_subscriptions.c.secret,
                    webhook_subscriptions.c.slack,
                )
                .join(
                    webhook_subscriptions,
                    webhook_subscriptions.c.id == webhook_deliveries.c.subscription_id,
                )
                .where(webhook_deliveries.c.id.in_(due))
                .order_by(webhook_deliveries.c.id)
            ).all()
        return [ClaimedDelivery(_delivery(r), r.secret, bool(r.slack), token) for r in rows]

    def record_delivered(self, delivery_id: int, token: str, now: datetime) -> bool:
        """Mark delivered if this worker still holds the claim; False if it lost it."""
        with write_transaction(self._engine) as conn:
            done = conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.claim_token == token,
                )
                .values(
                    status=DeliveryStatus.DELIVERED.value,
                    attempts=webhook_deliveries.c.attempts + 1,
                    delivered_at=now,
                    next_attempt_at=None,
                    claim_token=None,
                    last_error=None,
                )
            ).rowcount
        return bool(done)

    def record_failed(
        self,
        delivery_id: int,
        token: str,
        error: str,
        *,
        attempts: int,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Record a failed attempt: retry at ``next_attempt_at``, or dead letter when None."""
        dead = next_attempt_at is None
        with write_transaction(self._engine) as conn:
            done = conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.claim_token == token,
                )
                .values(
                    status=(DeliveryStatus.DEAD if dead else DeliveryStatus.PENDING).value,
                    attempts=attempts,
                    next_attempt_at=next_attempt_at,
                    claim_token=None,
                    last_error=error[:MAX_ERROR_CHARS],
                )
            ).rowcount
            if done and dead:
                audit.append(
                    conn,
                    actor="keel-worker",
                    action="webhook.dead_lettered",
                    subject_type="webhook_delivery",
                    subject_id=str(delivery_id),
                    details={"attempts": attempts, "last_error": error[:200]},
                )
        return bool(done)

    def get_delivery(self, delivery_id: int) -> Delivery:
        with read_transaction(self._engine) as conn:
            row = conn.execute(_DELIVERIES.where(webhook_deliveries.c.id == delivery_id)).first()
        if row is None:
            raise NotFound(
                f"No webhook delivery with id {delivery_id}. See them with "
                "`keel webhooks deliveries`.",
                {"delivery": delivery_id},
            )
        return _delivery(row)

    def list_deliveries(self, *, status: DeliveryStatus | None, limit: int) -> list[Delivery]:
        query = _DELIVERIES.order_by(webhook_deliveries.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(webhook_deliveries.c.status == status.value)
        with read_transaction(self._engine) as conn:
            return [_delivery(r) for r in conn.execute(query).all()]

    def retry(self, delivery_id: int, actor: str, now: datetime) -> Delivery:
        """Send a dead (or pending) delivery again now: pending, attempts back to 0."""
        with write_transaction(self._engine) as conn:
            row = conn.execute(_DELIVERIES.where(webhook_deliveries.c.id == delivery_id)).first()
            if row is None:
                raise NotFound(
                    f"No webhook delivery with id {delivery_id}. See them with "
                    "`keel webhooks deliveries`.",
                    {"delivery": delivery_id},
                )
            if row.status == DeliveryStatus.DELIVERED.value:
                raise Conflict(
                    f"Delivery {delivery_id} was already delivered; there is nothing to retry.",
                    {"delivery": delivery_id, "status": row.status},
                )
            live = conn.execute(
                select(webhook_subscriptions.c.removed_at).where(
                    webhook_subscriptions.c.id == row.subscription_id
                )
            ).scalar_one()
            if live is not None:
                raise Conflict(
                    f"Delivery {delivery_id}'s subscription was removed; add it again "
                    "(keel webhooks add) to receive new events.",
                    {"delivery": delivery_id},
                )
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(
                    status=DeliveryStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    claim_token=None,
                )
            )
            audit.append(
                conn,
                actor=actor,
                action="webhook.retried",
                subject_type="webhook_delivery",
                subject_id=str(delivery_id),
                details={"previous_status": row.status, "attempts": row.attempts},
            )
            fresh = conn.execute(_DELIVERIES.where(webhook_deliveries.c.id == delivery_id)).one()
        return _delivery(fresh)

    # -- SLOs ----------------------------------------------------------------------------------

    def _model_id(self, conn: Connection, model: str) -> int:
        found = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
        if found is None:
            raise NotFound(f"No model named {model!r}.", {"model": model})
        return int(found)

    def create_slo(
        self,
        *,
        model: str,
        name: str,
        kind: SloKind,
        objective: float,
        window_days: int,
        latency_threshold_ms: float | None,
        actor: str,
    ) -> Slo:
        now = _now()
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            taken = conn.execute(
                select(slos.c.id).where(slos.c.model_id == model_id, slos.c.name == name)
            ).first()
            if taken:
                raise Conflict(
                    f"Model {model!r} already has an SLO named {name!r}. Pick another name.",
                    {"field": "name", "name": name},
                )
            definition = {
                "name": name,
                "kind": kind.value,
                "objective": objective,
                "window_days": window_days,
                "latency_threshold_ms": latency_threshold_ms,
            }
            new_id = conn.execute(
                slos.insert()
                .values(model_id=model_id, created_by=actor, created_at=now, **definition)
                .returning(slos.c.id)
            ).scalar_one()
            audit.append(
                conn,
                actor=actor,
                action="slo.created",
                subject_type="model",
                subject_id=model,
                details={"slo": new_id, **definition},
            )
            row = conn.execute(_SLOS.where(slos.c.id == new_id)).one()
        return _slo(row)

    def get_slo(self, slo_id: int) -> Slo:
        with read_transaction(self._engine) as conn:
            row = conn.execute(_SLOS.where(slos.c.id == slo_id)).first()
        if row is None:
            raise NotFound(
                f"No SLO with id {slo_id}. List a model's SLOs with `keel slo list MODEL`.",
                {"slo": slo_id},
            )
        return _slo(row)

    def list_slos(self, model: str | None = None) -> list[Slo]:
        query = _SLOS.order_by(slos.c.id)
        if model is not None:
            query = query.where(models.c.name == model)
        with read_transaction(self._engine) as conn:
            return [_slo(r) for r in conn.execute(query).all()]
