"""The registry through its REST API, as a client sees it."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

from starlette.testclient import TestClient

from keel.config import Settings
from keel.server import build_app
from keel.services.backend import Backend

VERSIONS = "/api/v1/models/churn/versions"


def _register(
    client: TestClient, data: bytes = b"weights", **metadata: object
) -> dict[str, object]:
    response = client.post(
        VERSIONS, files={"artifact": ("model.pkl", data)}, data={"metadata": json.dumps(metadata)}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_version_upload_and_verified_download(client: TestClient, team_and_model: str) -> None:
    data = pickle.dumps({"weights": list(range(100))})
    created = _register(client, data, metrics={"roc_auc": 0.93}, params={"C": 0.5})
    assert created["version"] == 1
    assert created["status"] == "registered"
    artifact = created["artifact"]
    assert isinstance(artifact, dict)
    assert artifact["sha256"] == hashlib.sha256(data).hexdigest()
    assert (artifact["size"], artifact["flavor"], artifact["filename"]) == (
        len(data),
        "pickle",
        "model.pkl",
    )
    download = client.get(f"{VERSIONS}/1/artifact")
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["x-keel-artifact-sha256"] == artifact["sha256"]
    assert 'filename="model.pkl"' in download.headers["content-disposition"]
    assert _register(client)["version"] == 2
    assert client.get(f"{VERSIONS}/1").json()["metrics"] == {"roc_auc": 0.93}


def test_tampered_artifact_is_never_served(
    client: TestClient, team_and_model: str, backend: Backend
) -> None:
    created = _register(client, b"the real model")
    sha = created["artifact"]["sha256"]  # type: ignore[index]
    stored = Path(backend.settings.artifact_url) / "sha256" / sha[:2] / sha
    stored.write_bytes(b"the evil model")
    response = client.get(f"{VERSIONS}/1/artifact")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "artifact_corrupted"
    assert sha in error["message"]
    assert b"evil" not in response.content


def test_lifecycle_through_the_api(client: TestClient, team_and_model: str) -> None:
    _register(client)
    moved = client.post(f"{VERSIONS}/1/status", json={"status": "candidate", "reason": "review"})
    assert moved.json()["status"] == "candidate"
    refused = client.post(f"{VERSIONS}/1/status", json={"status": "retired"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "illegal_transition"
    assert "'candidate' to 'retired'" in refused.json()["error"]["message"]


def _user(client: TestClient, name: str, role: str, team: str | None) -> dict[str, str]:
    """A new user with ``role`` in ``team``, and the Authorization header of its token."""
    assert client.post("/api/v1/users", json={"name": name}).status_code == 201
    grant = client.post(f"/api/v1/users/{name}/roles", json={"role": role, "team": team})
    assert grant.status_code == 200, grant.text
    created = client.post("/api/v1/tokens", json={"principal": name, "name": "test"})
    return {"Authorization": f"Bearer {created.json()['token']}"}


def test_aliases_and_their_history(client: TestClient, team_and_model: str) -> None:
    _register(client)
    _register(client)
    ana = _user(client, "ana", "contributor", "risk")
    bob = _user(client, "bob", "contributor", "risk")
    alias_url = "/api/v1/models/churn/aliases/champion"
    assert client.put(alias_url, json={"version": 1}, headers=ana).status_code == 200
    assert client.put(alias_url, json={"version": 2}, headers=bob).status_code == 200
    current = client.get("/api/v1/models/churn/aliases").json()
    assert [(a["alias"], a["version"], a["set_by"]) for a in current] == [("champion", 2, "bob")]
    assert client.get(f"{VERSIONS}/2").json()["aliases"] == ["champion"]
    history = client.get(
        "/api/v1/models/churn/aliases/history", params={"alias": "champion"}
    ).json()
    assert [(h["version"], h["set_by"], h["cleared_by"]) for h in history] == [
        (2, "bob", None),
        (1, "ana", "bob"),
    ]
    assert client.delete(alias_url).status_code == 204
    assert client.get("/api/v1/models/churn/aliases").json() == []
    history = client.get("/api/v1/models/churn/aliases/history").json()
    assert [(h["version"], h["cleared_by"]) for h in history] == [(2, "admin"), (1, "bob")]
    assert client.put("/api/v1/models/churn/aliases/2", json={"version": 1}).status_code == 422


def test_models_list_filters_and_cursor(client: TestClient) -> None:
    client.post("/api/v1/teams", json={"name": "risk"})
    client.post("/api/v1/teams", json={"name": "growth"})
    for i in range(7):
        team = "risk" if i % 2 else "growth"
        body = {
            "name": f"m{i}",
            "team": team,
            "owner": "ana",
            "tags": ["even" if i % 2 == 0 else "odd"],
        }
        assert client.post("/api/v1/models", json=body).status_code == 201
    names, cursor = [], None
    while True:
        page = client.get(
            "/api/v1/models", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
        ).json()
        names += [m["name"] for m in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert names == [f"m{i}" for i in range(7)]
    risk = client.get("/api/v1/models", params={"team": "risk"}).json()["items"]
    assert [m["name"] for m in risk] == ["m1", "m3", "m5"]
    odd = client.get("/api/v1/models", params={"tag": "odd", "q": "m3"}).json()["items"]
    assert [m["name"] for m in odd] == ["m3"]
    patched = client.patch("/api/v1/models/m3", json={"owner": "bob", "tags": ["x"]}).json()
    assert (patched["owner"], patched["tags"], patched["team"]) == ("bob", ["x"], "risk")


def test_health_readiness_and_metrics(client: TestClient, team_and_model: str) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    client.get("/api/v1/models/churn")
    text = client.get("/metrics").text
    assert (
        'keel_http_requests_total{method="GET",route="/api/v1/models/{name}",status="200"}' in text
    )
    assert "keel_http_request_duration_seconds_bucket" in text


def test_unmigrated_database_is_not_ready(tmp_path: Path) -> None:
    backend = Backend.open(Settings.load(data_dir=tmp_path, env={}))
    with TestClient(build_app(backend), raise_server_exceptions=False) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "keel db upgrade" in response.json()["error"]["message"]
        assert client.get("/healthz").status_code == 200
    backend.close()


def test_dashboard_lists_models(client: TestClient, team_and_model: str) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert '<a href="/models/churn">churn</a>' in page.text  # each model links to its page


def test_openapi_documents_the_registry(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/models/{name}/aliases/history" in paths
    assert client.get("/docs").status_code == 200
