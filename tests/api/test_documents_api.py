"""GET /api/v1/models/{name}/documents: each format with its content type, escaped user text."""

from __future__ import annotations

import json
import re

import pytest
from starlette.testclient import TestClient
from tests.job_runner import finished_job


@pytest.fixture
def documented(client: TestClient, team_and_model: str) -> str:
    hostile = "<script>alert(1)</script>"
    assert client.patch(
        f"/api/v1/models/{team_and_model}", json={"description": hostile}
    ).is_success
    metadata = {"description": "first cut", "card": {"human_oversight": "An analyst reviews."}}
    created = client.post(
        f"/api/v1/models/{team_and_model}/versions",
        files={"artifact": ("m.bin", b"model bytes")},
        data={"metadata": json.dumps(metadata)},
    )
    assert created.status_code == 201, created.text
    return team_and_model


@pytest.mark.parametrize(
    ("fmt", "media_type", "opening"),
    [
        ("html", "text/html; charset=utf-8", "<!DOCTYPE html>"),
        ("md", "text/markdown; charset=utf-8", "# Technical documentation: churn version 1"),
        ("json", "application/json", "{"),
    ],
)
def test_each_format_comes_with_its_content_type(
    client: TestClient, documented: str, fmt: str, media_type: str, opening: str
) -> None:
    response = client.get(f"/api/v1/models/{documented}/documents", params={"format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.text.startswith(opening)
    assert "churn-v1-technical-documentation" in response.headers["content-disposition"]
    if fmt != "json":  # JSON carries the text as data; md and html must not carry markup
        assert "<script>" not in response.text
    assert "An analyst reviews." in response.text


def test_the_json_document_lists_gaps_before_sections(client: TestClient, documented: str) -> None:
    response = client.get(f"/api/v1/models/{documented}/documents?format=json&version=1")
    document = response.json()
    assert (document["model"], document["version"], document["risk_tier"]) == (
        "churn",
        1,
        "unassessed",
    )
    keys = [g["key"] for g in document["gaps"]]
    assert "risk_classification" in keys and "human_oversight" not in keys
    assert int(response.headers["x-keel-document-gaps"]) == len(keys)
    assert list(document).index("gaps") < list(document).index("sections")
    assert document["sections"][0]["content"]["description"] == "<script>alert(1)</script>"


def test_html_is_the_default_and_escapes_user_text(client: TestClient, documented: str) -> None:
    response = client.get(f"/api/v1/models/{documented}/documents")
    assert response.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ({"format": "pdf"}, 422, "print it to PDF"),
        ({"version": 7}, 404, "no version 7"),
        ({"version": 0}, 422, "version"),
    ],
)
def test_bad_requests_say_what_to_do(
    client: TestClient, documented: str, query: dict[str, object], status: int, says: str
) -> None:
    response = client.get(f"/api/v1/models/{documented}/documents", params=query)
    assert response.status_code == status
    assert says in response.json()["error"]["message"]


def test_a_model_without_versions_has_nothing_to_document(
    client: TestClient, team_and_model: str
) -> None:
    response = client.get(f"/api/v1/models/{team_and_model}/documents")
    assert response.status_code == 404
    assert "Register one first" in response.json()["error"]["message"]


def test_an_export_on_request_is_a_job_whose_result_is_the_document(
    client: TestClient, documented: str
) -> None:
    queued = client.post(
        f"/api/v1/models/{documented}/documents/exports", json={"format": "md", "version": 1}
    )
    assert queued.status_code == 202, queued.text
    assert queued.json()["kind"] == "compliance-export"
    job = finished_job(client, queued.json()["id"])
    assert job["state"] == "succeeded", job
    result = job["result"]
    direct = client.get(f"/api/v1/models/{documented}/documents?format=md&version=1")
    # The same document, but for the moment it was generated at.
    stamp = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00")
    assert stamp.sub("T", result["document"]) == stamp.sub("T", direct.text)
    assert (result["model"], result["version"], result["format"]) == ("churn", 1, "md")
    assert result["gaps"] == int(direct.headers["x-keel-document-gaps"])
    assert result["filename"] == "churn-v1-technical-documentation.md"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("churn", {"format": "pdf"}, 422, "format"),
        ("churn", {"version": 9}, 404, None),
        ("nope", {}, 404, None),
        ("churn", {"format": "md", "colour": "red"}, 422, "colour"),
    ],
    ids=["format", "unknown-version", "unknown-model", "unknown-field"],
)
def test_a_refused_export_queues_nothing(
    client: TestClient,
    documented: str,
    path: str,
    body: dict[str, object],
    status: int,
    field: str | None,
) -> None:
    refused = client.post(f"/api/v1/models/{path}/documents/exports", json=body)
    assert refused.status_code == status, refused.text
    error = refused.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if field is not None:
        assert field in refused.text
    assert client.get("/api/v1/jobs").json() == []
