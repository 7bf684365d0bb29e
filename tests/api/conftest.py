"""The real app over a real (temporary) data directory, driven in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from tests.job_runner import running_jobs

from keel.config import Settings
from keel.server import build_app
from keel.services.backend import Backend


def open_backend(data_dir: Path, **env: str) -> Backend:
    backend = Backend.open(Settings.load(data_dir=data_dir, env=env))
    backend.migrate()
    return backend


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = open_backend(tmp_path / "keel")
    yield opened
    opened.close()


@pytest.fixture
def app(backend: Backend) -> FastAPI:
    return build_app(backend)


@pytest.fixture
def admin_token(backend: Backend) -> str:
    token = backend.identity.bootstrap_admin()
    assert token is not None
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(app: FastAPI, admin_token: str) -> Iterator[TestClient]:
    """A client holding the first admin's token (with a job runner beside the app, as `keel up`
    has, so queued jobs finish)."""
    backend = app.state.backend
    with (
        TestClient(app, raise_server_exceptions=False, headers=bearer(admin_token)) as test_client,
        running_jobs(backend),
    ):
        yield test_client


@pytest.fixture
def team_and_model(client: TestClient) -> str:
    assert client.post("/api/v1/teams", json={"name": "risk"}).status_code == 201
    created = client.post("/api/v1/models", json={"name": "churn", "team": "risk", "owner": "ana"})
    assert created.status_code == 201, created.text
    return "churn"
