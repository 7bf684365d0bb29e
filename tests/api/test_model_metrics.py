"""/metrics keeps answering when the metadata store cannot be read, and says so; telemetry write
failures appear per model."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from starlette.testclient import TestClient
from tests.api.conftest import admin_token, app, backend, client

from keel.services.backend import Backend

__all__ = ["admin_token", "app", "backend", "client"]


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    scraped = client.get("/metrics")
    assert scraped.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(scraped.text)
        for s in f.samples
    }


def test_write_failures_are_counted_per_model(client: TestClient, backend: Backend) -> None:
    backend.telemetry.counters.write_failed("churn", "predictions")
    backend.telemetry.counters.write_failed("churn", "labels")
    found = samples(client)
    assert found[("keel_telemetry_write_failures_total", (("model", "churn"),))] == 2
    assert found[("keel_metadata_scrape_success", ())] == 1


def test_an_unreadable_store_is_reported_and_the_rest_still_served(
    client: TestClient, backend: Backend
) -> None:
    client.get("/healthz")
    with backend.engine.begin() as conn:
        conn.execute(text("DROP TABLE slo_budgets"))
    found = samples(client)
    assert found[("keel_metadata_scrape_success", ())] == 0
    assert not any(name == "keel_model_info" for name, _ in found)
    assert any(name == "keel_http_requests_total" for name, _ in found)
