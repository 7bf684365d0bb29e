"""The real Keel app over a temporary data directory, reached by the SDK in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient
from tests.job_runner import running_jobs

from keel.api.app import create_app
from keel.config import Settings
from keel.sdk import Client
from keel.services.backend import Backend


@pytest.fixture
def keel_backend(tmp_path: Path) -> Iterator[Backend]:
    """A fresh, migrated backend in a temporary data directory."""
    backend = Backend.open(Settings.load(data_dir=tmp_path / "keel", env={}))
    backend.migrate()
    yield backend
    backend.close()


@pytest.fixture
def admin_token(keel_backend: Backend) -> str:
    """The first admin's token, as the first `keel up` creates it."""
    token = keel_backend.identity.bootstrap_admin()
    assert token is not None
    return token


@pytest.fixture
def server_transport(keel_backend: Backend) -> Iterator[httpx.BaseTransport]:
    """An httpx transport that calls the Keel app in-process, without a network (with a job
    runner beside it, as `keel up` has, so queued gate runs and retraining runs finish)."""
    with TestClient(create_app(keel_backend)) as test_client, running_jobs(keel_backend):
        yield test_client._transport


@pytest.fixture
def keel(server_transport: httpx.BaseTransport, admin_token: str) -> Iterator[Client]:
    with Client(url="http://testserver", token=admin_token, transport=server_transport) as client:
        yield client
