"""The monitoring routes: definitions round-trip, bad input is a 4xx naming the field and
writes nothing, and the metric series filters as documented."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient
from tests.job_runner import monitor_run

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import VersionDraft
from keel.domain.signature import Column, ColumnType, Signature
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
MONITORS = "/api/v1/models/churn/monitors"


@pytest.fixture
def churn(client: TestClient, team_and_model: str, backend: Backend) -> str:
    signature = Signature((Column("income", ColumnType.FLOAT), Column("plan", ColumnType.STRING)))
    backend.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"m"), "m.bin", VersionDraft(signature=signature)
    )
    return team_and_model


def monitor_events(client: TestClient) -> list[str]:
    events = client.get("/api/v1/audit", params={"subject_type": "monitor"}).json()["items"]
    return [e["action"] for e in events]


def test_define_show_change_and_delete_a_monitor(client: TestClient, churn: str) -> None:
    made = client.post(
        MONITORS,
        json={
            "name": "nightly",
            "checks": ["drift", "quality"],
            "window": "daily",
            "version": 1,
            "thresholds": {"drift": {"income": {"method": "psi", "threshold": 0.2}}},
            "schedule": {"delay_minutes": 30},
        },
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["window"], body["window_minutes"], body["version"]) == ("daily", 1440, 1)
    assert body["thresholds"]["drift"] == {"income": {"method": "psi", "threshold": 0.2}}
    assert body["thresholds"]["fairness"]["min_disparate_impact"] == 0.8  # defaults filled in
    assert body["schedule"] == {"enabled": True, "delay_minutes": 30}
    monitor = f"/api/v1/monitors/{body['id']}"

    assert client.get(monitor).json()["name"] == "nightly"
    assert [m["id"] for m in client.get(MONITORS).json()] == [body["id"]]

    changed = client.patch(monitor, json={"version": None, "window": 360})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["version"], changed.json()["window"]) == (None, "360m")
    assert changed.json()["checks"] == ["drift", "quality"]  # left out: unchanged

    assert client.delete(monitor).status_code == 204
    assert client.get(monitor).status_code == 404
    assert monitor_events(client) == ["monitor.create", "monitor.update", "monitor.delete"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window": "weekly"}, "window"),
        ({"window": 90}, "window"),
        ({"checks": []}, "checks"),
        ({"version": 9}, "version"),
        ({"thresholds": {"drift": {"income": {"method": "chi_square"}}}}, "method"),
        ({"thresholds": {"performance": {"auc": 0.8}}}, "performance"),
        ({"thresholds": {"quality": {"rows": 3}}}, "quality"),
        ({"schedule": {"delay_minutes": -5}}, "delay_minutes"),
        ({"checks": ["latency"]}, "checks"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_definition_is_a_422_naming_the_field_and_writes_nothing(
    client: TestClient, churn: str, body: dict[str, object], field: str
) -> None:
    answer = client.post(MONITORS, json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.text
    assert client.get(MONITORS).json() == []
    assert monitor_events(client) == []


def test_a_second_monitor_with_the_same_name_conflicts(client: TestClient, churn: str) -> None:
    assert client.post(MONITORS, json={"name": "a"}).status_code == 201
    again = client.post(MONITORS, json={"name": "a"})
    assert again.status_code == 409 and "already has a monitor named 'a'" in again.text
    assert len(client.get(MONITORS).json()) == 1


def test_unknown_models_and_monitors_are_404(client: TestClient, churn: str) -> None:
    assert client.get("/api/v1/models/nope/monitors").status_code == 404
    assert client.post("/api/v1/models/nope/monitors", json={}).status_code == 404
    assert client.patch("/api/v1/monitors/99", json={"window": "daily"}).status_code == 404
    assert client.get("/api/v1/models/nope/metrics").status_code == 404
    assert client.post(f"{MONITORS}/run", json={"monitor": 99}).status_code == 404


def test_runs_and_the_metric_series(client: TestClient, churn: str) -> None:
    made = client.post(MONITORS, json={"checks": ["drift", "operations"]}).json()
    now = datetime.now(UTC)
    for hours_back in (3, 2, 1):
        at = (now - timedelta(hours=hours_back)).isoformat()
        ran = monitor_run(client, "churn", {"at": at})
        assert ran["points"] and {p["monitor_id"] for p in ran["points"]} == {made["id"]}
    series = client.get("/api/v1/models/churn/metrics", params={"check": "operations"}).json()
    error_rates = [p for p in series if p["metric"] == "error_rate"]
    assert len(error_rates) == 3
    ends = [p["window_end"] for p in error_rates]
    assert ends == sorted(ends)  # oldest window first
    since = client.get(
        "/api/v1/models/churn/metrics",
        params={"check": "operations", "metric": "error_rate", "since": ends[0]},
    ).json()
    assert [p["window_end"] for p in since] == ends[1:]
    naive = client.get("/api/v1/models/churn/metrics", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422 and "since" in naive.text
    status = client.get("/api/v1/models/churn/monitoring/status").json()
    assert status["status"] == "no_data"  # no telemetry logged
    assert {p["window_end"] for p in status["points"]} == {ends[-1]}
    assert client.post(f"{MONITORS}/run", json={"at": "2026-01-01T00:00:00"}).status_code == 422
