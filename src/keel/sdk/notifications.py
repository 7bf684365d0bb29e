"""Webhooks and SLOs from Python (methods of `keel.sdk.Client`, mixed in)::

sub = keel.add_webhook("https://hooks.example.org/keel", events=["incident.*"])
sub.secret            # shown once: keep it to verify signatures
keel.webhook_deliveries(status="dead")
keel.create_slo("churn", name="availability", kind="availability", objective=0.999)
keel.slo_status(slo.id).error_budget_remaining
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.errors import TransportError
from keel.schemas.notifications import (
    DeliveryOut,
    SloIn,
    SloOut,
    SloStatusOut,
    SubscriptionIn,
    SubscriptionOut,
)
from keel.sdk.validation import validated

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class _Http(Protocol):
    url: str

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _send(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


def _list(http: _Http, model: type[M], data: Any) -> list[M]:
    if not isinstance(data, list):
        raise TransportError(f"The server at {http.url} answered a listing with {data!r}.")
    return [http._parse(model, item) for item in data]


class NotificationCalls:
    """The webhooks and SLO part of `keel.sdk.Client`."""

    def add_webhook(
        self: _Http,
        url: str,
        *,
        events: Sequence[str],
        secret: str | None = None,
        slack: bool = False,
    ) -> SubscriptionOut:
        """Subscribe ``url`` to ``events`` (glob patterns). The answer's ``secret`` is the only
        time the signing secret is shown (admin only)."""
        body = validated(
            SubscriptionIn,
            {"url": url, "events": list(events), "secret": secret, "slack": slack},
            "webhook",
        )
        answer = self._json("POST", f"{_API}/webhooks", json=body.model_dump(mode="json"))
        return self._parse(SubscriptionOut, answer)

    def list_webhooks(self: _Http) -> list[SubscriptionOut]:
        return _list(self, SubscriptionOut, self._json("GET", f"{_API}/webhooks"))

    def remove_webhook(self: _Http, subscription_id: int) -> None:
        """Stop sending to a subscription (its pending deliveries become dead letters)."""
        self._send("DELETE", f"{_API}/webhooks/{int(subscription_id)}")

    def webhook_deliveries(
        self: _Http, *, status: str | None = None, limit: int = 100
    ) -> list[DeliveryOut]:
        """Deliveries newest first; ``status`` pending, delivered or dead."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        data = self._json("GET", f"{_API}/webhooks/deliveries", params=params)
        return _list(self, DeliveryOut, data)

    def retry_delivery(self: _Http, delivery_id: int) -> DeliveryOut:
        """Send a dead-lettered delivery again."""
        answer = self._json("POST", f"{_API}/webhooks/deliveries/{int(delivery_id)}/retry")
        return self._parse(DeliveryOut, answer)

    def create_slo(
        self: _Http,
        model: str,
        *,
        name: str,
        kind: str,
        objective: float,
        window_days: int = 30,
        latency_threshold_ms: float | None = None,
    ) -> SloOut:
        """Define an availability or latency SLO on ``model``."""
        body = validated(
            SloIn,
            {
                "name": name,
                "kind": kind,
                "objective": objective,
                "window_days": window_days,
                "latency_threshold_ms": latency_threshold_ms,
            },
            "slo",
        )
        path = f"{_API}/models/{quote(model, safe='')}/slos"
        return self._parse(SloOut, self._json("POST", path, json=body.model_dump(mode="json")))

    def list_slos(self: _Http, model: str) -> list[SloOut]:
        data = self._json("GET", f"{_API}/models/{quote(model, safe='')}/slos")
        return _list(self, SloOut, data)

    def slo_status(self: _Http, slo_id: int) -> SloStatusOut:
        """Error budget remaining and each burn-rate rule's rates now."""
        answer = self._json("GET", f"{_API}/slos/{int(slo_id)}/status")
        return self._parse(SloStatusOut, answer)
