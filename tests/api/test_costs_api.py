"""Costs and budgets over HTTP: bad input gets the error envelope naming the field, and writes
nothing."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from keel.services.backend import Backend
from keel.services.costs.examples import focus_sample


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


def test_a_bill_is_imported_once_over_http(client: TestClient, team_and_model: str) -> None:
    body = focus_sample().encode()
    headers = {"Content-Type": "text/csv"}
    first = client.post("/api/v1/costs/imports?filename=bill.csv", content=body, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["effective_cost"] == "621.085" and not first.json()["replayed"]
    again = client.post("/api/v1/costs/imports", content=body, headers=headers)
    assert again.json()["replayed"] and again.json()["id"] == first.json()["id"]
    month = client.get("/api/v1/costs", params={"month": "2026-10", "model": "churn"}).json()
    assert month["total"] == "190.755"  # 120.50 + 80.255 - 10: no split rules yet


@pytest.mark.parametrize(
    ("headers", "body", "status", "needle"),
    [
        ({"Content-Type": "application/json"}, b"{}", 415, "text/csv"),
        ({"Content-Type": "text/csv"}, b"just,a,header\n", 422, "BilledCost"),
        ({"Content-Type": "application/vnd.apache.parquet"}, b"not parquet", 422, "PARQUET"),
    ],
    ids=["media-type", "not-focus", "not-parquet"],
)
def test_a_bad_upload_is_refused_and_writes_nothing(
    client: TestClient,
    backend: Backend,
    headers: dict[str, str],
    body: bytes,
    status: int,
    needle: str,
) -> None:
    err = _error(client.post("/api/v1/costs/imports", content=body, headers=headers), status)
    assert needle in err["message"]
    assert backend.costs.imports() == []


def test_a_malformed_row_is_named_over_http(client: TestClient, backend: Backend) -> None:
    text = focus_sample().replace(
        "2026-10-06T00:00:00Z,2026-10-07", "2026-10-06T02:00:00+02:00,2026-10-07"
    )
    err = _error(
        client.post(
            "/api/v1/costs/imports", content=text.encode(), headers={"Content-Type": "text/csv"}
        ),
        422,
    )
    assert err["details"]["row"] == 10 and err["details"]["column"] == "ChargePeriodStart"
    assert backend.costs.imports() == []


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/api/v1/costs?month=2026-13", None, "month"),
        ("PUT", "/api/v1/costs/settings", {"gb_month": "-1"}, "gb_month"),
        ("PUT", "/api/v1/costs/settings", {"currency": "dollars"}, "currency"),
        ("PUT", "/api/v1/costs/settings", {"model_tag": 'bad"key'}, "model_tag"),
        ("PUT", "/api/v1/costs/split-rules/GPU", {"rule": "by-vibes"}, "rule"),
        ("PUT", "/api/v1/budgets", {"scope": "model", "target": "churn", "amount": "0"}, "amount"),
        (
            "PUT",
            "/api/v1/budgets",
            {"scope": "team", "target": "risk", "amount": "9", "thresholds": [50, 2000]},
            "thresholds",
        ),
        ("POST", "/api/v1/gc", {"dry_run": True, "retention_days": -1}, "retention_days"),
    ],
    ids=["month", "price", "currency", "tag-key", "rule", "budget", "threshold", "gc-days"],
)
def test_bad_settings_and_budgets_name_the_field(
    client: TestClient,
    backend: Backend,
    team_and_model: str,
    method: str,
    path: str,
    body: Any,
    field: str,
) -> None:
    before = client.get("/api/v1/costs/settings").json()
    err = _error(client.request(method, path, json=body), 422)
    assert field in err["message"] or field in str(err["details"])
    assert client.get("/api/v1/costs/settings").json() == before
    assert backend.costs.split_rules() == {} and backend.costs.budgets() == []
