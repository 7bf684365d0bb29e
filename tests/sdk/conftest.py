"""The real Keel app over a temporary data directory, reached by the SDK in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from keel.api.app import create_app
from keel.config import Settings
from keel.sdk import Client
from keel.services.backend import Backend


@pytest.fixture
def server_transport(tmp_path: Path) -> Iterator[httpx.BaseTransport]:
    """An httpx transport that calls a fresh, migrated Keel app without a network."""
    backend = Backend.open(Settings.load(data_dir=tmp_path / "keel", env={}))
    backend.migrate()
    try:
        with TestClient(create_app(backend)) as test_client:
            yield test_client._transport
    finally:
        backend.close()


@pytest.fixture
def keel(server_transport: httpx.BaseTransport) -> Iterator[Client]:
    with Client(url="http://testserver", transport=server_transport) as client:
        yield client
