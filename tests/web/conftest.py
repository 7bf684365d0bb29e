"""The real server (API + dashboard) over a temporary data directory, driven in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from tests.api.conftest import open_backend

from keel.server import build_app
from keel.services.backend import Backend


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


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    """A client like a browser: no token of its own, keeps cookies, shows redirects."""
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client
