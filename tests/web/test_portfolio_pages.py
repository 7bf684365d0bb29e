"""The portfolio, model and version pages, in-process: what a manager reads on them, filters,
sorting, pages, bad parameters, who may look, and SQL statement counts that do not grow with
the rows shown."""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient
from tests.api.conftest import bearer

from keel.domain.costs import BudgetScope
from keel.domain.incidents import Severity
from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.domain.registry import Environment, Lineage, Model, ModelCard, VersionDraft
from keel.services.backend import Backend
from keel.store.sql.engine import write_transaction
from keel.store.sql.tables import models
from keel.store.sql.tables_monitoring import metric_points

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
APRIL = Principal("april", grants=(Grant(Role.APPROVER, "risk"),))
POLICY = """\
tier: unassessed
checks:
  security:
    max_artifact_mb: 1
  signoff:
    approvals: 1
"""


def _model(backend: Backend, name: str, team: str, versions: int = 1) -> None:
    backend.registry.create_model(ADMIN, Model(name=name, team=team, owner=f"{name}-owner"))
    for n in range(versions):
        backend.registry.register_version(
            ADMIN,
            name,
            io.BytesIO(pickle.dumps(n)),
            "model.pkl",
            VersionDraft(
                environment=Environment("3.11.9", {"scikit-learn": "1.6"}),
                lineage=Lineage(git_commit="abc123def4567890", parent_version=n or None),
                card=ModelCard(intended_use=f"Scoring {name} customers"),
            ),
        )


def _points(
    backend: Backend, model: str, check: str, column: str | None, statuses: list[str]
) -> None:
    """A metric series of ``model``, one daily window per status (oldest first)."""
    end = datetime(2026, 11, 1, tzinfo=UTC)
    with write_transaction(backend.engine) as conn:
        model_id = conn.execute(models.select().where(models.c.name == model)).one().id
        for day, status in enumerate(statuses):
            conn.execute(
                metric_points.insert().values(
                    monitor_id=1,
                    model_id=model_id,
                    version=1,
                    window_start=end + timedelta(days=day - 1),
                    window_end=end + timedelta(days=day),
                    check=check,
                    column_name=column,
                    metric="psi" if check == "drift" else "accuracy",
                    value=0.1 * (day + 1),
                    threshold=0.2,
                    status=status,
                    recorded_at=end,
                )
            )


@pytest.fixture
def portfolio(backend: Backend) -> Backend:
    """churn (risk, in production, drifting, a P1 open, a budget), fraud (risk, a candidate
    approved with a comment) and upsell (growth, nothing yet)."""
    registry, governance = backend.registry, backend.governance
    registry.create_team(ADMIN, "risk")
    registry.create_team(ADMIN, "growth")
    governance.apply_policy(ADMIN, POLICY)
    _model(backend, "churn", "risk", versions=2)
    governance.run_gates(ADMIN, "churn", 1)
    governance.approve(APRIL, "churn", 1, "reviewed the scan")
    governance.promote(ADMIN, "churn", 1)
    _points(backend, "churn", "drift", "income", ["ok", "warning", "alert"])
    _points(backend, "churn", "performance", None, ["ok", "ok", "ok"])
    backend.incidents.trigger(
        ADMIN, key="k1", model="churn", version=1, title="income drifted", severity=Severity.P1
    )
    backend.costs.set_budget(ADMIN, str(BudgetScope.MODEL), "churn", "250")
    _model(backend, "fraud", "risk")
    governance.run_gates(ADMIN, "fraud", 1)
    _model(backend, "upsell", "growth")
    return backend


def _rows(html: str) -> list[str]:
    """The model names of the portfolio table, in order."""
    return re.findall(r'<th scope="row"><a href="/models/[^"]+">([^<]+)</a></th>', html)


def test_the_portfolio_shows_each_models_morning_facts_and_the_tiles(
    portfolio: Backend, browser: TestClient, admin_token: str
) -> None:
    page = browser.get("/", headers=bearer(admin_token))
    assert page.status_code == 200
    html = page.text
    assert _rows(html) == ["churn", "fraud", "upsell"]
    churn = html[html.index('<a href="/models/churn">') : html.index('<a href="/models/fraud">')]
    assert '<a href="/models/churn/versions/1">v1</a>' in churn  # in production
    assert 'class="verdict verdict-drifting">drifting</span>' in churn
    assert "drift: alert" in churn
    assert '1 <span class="muted">(P1: 1)</span>' in churn
    assert "of 250.00" in churn  # cost against its budget
    assert '<a href="/models/churn/versions/2">v2</a>' in churn  # the newest candidate
    fraud = html[html.index('<a href="/models/fraud">') : html.index('<a href="/models/upsell">')]
    assert "verdict-awaiting-sign-off" in fraud
    assert "verdict-unmonitored" in fraud
    api = browser.get("/api/v1/portfolio", headers=bearer(admin_token)).json()
    tiles = api["tiles"]
    assert tiles["in_production"] == 1
    assert tiles["incidents_by_severity"] == {"P1": 1}
    assert tiles["candidates_waiting"] == 1  # fraud v1: gates run, sign-off pending
    assert sum(tiles["maturity"]["levels"].values()) == 3
    assert tiles["dora"]["deployments"] == 1
    by_name = {r["model"]: r for r in api["rows"]}
    assert by_name["churn"]["health"]["verdict"] == "drifting"
    assert by_name["churn"]["budget"] == "250"
    assert by_name["fraud"]["candidate"]["verdict"] == "awaiting sign-off"
    assert by_name["upsell"]["candidate"]["verdict"] == "not run"


def test_filters_sort_and_pages(portfolio: Backend, browser: TestClient, admin_token: str) -> None:
    def names(query: str) -> list[str]:
        page = browser.get(f"/{query}", headers=bearer(admin_token))
        assert page.status_code == 200, page.text
        return _rows(page.text)

    assert names("?team=growth") == ["upsell"]
    assert names("?status=production") == ["churn"]
    assert names("?tier=high") == []
    assert names("?tier=unassessed&team=risk") == ["churn", "fraud"]
    assert names("?sort=name&order=desc") == ["upsell", "fraud", "churn"]
    assert names("?sort=incidents&order=desc")[0] == "churn"
    assert names("?sort=team") == ["upsell", "churn", "fraud"]
    first = browser.get("/?per_page=2", headers=bearer(admin_token)).text
    assert _rows(first) == ["churn", "fraud"]
    assert 'href="/?page=2&amp;per_page=2" rel="next"' in first
    second = browser.get("/?per_page=2&page=2", headers=bearer(admin_token)).text
    assert _rows(second) == ["upsell"]
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert "No models on page 9" in browser.get("/?page=9", headers=bearer(admin_token)).text
    # The filter form has a label for each control, and keeps what was chosen.
    filtered = browser.get("/?team=growth", headers=bearer(admin_token)).text
    for control in ("f-team", "f-tier", "f-status"):
        assert f'<label for="{control}">' in filtered
    assert '<option value="growth" selected>' in filtered


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("sort=owner_email", "sort"),
        ("page=-1", "page"),
        ("page=two", "page"),
        ("per_page=5000", "per_page"),
        ("tier=critical", "tier"),
        ("status=live", "status"),
        ("order=sideways", "order"),
    ],
)
def test_a_bad_parameter_is_a_page_naming_it(
    portfolio: Backend, browser: TestClient, admin_token: str, query: str, parameter: str
) -> None:
    page = browser.get(f"/?{query}", headers=bearer(admin_token))
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert f"The &#39;{parameter}&#39; parameter must be" in page.text
    api = browser.get(f"/api/v1/portfolio?{query}", headers=bearer(admin_token))
    assert api.status_code == 422
    assert api.json()["error"]["details"]["field"] == parameter


def test_a_viewer_reads_the_pages_and_a_browser_without_a_session_is_sent_to_sign_in(
    portfolio: Backend, browser: TestClient
) -> None:
    portfolio.identity.store.create_principal("vera", PrincipalKind.USER, "root")
    portfolio.identity.store.grant("vera", Role.VIEWER, "growth", "root")
    token, _ = portfolio.identity.create_token(ADMIN, principal="vera", name="t")
    for url in ("/", "/models/churn", "/models/churn/versions/1"):
        assert browser.get(url, headers=bearer(token)).status_code == 200, url
        anonymous = browser.get(url)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login"


def test_the_model_page(portfolio: Backend, browser: TestClient, admin_token: str) -> None:
    page = browser.get("/models/churn", headers=bearer(admin_token))
    assert page.status_code == 200
    html = page.text
    assert '<a href="/models/churn/versions/2">v2</a>' in html
    assert '<span class="verdict verdict-production">production</span>' in html
    assert "Alias history" in html and "<td>production</td>" in html
    assert "commit <code>abc123def456</code>" in html
    assert 'from <a href="/models/churn/versions/1">v1</a>' in html  # v2's parent
    assert "Scoring churn customers" in html  # the production version's card
    assert 'aria-label="Drift per column of churn"' in html
    assert 'aria-label="Live performance of churn"' in html
    assert "<td>income (psi)</td>" in html  # the chart's data as a table
    assert "#1 income drifted" in html
    assert '<a href="/models/churn/documents?format=html">HTML</a>' in html
    assert "Estimated performance" in html
    assert "/static/plotly/plotly.min.js" in html
    document = browser.get("/models/churn/documents?format=md", headers=bearer(admin_token))
    assert document.status_code == 200 and "churn" in document.text


def test_the_version_page(portfolio: Backend, browser: TestClient, admin_token: str) -> None:
    page = browser.get("/models/churn/versions/1", headers=bearer(admin_token))
    assert page.status_code == 200
    html = page.text
    assert "<caption>security: checks</caption>" in html  # the scan's evidence as a table
    assert '<th scope="row">signoff</th>' in html
    assert "reviewed the scan" in html and "<td>april</td>" in html
    assert 'href="/models/churn/versions/1/artifact"' in html
    download = browser.get("/models/churn/versions/1/artifact", headers=bearer(admin_token))
    assert download.status_code == 200
    assert download.content == pickle.dumps(0)
    assert "attachment" in download.headers["content-disposition"]


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/models/nobody", 404, "nobody"),
        ("/models/churn/versions/99", 404, "99"),
        ("/models/churn/versions/0", 400, "whole number"),
        ("/models/churn/versions/x", 400, "whole number"),
        ("/models/churn/documents?format=pdf", 400, "format"),
    ],
)
def test_a_missing_model_or_a_bad_version_is_a_clear_page(
    portfolio: Backend, browser: TestClient, admin_token: str, url: str, status: int, words: str
) -> None:
    page = browser.get(url, headers=bearer(admin_token))
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert words in page.text


@contextmanager
def _statements(backend: Backend) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        # Signing in records the token's last use now and then: the token's write, not the page's.
        if not str(args[2]).startswith(("UPDATE api_tokens SET last_used_at", "BEGIN IMMEDIATE")):
            seen.append(str(args[2]))

    event.listen(backend.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(backend.engine, "before_cursor_execute", count)


def test_statement_counts_do_not_grow_with_the_rows_shown(
    backend: Backend, browser: TestClient, admin_token: str
) -> None:
    backend.registry.create_team(ADMIN, "risk")
    for n in range(3):
        _model(backend, f"m{n:02d}", "risk", versions=2)
    browser.get("/", headers=bearer(admin_token))  # the maturity tile is kept for minutes

    def counted(url: str) -> int:
        with _statements(backend) as seen:
            assert browser.get(url, headers=bearer(admin_token)).status_code == 200
        return len(seen)

    few, model_few = counted("/"), counted("/models/m00")
    for n in range(3, 15):
        _model(backend, f"m{n:02d}", "risk", versions=1)
        backend.registry.register_version(
            ADMIN, "m00", io.BytesIO(f"more {n}".encode()), "m.bin", VersionDraft()
        )
    backend.portfolio.forget_slow_tiles()  # as after they expired
    browser.get("/", headers=bearer(admin_token))
    many, model_many = counted("/"), counted("/models/m00")
    assert (many, model_many) == (few, model_few)
