"""The value routes refuse bad input with the error envelope and write nothing."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/value-model", {"kind": "declared"}, "monthly"),
        ("PUT", "/value-model", {"kind": "declared", "monthly": 1, "typo": 2}, "typo"),
        ("GET", "/roi?from=2026-11&to=2026-1", None, "month"),
        ("GET", "/roi?from=2026-11&to=2026-10", None, "to"),
        ("GET", "/value?start=2026-11-01T00:00:00&end=2026-11-02T00:00:00Z", None, "start"),
        ("GET", "/value?start=2026-11-02T00:00:00Z&end=2026-11-01T00:00:00Z", None, "end"),
    ],
)
def test_bad_value_requests_are_refused_naming_the_field(
    client: TestClient,
    team_and_model: str,
    method: str,
    path: str,
    body: object,
    field: str,
) -> None:
    client.put(
        f"/api/v1/models/{team_and_model}/value-model", json={"kind": "declared", "monthly": 7}
    )
    answer = client.request(method, f"/api/v1/models/{team_and_model}{path}", json=body)
    assert answer.status_code == 422, answer.text
    assert field in str(answer.json()["error"]), answer.text
    kept = client.get(f"/api/v1/models/{team_and_model}/value-model").json()
    assert kept["amounts"] == {"monthly": 7.0}


def test_a_model_without_a_value_model_answers_404(client: TestClient, team_and_model: str) -> None:
    answer = client.get(f"/api/v1/models/{team_and_model}/roi?from=2026-11&to=2026-11")
    assert answer.status_code == 404
    assert "keel value set" in answer.json()["error"]["message"]
