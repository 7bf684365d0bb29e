"""Secrets never leak: an API token appears in no log line, error body, audit event, token
listing or database byte, whatever happens to it. Only its SHA-256 digest is kept."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.api.conftest import bearer, open_backend

from keel.domain.tokens import token_digest
from keel.server import build_app
from keel.services.backend import Backend


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = open_backend(tmp_path / "keel")
    yield opened
    opened.close()


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """DEBUG for the root and every logger that exists (SQLAlchemy's log statement parameters)."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _database_bytes(backend: Backend) -> bytes:
    database = backend.settings.data_dir / "keel.db"
    files = [database, database.with_name("keel.db-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def test_tokens_never_leak(backend: Backend, everything_logged: pytest.LogCaptureFixture) -> None:
    admin_token = backend.identity.bootstrap_admin()
    assert admin_token is not None
    app = build_app(backend)
    bodies: list[str] = []  # every answer that is not a success
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        admin = bearer(admin_token)
        user = client.post(
            "/api/v1/users", json={"name": "ci-bot", "kind": "service"}, headers=admin
        )
        assert user.status_code == 201, user.text
        created = client.post("/api/v1/tokens", json={"principal": "ci-bot"}, headers=admin)
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        token_id = created.json()["info"]["id"]

        me = client.get("/api/v1/users/me", headers=bearer(token))
        assert me.status_code == 200
        assert me.json()["name"] == "ci-bot"
        revoked = client.delete(f"/api/v1/tokens/{token_id}", headers=admin)
        assert revoked.status_code == 200
        garbage = "keel_" + "g" * 43
        for presented in (token, garbage, admin_token + "x", token.upper()):
            refused = client.get("/api/v1/users/me", headers=bearer(presented))
            assert refused.status_code == 401, presented
            assert refused.json()["error"]["code"] == "unauthenticated"
            assert presented not in refused.text
            bodies.append(refused.text)
        for presented in (token, garbage):
            form = client.post("/login", data={"token": presented})
            assert form.status_code == 401
            assert "set-cookie" not in form.headers
            bodies.append(form.text)
        bodies.append(client.get("/", headers=bearer(token)).text)

        audit = client.get("/api/v1/audit", params={"limit": 1000}, headers=admin)
        assert audit.status_code == 200
        actions = {event["action"] for event in audit.json()["items"]}
        assert {"token.create", "token.revoke"} <= actions
        listing = client.get("/api/v1/tokens", headers=admin)
        assert listing.status_code == 200
        assert {t["hint"] for t in listing.json()} == {admin_token[:9] + "…", token[:9] + "…"}

    stored = _database_bytes(backend)
    # Not vacuous: the checks below read the log, the audit trail and the database itself.
    assert "api_tokens" in everything_logged.text
    assert token_digest(token) in everything_logged.text  # statement parameters are logged
    assert token_digest(token).encode() in stored
    for secret in (admin_token, token):
        assert secret not in everything_logged.text
        for record in everything_logged.records:
            assert secret not in record.getMessage()
            assert secret not in repr(record.args)
        for body in bodies:
            assert secret not in body
        assert secret not in audit.text
        assert secret not in listing.text
        assert secret.encode() not in stored
