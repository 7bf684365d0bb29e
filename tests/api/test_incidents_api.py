"""Alert rules and incidents over REST: bad input is a 4xx naming the field and writes nothing,
the lifecycle's refusals are 409s naming the allowed moves, and MTTA/MTTR per team."""

from __future__ import annotations

from starlette.testclient import TestClient

from keel.domain.incidents import Severity
from keel.domain.permissions import Grant, Principal, Role
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))


def test_alert_rules_validate_and_write_nothing_on_error(
    client: TestClient, team_and_model: str
) -> None:
    path = f"/api/v1/models/{team_and_model}/alert-rules"
    refused = client.put(
        path,
        json={
            "rules": [
                {"name": "ok", "check": "drift"},
                {"name": "bad", "check": "drift", "comparison": "<", "threshold": "high"},
            ]
        },
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["details"]["field"] == "rules[1].threshold"
    assert client.get(path).json() == []

    made = client.post(
        path,
        json={
            "name": "auc",
            "check": "performance",
            "metric": "roc_auc",
            "comparison": "<",
            "threshold": 0.7,
            "severity": "P2",
            "windows": 1,
        },
    )
    assert made.status_code == 201, made.text
    duplicate = client.post(path, json={"name": "auc", "check": "performance"})
    assert duplicate.status_code == 409
    rule_id = made.json()["id"]
    assert client.get(f"/api/v1/alert-rules/{rule_id}").json()["threshold"] == 0.7
    assert client.delete(f"/api/v1/alert-rules/{rule_id}").status_code == 204
    assert client.get(f"/api/v1/alert-rules/{rule_id}").status_code == 404


def test_incident_routes_follow_the_lifecycle(
    client: TestClient, backend: Backend, team_and_model: str
) -> None:
    incident, _ = backend.incidents.trigger(
        ADMIN, key="r:churn:1", model="churn", version=1, title="AUC fell", severity=Severity.P2
    )
    base = f"/api/v1/incidents/{incident.id}"
    assert client.get("/api/v1/incidents", params={"status": "open"}).json()[0]["id"] == (
        incident.id
    )
    assert client.get("/api/v1/incidents", params={"status": "gone"}).status_code == 422
    assert client.post(f"{base}/ack", json={"comment": "on it"}).json()["status"] == (
        "acknowledged"
    )
    again = client.post(f"{base}/ack")
    assert again.status_code == 409
    assert again.json()["error"]["details"]["allowed"] == ["resolved"]
    empty = client.post(f"{base}/comments", json={"text": " "})
    assert empty.status_code == 422 and empty.json()["error"]["details"]["field"] == "text"
    assert client.post(f"{base}/comments", json={"text": "rolled back"}).status_code == 201
    assert client.post(f"{base}/resolve").json()["status"] == "resolved"
    pm = client.put(f"{base}/postmortem", json={"markdown": "# What happened"})
    assert pm.json()["postmortem"] == "# What happened"
    kinds = [e["kind"] for e in client.get(base).json()["timeline"]]
    assert kinds == ["alert", "status", "status", "comment", "status", "postmortem"]
    stats = client.get("/api/v1/incidents/stats", params={"team": "risk"}).json()
    assert (stats["incidents"], stats["acknowledged"], stats["resolved"]) == (1, 1, 1)
    assert 0 <= stats["mtta_seconds"] <= stats["mttr_seconds"]
    assert client.get("/api/v1/incidents/999").status_code == 404
