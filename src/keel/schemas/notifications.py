"""Wire models of webhook subscriptions, deliveries and SLOs (shared by the API and the SDK)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from keel.schemas.base import WireIn, WireOut


class SubscriptionIn(WireIn):
    url: str = Field(description="Where events are POSTed (http:// or https://).")
    events: list[str] = Field(description="Event patterns, e.g. ['incident.*', 'gate.failed'].")
    secret: str | None = Field(
        default=None, description="Signing secret (16-256 chars); generated when left out."
    )
    slack: bool = Field(default=False, description="Send a Slack-compatible {'text': ...} body.")


class SubscriptionOut(WireOut):
    id: int
    url: str
    events: list[str]
    slack: bool
    created_by: str
    created_at: datetime
    # Only in the answer to the request that created the subscription; never again.
    secret: str | None = None


class DeliveryOut(WireOut):
    id: int
    subscription_id: int
    url: str
    event_type: str
    payload: dict[str, Any]
    idempotency_key: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class SloIn(WireIn):
    name: str = Field(description="Unique per model, e.g. 'availability'.")
    kind: str = Field(description="'availability' (no error) or 'latency' (within a bound).")
    objective: float = Field(description="Share of good requests, e.g. 0.999.")
    window_days: int = Field(default=30, description="28 or 30.")
    latency_threshold_ms: float | None = Field(
        default=None, description="Latency SLOs only: the bound a good request is within."
    )


class SloOut(WireOut):
    id: int
    model: str
    name: str
    kind: str
    objective: float
    window_days: int
    latency_threshold_ms: float | None
    created_by: str
    created_at: datetime


class BurnRateOut(WireOut):
    action: str
    severity: str
    threshold: float
    long_window: str
    short_window: str
    long_burn_rate: float
    short_burn_rate: float
    firing: bool


class SloStatusOut(WireOut):
    slo: SloOut
    at: datetime
    requests: int
    bad_requests: int
    error_budget_remaining: float
    burn_rates: list[BurnRateOut]
