"""The CLI against the real app, in-process, through the same transport as the SDK tests."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from tests.sdk.conftest import admin_token, keel_backend, server_transport
from typer.testing import CliRunner, Result

from keel.cli import registry
from keel.cli.main import app
from keel.sdk import Client

__all__ = ["admin_token", "keel_backend", "server_transport"]

Keel = Callable[..., Result]


@pytest.fixture
def keel_cli(
    server_transport: httpx.BaseTransport, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> Keel:
    """Run ``keel ARGS...`` against the in-process server; returns Click's result."""

    def connect(url: str | None, token: str | None) -> Client:
        return Client(
            url="http://testserver", token=token or admin_token, transport=server_transport
        )

    monkeypatch.setattr(registry, "client_factory", connect)
    monkeypatch.delenv("KEEL_URL", raising=False)
    monkeypatch.delenv("KEEL_TOKEN", raising=False)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return run
