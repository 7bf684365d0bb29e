"""Webhooks and SLOs over HTTP (the real app in-process) and through the SDK."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.testclient import TestClient

from keel.sdk import Client
from keel.services.backend import Backend


def test_webhook_subscription_shows_its_secret_once(client: TestClient) -> None:
    made = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["incident.*"]}
    )
    assert made.status_code == 201, made.text
    assert len(made.json()["secret"]) >= 32
    listed = client.get("/api/v1/webhooks").json()
    assert [s["id"] for s in listed] == [made.json()["id"]]
    assert listed[0]["secret"] is None


def test_bad_webhook_input_names_the_field_and_writes_nothing(client: TestClient) -> None:
    bad = client.post("/api/v1/webhooks", json={"url": "http://x/h", "events": ["nope.*"]})
    assert bad.status_code == 422 and "'events'" in bad.json()["error"]["message"]
    bad = client.get("/api/v1/webhooks/deliveries", params={"status": "lost"})
    assert bad.status_code == 422 and "'status'" in bad.json()["error"]["message"]
    assert client.get("/api/v1/webhooks").json() == []


def test_dead_letters_are_listed_and_retried(
    client: TestClient, backend: Backend, app: FastAPI, admin_token: str
) -> None:
    with Client("http://testserver", token=admin_token, transport=client._transport) as keel:
        sub = keel.add_webhook("http://127.0.0.1:9/hook", events=["gate.*"])
        assert sub.secret
        [delivery_id] = backend.notifications.emit("gate.failed", {"model": "churn"})
        keel.remove_webhook(sub.id)  # its pending delivery becomes a dead letter
        [dead] = keel.webhook_deliveries(status="dead")
        assert dead.id == delivery_id and dead.last_error == "subscription removed"
        refused = client.post(f"/api/v1/webhooks/deliveries/{delivery_id}/retry")
        assert refused.status_code == 409  # the subscription is gone


def test_slos_over_http(client: TestClient, team_and_model: str) -> None:
    made = client.post(
        "/api/v1/models/churn/slos",
        json={"name": "availability", "kind": "availability", "objective": 0.999},
    )
    assert made.status_code == 201, made.text
    bad = client.post(
        "/api/v1/models/churn/slos",
        json={"name": "fast", "kind": "latency", "objective": 0.99},
    )
    assert bad.status_code == 422 and "latency_threshold_ms" in bad.json()["error"]["message"]
    assert [s["name"] for s in client.get("/api/v1/models/churn/slos").json()] == ["availability"]
    status = client.get(f"/api/v1/slos/{made.json()['id']}/status").json()
    assert status["error_budget_remaining"] == 1.0 and status["requests"] == 0
    assert [
        (r["long_window"], r["short_window"], r["threshold"]) for r in status["burn_rates"]
    ] == [
        ("1h", "5m", 14.4),
        ("6h", "30m", 6.0),
        ("3d", "6h", 1.0),
    ]
