"""The report route answers each format with its media type; a bad month is a 422 envelope."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_report_formats(client: TestClient, team_and_model: str) -> None:
    page = client.get("/api/v1/report?month=2026-11&format=html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<!doctype html>" in page.text
    markdown = client.get("/api/v1/report?month=2026-11&format=md")
    assert markdown.headers["content-type"].startswith("text/markdown")
    data = client.get("/api/v1/report?month=2026-11").json()
    assert data["month"] == "2026-11" and data["maturity"]["models"][0]["model"] == "churn"


def test_bad_report_requests(client: TestClient, team_and_model: str) -> None:
    for query, field in (("month=2026-13", "month"), ("month=2026-11&format=pdf", "format")):
        answer = client.get(f"/api/v1/report?{query}")
        assert answer.status_code == 422, answer.text
        assert field in str(answer.json()["error"])
