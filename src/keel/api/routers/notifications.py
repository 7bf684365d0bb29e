"""Webhook subscriptions and their deliveries (admin only), and SLOs per model.

Webhooks are admin-only: a subscription receives events of every team, and its URL (a Slack
webhook URL, say) is itself a credential. SLOs follow the model's team: readers see them,
writers in the team define them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from keel.api.deps import Admin, Reader, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.slo import Slo, SloStatus
from keel.domain.webhooks import Delivery, Subscription
from keel.schemas.base import Id
from keel.schemas.notifications import (
    BurnRateOut,
    DeliveryOut,
    SloIn,
    SloOut,
    SloStatusOut,
    SubscriptionIn,
    SubscriptionOut,
)
from keel.services.backend import Backend
from keel.services.notifications import Notifications
from keel.services.slos import Slos

router = APIRouter(prefix=API_PREFIX, tags=["notifications"])


def get_notifications(backend: Annotated[Backend, Depends(get_backend)]) -> Notifications:
    return backend.notifications


def get_slos(backend: Annotated[Backend, Depends(get_backend)]) -> Slos:
    return backend.slos


NotificationsDep = Annotated[Notifications, Depends(get_notifications)]
SlosDep = Annotated[Slos, Depends(get_slos)]


def subscription_out(sub: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        url=sub.url,
        events=list(sub.events),
        slack=sub.slack,
        created_by=sub.created_by,
        created_at=sub.created_at,
        secret=sub.secret or None,
    )


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        subscription_id=d.subscription_id,
        url=d.url,
        event_type=d.event_type,
        payload=dict(d.payload),
        idempotency_key=d.idempotency_key,
        status=str(d.status),
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_error=d.last_error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
    )


def slo_out(slo: Slo) -> SloOut:
    return SloOut(
        id=slo.id,
        model=slo.model,
        name=slo.name,
        kind=str(slo.kind),
        objective=slo.objective,
        window_days=slo.window_days,
        latency_threshold_ms=slo.latency_threshold_ms,
        created_by=slo.created_by,
        created_at=slo.created_at,
    )


def _span(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def slo_status_out(status: SloStatus) -> SloStatusOut:
    return SloStatusOut(
        slo=slo_out(status.slo),
        at=status.at,
        requests=status.window.total,
        bad_requests=status.window.bad,
        error_budget_remaining=status.budget_remaining,
        burn_rates=[
            BurnRateOut(
                action=str(r.rule.action),
                severity=r.rule.severity,
                threshold=r.rule.rate,
                long_window=_span(r.rule.long),
                short_window=_span(r.rule.short),
                long_burn_rate=r.long_burn,
                short_burn_rate=r.short_burn,
                firing=r.firing,
            )
            for r in status.rules
        ],
    )


# -- webhooks ----------------------------------------------------------------------------------


@router.post(
    "/webhooks",
    status_code=201,
    summary="Subscribe a URL to events (the answer holds the signing secret, shown once)",
)
def create_subscription(
    body: SubscriptionIn, notifications: NotificationsDep, caller: Admin
) -> SubscriptionOut:
    return subscription_out(
        notifications.subscribe(
            caller, url=body.url, events=body.events, secret=body.secret, slack=body.slack
        )
    )


@router.get("/webhooks", summary="List webhook subscriptions (without their secrets)")
def list_subscriptions(notifications: NotificationsDep, caller: Admin) -> list[SubscriptionOut]:
    return [subscription_out(s) for s in notifications.subscriptions(caller)]


@router.delete("/webhooks/{subscription_id}", status_code=204, summary="Remove a subscription")
def remove_subscription(
    subscription_id: Id, notifications: NotificationsDep, caller: Admin
) -> Response:
    notifications.unsubscribe(caller, subscription_id)
    return Response(status_code=204)


@router.get("/webhooks/deliveries", summary="Webhook deliveries, newest first")
def list_deliveries(
    notifications: NotificationsDep,
    caller: Admin,
    status: Annotated[str | None, Query(description="pending, delivered or dead")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    return [delivery_out(d) for d in notifications.deliveries(status=status, limit=limit)]


@router.post(
    "/webhooks/deliveries/{delivery_id}/retry",
    summary="Send a dead-lettered delivery again (back to pending, attempts reset)",
)
def retry_delivery(delivery_id: Id, notifications: NotificationsDep, caller: Admin) -> DeliveryOut:
    return delivery_out(notifications.retry(caller, delivery_id))


# -- SLOs --------------------------------------------------------------------------------------


@router.post("/models/{name}/slos", status_code=201, summary="Define an SLO on a model")
def create_slo(name: str, body: SloIn, slos: SlosDep, caller: Writer) -> SloOut:
    return slo_out(
        slos.create(
            caller,
            name,
            name=body.name,
            kind=body.kind,
            objective=body.objective,
            window_days=body.window_days,
            latency_threshold_ms=body.latency_threshold_ms,
        )
    )


@router.get("/models/{name}/slos", summary="A model's SLOs")
def list_slos(name: str, slos: SlosDep, caller: Reader) -> list[SloOut]:
    return [slo_out(s) for s in slos.list(name)]


@router.get("/slos/{slo_id}/status", summary="Error budget remaining and burn rates now")
def slo_status(slo_id: Id, slos: SlosDep, caller: Reader) -> SloStatusOut:
    return slo_status_out(slos.status(slo_id))
