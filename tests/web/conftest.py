"""The real server (API + dashboard) over a temporary data directory, driven in-process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from tests.api.conftest import admin_token, app, backend

# The browser fixtures are defined once, here: a second definition (imported into another test
# module) would start a second Playwright in the same thread, which Playwright refuses.
from tests.browser import browser_page, chromium

__all__ = ["admin_token", "app", "backend", "browser_page", "chromium"]


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    """A client like a browser: no token of its own, keeps cookies, shows redirects."""
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client
