"""The work pages in a real browser against a real `keel up`: an approver approves from the
queue, a contributor acknowledges and resolves an incident and pauses a rollout with the
keyboard alone, each result checked through the API; every page passes `opened` (200, nothing
outside Keel, no console error, no serious axe-core violation)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from tests.browser import Watched, opened, sign_in
from tests.running_keel import Server, keel_up

from keel.sdk import Client

SIGNOFF_ONLY = "tier: unassessed\nchecks:\n  signoff:\n    approvals: 1\n"
MONTH = "2026-10"  # the month of `keel costs sample`'s bill
TABS = 60  # more than any page here has focusable elements before its first action


@dataclass
class Portfolio:
    server: Server
    tokens: dict[str, str]
    waiting: int  # a churn version waiting for april's sign-off
    rollout: int  # churn's canary in progress
    incident: int  # churn's budget incident

    def api(self, who: str = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)


def _person(http: httpx.Client, name: str, role: str) -> str:
    assert http.post("/api/v1/users", json={"name": name}).status_code == 201
    granted = http.post(f"/api/v1/users/{name}/roles", json={"role": role, "team": "risk"})
    assert granted.status_code == 200, granted.text
    made = http.post("/api/v1/tokens", json={"principal": name})
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


def _estimator() -> LogisticRegression:
    rng = np.random.default_rng(7)
    x = pd.DataFrame({"x1": rng.normal(size=60), "x2": rng.normal(size=60)})
    return LogisticRegression().fit(x, (x["x1"] > 0).astype(int))


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portfolio]:
    workdir = tmp_path_factory.mktemp("work-browser")
    with keel_up(workdir) as server:
        admin = (server.data_dir / "admin-token").read_text(encoding="utf-8").strip()
        tokens = {"admin": admin}
        with Client(server.url, token=admin) as root:
            root.create_team("risk")
            root.apply_policy("unassessed.yaml", source=SIGNOFF_ONLY)
            http = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=60
            )
            with http:
                tokens["april"] = _person(http, "april", "approver")
                tokens["cara"] = _person(http, "cara", "contributor")
            with Client(server.url, token=tokens["cara"]) as cara:
                cara.create_model("churn", team="risk", owner="ana")
                model = _estimator()

                def candidate() -> int:
                    version = cara.register_version(
                        "churn", model, capture_git=False, format="skops"
                    ).version
                    cara.run_gates("churn", version)
                    return version

                live = candidate()
                root.approve("churn", live, "baseline")
                cara.promote("churn", live)
                canary = candidate()
                root.approve("churn", canary, "ready for a canary")
                rollout = cara.deploy("churn", canary, strategy="canary").id
                waiting = candidate()
            bill = workdir / "focus.csv"
            sample = subprocess.run(
                [str(Path(sys.executable).parent / "keel"), "costs", "sample"],
                capture_output=True,
                text=True,
                check=True,
            )
            bill.write_text(sample.stdout, encoding="utf-8")
            root.import_costs(bill)
            root.set_budget("model", "10", target="churn")
            incidents = {a.incident_id for a in root.check_budgets(MONTH)} - {None}
            assert len(incidents) == 1, incidents
            yield Portfolio(server, tokens, waiting, rollout, int(incidents.pop() or 0))


def test_an_approver_approves_a_version_from_the_queue(
    portfolio: Portfolio, browser_page: Watched
) -> None:
    server = portfolio.server
    sign_in(browser_page, server.url, portfolio.tokens["april"])
    page = opened(browser_page, f"{server.url}/approvals")
    key = f"churn-{portfolio.waiting}"
    page.fill(f"#comment-{key}", "Evidence reviewed on the dashboard")
    page.click(
        f"form[action='/approvals/churn/{portfolio.waiting}/approve'] button:text('Approve')"
    )
    page.wait_for_load_state("load")
    assert page.url == f"{server.url}/approvals"
    assert f"You approved churn version {portfolio.waiting}." in page.inner_text("main")
    with portfolio.api() as api:
        decisions = api.get(f"/api/v1/models/churn/versions/{portfolio.waiting}/approvals").json()
    assert [(d["decision"], d["actor"], d["comment"]) for d in decisions] == [
        ("approve", "april", "Evidence reviewed on the dashboard")
    ]


def test_a_contributor_acknowledges_and_resolves_an_incident(
    portfolio: Portfolio, browser_page: Watched
) -> None:
    server, incident = portfolio.server, portfolio.incident
    sign_in(browser_page, server.url, portfolio.tokens["cara"])
    listing = opened(browser_page, f"{server.url}/incidents")
    listing.click(f"a[href='/incidents/{incident}']")
    page = opened(browser_page, f"{server.url}/incidents/{incident}")
    page.fill("#status-comment", "Looking at the bill")
    page.click("button:text('Acknowledge')")
    page.wait_for_load_state("load")
    assert "You acknowledged" in page.inner_text("main")
    with portfolio.api() as api:
        assert api.get(f"/api/v1/incidents/{incident}").json()["status"] == "acknowledged"
        page.click("button:text('Resolve')")
        page.wait_for_load_state("load")
        assert "You resolved" in page.inner_text("main")
        found = api.get(f"/api/v1/incidents/{incident}").json()
    assert found["status"] == "resolved"
    assert [e["actor"] for e in found["timeline"] if e["kind"] == "status"][-2:] == ["cara"] * 2


def test_a_rollout_is_paused_with_the_keyboard_alone(
    portfolio: Portfolio, browser_page: Watched
) -> None:
    server = portfolio.server
    sign_in(browser_page, server.url, portfolio.tokens["cara"])
    page = opened(browser_page, f"{server.url}/deployments")
    for _ in range(TABS):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Pause":
            break
    else:
        pytest.fail("Tab never reached the Pause button")
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    assert "You paused the rollout of churn." in page.inner_text("main")
    with portfolio.api() as api:
        state = api.get("/api/v1/models/churn/deployment").json()["state"]
    assert state == "paused"


@pytest.mark.parametrize(
    ("who", "path"),
    [("cara", "/costs?month=" + MONTH), ("cara", "/delivery"), ("admin", "/audit")],
)
def test_the_other_work_pages_pass_in_the_browser(
    portfolio: Portfolio, browser_page: Watched, who: str, path: str
) -> None:
    sign_in(browser_page, portfolio.server.url, portfolio.tokens[who])
    page = opened(browser_page, portfolio.server.url + path)
    assert "Not allowed" not in page.inner_text("main")
