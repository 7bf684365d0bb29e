"""Bad input gets a 4xx in the error envelope, naming the problem, and writes nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient
from tests.api.conftest import bearer, open_backend

from keel.server import build_app
from keel.services.backend import Backend

VERSIONS = "/api/v1/models/churn/versions"


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return dict(body["error"])


def _stored_objects(backend: Backend) -> list[Path]:
    root = Path(backend.settings.artifact_url) / "sha256"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _versions(client: TestClient) -> int:
    return int(client.get("/api/v1/models/churn").json()["latest_version"])


def test_duplicate_model_name_is_a_conflict(client: TestClient, team_and_model: str) -> None:
    err = _error(
        client.post("/api/v1/models", json={"name": "churn", "team": "risk", "owner": "bob"}), 409
    )
    assert err["code"] == "conflict"
    assert "'churn' already exists" in err["message"]
    assert client.get("/api/v1/models/churn").json()["owner"] == "ana"


def test_unknown_model_is_not_found_everywhere(client: TestClient, backend: Backend) -> None:
    for response in [
        client.get("/api/v1/models/ghost"),
        client.patch("/api/v1/models/ghost", json={"owner": "x"}),
        client.get("/api/v1/models/ghost/versions"),
        client.get("/api/v1/models/ghost/versions/1"),
        client.get("/api/v1/models/ghost/versions/1/artifact"),
        client.get("/api/v1/models/ghost/aliases/history"),
        client.post("/api/v1/models/ghost/versions", files={"artifact": ("m.bin", b"x")}),
    ]:
        err = _error(response, 404)
        assert err["message"] == "No model named 'ghost'."
    assert _stored_objects(backend) == []


def test_corrupted_upload_is_refused_and_stores_nothing(
    client: TestClient, team_and_model: str, backend: Backend
) -> None:
    data = b"model bytes" * 100
    wrong = hashlib.sha256(b"what the client meant to send").hexdigest()
    err = _error(
        client.post(VERSIONS, files={"artifact": ("m.bin", data)}, data={"sha256": wrong}), 400
    )
    assert err["code"] == "malformed_upload"
    assert "arrived corrupted" in err["message"] and wrong in err["message"]
    assert _versions(client) == 0 and _stored_objects(backend) == []


def test_malformed_multipart_is_a_400(client: TestClient, team_and_model: str) -> None:
    response = client.post(
        VERSIONS,
        content=b'--xyz\r\nContent-Disposition: form-data; name="artifact"; filename="m"\r\n'
        b"\r\nabc",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert 400 <= response.status_code < 500
    _error(response, response.status_code)
    assert _versions(client) == 0


def test_invalid_metadata_names_the_field(client: TestClient, team_and_model: str) -> None:
    cases = {
        "{not json": "metadata",
        json.dumps({"metrics": {"auc": "high"}}): "metadata.metrics.auc",
        json.dumps({"signature": {"columns": [{"name": "a", "dtype": "complex"}]}}): (
            "metadata.signature.columns.0.dtype"
        ),
        json.dumps({"colour": "red"}): "metadata.colour",
    }
    for metadata, field in cases.items():
        err = _error(
            client.post(VERSIONS, files={"artifact": ("m.bin", b"x")}, data={"metadata": metadata}),
            422,
        )
        assert err["details"]["problems"][0]["field"] == field, err
        assert f"'{field}'" in err["message"]
    assert _versions(client) == 0


def test_nan_metric_is_refused(client: TestClient, team_and_model: str) -> None:
    err = _error(
        client.post(
            VERSIONS,
            files={"artifact": ("m.bin", b"x")},
            data={"metadata": '{"metrics": {"auc": NaN}}'},
        ),
        422,
    )
    assert "auc" in err["message"]
    assert _versions(client) == 0


def test_empty_artifact_is_refused(client: TestClient, team_and_model: str) -> None:
    err = _error(client.post(VERSIONS, files={"artifact": ("m.bin", b"")}), 422)
    assert "empty" in err["message"]
    assert _versions(client) == 0


def test_artifact_over_the_limit_is_413_and_stores_nothing(tmp_path: Path) -> None:
    backend = open_backend(tmp_path / "keel", KEEL_MAX_ARTIFACT_BYTES="1000")
    token = backend.identity.bootstrap_admin()
    assert token is not None
    with TestClient(
        build_app(backend), raise_server_exceptions=False, headers=bearer(token)
    ) as client:
        client.post("/api/v1/teams", json={"name": "risk"})
        client.post("/api/v1/models", json={"name": "churn", "team": "risk", "owner": "ana"})
        err = _error(client.post(VERSIONS, files={"artifact": ("m.bin", b"x" * 5000)}), 413)
        assert "1000 bytes" in err["message"] and "KEEL_MAX_ARTIFACT_BYTES" in err["message"]
        # Declared size under the multipart allowance but the file itself over the limit.
        assert _versions(client) == 0
        ok = client.post(VERSIONS, files={"artifact": ("m.bin", b"x" * 1000)})
        assert ok.status_code == 201
        big = client.post(
            VERSIONS,
            content=b"x" * (4 * 1024 * 1024),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert _error(big, 413)["code"] == "payload_too_large"
        assert _versions(client) == 1
    assert len(_stored_objects(backend)) == 1
    backend.close()


def test_oversized_json_body_is_413(client: TestClient) -> None:
    body = json.dumps({"name": "t", "description": "x" * (9 * 1024 * 1024)})
    err = _error(
        client.post("/api/v1/teams", content=body, headers={"content-type": "application/json"}),
        413,
    )
    assert "KEEL_MAX_REQUEST_BYTES" in err["message"]
    assert client.get("/api/v1/teams").json()["items"] == []


def test_non_utf8_name_is_refused(client: TestClient, team_and_model: str) -> None:
    body = b'{"name": "caf\xe9", "team": "risk", "owner": "ana"}'
    err = _error(
        client.post("/api/v1/models", content=body, headers={"content-type": "application/json"}),
        400,
    )
    assert "not valid UTF-8" in err["message"] and "0xe9" in err["message"]
    err = _error(client.get("/api/v1/models/caf%E9"), 422)
    assert "'model' field must be" in err["message"]
    names = [m["name"] for m in client.get("/api/v1/models").json()["items"]]
    assert names == ["churn"]


def test_names_outside_the_portable_set_are_refused(
    client: TestClient, team_and_model: str
) -> None:
    for name in ["", "has space", "../etc", "x" * 129, "café"]:
        err = _error(
            client.post("/api/v1/models", json={"name": name, "team": "risk", "owner": "a"}), 422
        )
        assert "name" in err["message"]
    assert len(client.get("/api/v1/models").json()["items"]) == 1


def test_production_alias_is_reserved_for_governance(
    client: TestClient, team_and_model: str
) -> None:
    assert client.post(VERSIONS, files={"artifact": ("m.bin", b"x")}).status_code == 201
    err = _error(client.put("/api/v1/models/churn/aliases/production", json={"version": 1}), 409)
    assert "governance" in err["message"]
    err = _error(client.post(f"{VERSIONS}/1/status", json={"status": "production"}), 409)
    assert "governance" in err["message"]
    assert client.get("/api/v1/models/churn/aliases").json() == []


def test_bad_cursor_and_limit(client: TestClient) -> None:
    assert "'cursor'" in _error(client.get("/api/v1/models?cursor=%%%"), 422)["message"]
    assert "limit" in _error(client.get("/api/v1/models?limit=0"), 422)["message"]
