"""The browser harness on the dashboard as it stands: sign in, then the home page passes the rules
every page follows (no outside URL, no console error, no serious axe-core violation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.browser import Watched, opened, sign_in
from tests.running_keel import Server, keel_up


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with keel_up(tmp_path) as running:
        yield running


def test_a_person_signs_in_and_sees_the_models(server: Server, browser_page: Watched) -> None:
    token = (server.data_dir / "admin-token").read_text().strip()
    sign_in(browser_page, server.url, token)
    page = opened(browser_page, f"{server.url}/")
    assert "Sign in" not in page.title()
