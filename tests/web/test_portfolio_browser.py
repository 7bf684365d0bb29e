"""The portfolio, a model page and a version page in a real browser against a real `keel up`
seeded through the SDK: each passes the dashboard's rules (no outside URL, no console error,
axe-core clean), and the portfolio's link to a model is followed with the keyboard alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from tests.browser import Watched, opened, sign_in
from tests.running_keel import Server, keel_up

from keel.sdk import Client

MAX_TABS = 80


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with keel_up(tmp_path) as running:
        yield running


def _seed(server: Server, token: str) -> None:
    fitted = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    with Client(url=server.url, token=token) as keel:
        keel.create_team("risk")
        keel.create_team("growth")
        for name, team in (("churn", "risk"), ("upsell", "growth")):
            keel.create_model(name, team=team, owner="ana")
            for _ in range(2):
                keel.register_version(name, fitted, capture_git=False)
        keel.promote("churn", 1, break_glass="the browser test's production version")


def test_the_pages_pass_the_rules_and_a_model_is_reached_by_keyboard(
    server: Server, browser_page: Watched
) -> None:
    token = (server.data_dir / "admin-token").read_text().strip()
    _seed(server, token)
    sign_in(browser_page, server.url, token)
    home = opened(browser_page, f"{server.url}/")
    assert home.locator("table.portfolio caption").inner_text().startswith("2 models")
    opened(browser_page, f"{server.url}/models/churn")
    opened(browser_page, f"{server.url}/models/churn/versions/1")

    page = opened(browser_page, f"{server.url}/", check_axe=False)
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == "/models/churn":
            break
    else:
        pytest.fail(f"{MAX_TABS} presses of Tab never reached the link to churn")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/models/churn")
    assert page.locator("h1").inner_text() == "churn"
