"""The work pages in-process: what each role sees and may do (the role walk), CSRF on every
action, bad input, and a statement count that does not grow with the rows shown."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import event
from starlette.testclient import TestClient
from tests.api.conftest import backend
from tests.web.html_parts import inline_code
from tests.web.work_world import Portfolio, build, csrf_of, signed_in

from keel.domain.governance import Decision
from keel.domain.incidents import IncidentStatus
from keel.server import build_app
from keel.services.backend import Backend

__all__ = ["backend"]

PAGES = [
    "/approvals",
    "/incidents",
    "/incidents/{incident}",
    "/deployments",
    "/costs",
    "/delivery",
    "/audit",
]
ADMIN_ONLY = {"/audit"}


@pytest.fixture
def world(backend: Backend) -> Portfolio:
    return build(backend)


@pytest.fixture
def web(backend: Backend) -> Iterator[TestClient]:
    app: FastAPI = build_app(backend)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


def _urls(world: Portfolio, incident: int) -> list[str]:
    return [page.replace("{incident}", str(incident)) for page in PAGES]


@pytest.mark.parametrize("role", ["viewer", "contributor", "approver", "admin"])
def test_each_role_walks_every_page(world: Portfolio, web: TestClient, role: str) -> None:
    incident = world.incident()
    waiting = world.candidate()
    world.rollout()
    signed_in(web, world.tokens[role])
    for url in _urls(world, incident):
        page = web.get(url)
        if url in ADMIN_ONLY and role != "admin":
            assert page.status_code == 403, (role, url)
            assert "Not allowed" in page.text
            assert "admin" in page.text
            continue
        assert page.status_code == 200, (role, url, page.text)
        assert page.headers["cache-control"] == "no-store"
        assert inline_code(page.text) == [], url
    approvals = web.get("/approvals").text
    approve_form = f'action="/approvals/churn/{waiting}/approve"'
    assert (approve_form in approvals) == (role in ("approver", "admin")), role
    detail = web.get(f"/incidents/{incident}").text
    may_write = role in ("contributor", "approver", "admin")
    assert (f'action="/incidents/{incident}/acknowledge"' in detail) == may_write
    assert ('<button type="submit">Pause</button>' in web.get("/deployments").text) == may_write


def test_an_approver_approves_from_the_queue(world: Portfolio, web: TestClient) -> None:
    waiting = world.candidate()
    signed_in(web, world.tokens["approver"])
    queue = web.get("/approvals")
    assert f'churn</a> <a href="/models/churn/versions/{waiting}">version {waiting}' in queue.text
    assert "registered by cara" in queue.text
    answer = web.post(
        f"/approvals/churn/{waiting}/approve",
        data={"comment": "Evidence reviewed", "csrf_token": csrf_of(queue.text)},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/approvals"
    (decision,) = world.backend.governance.approvals("churn", waiting)
    assert (decision.decision, decision.actor, decision.comment) == (
        Decision.APPROVE,
        "april",
        "Evidence reviewed",
    )
    after = web.get("/approvals")
    assert f"You approved churn version {waiting}." in after.text
    assert f'action="/approvals/churn/{waiting}/approve"' not in after.text
    # The message is shown once.
    assert "You approved" not in web.get("/approvals").text


def test_the_service_refusal_is_shown_and_nothing_is_written(
    world: Portfolio, web: TestClient
) -> None:
    # Ada (an admin) registered this version, so she may not approve it: separation of duties.
    own = world.register(by="admin")
    world.backend.governance.run_gates(world.person("admin"), "churn", own)
    signed_in(web, world.tokens["admin"])
    queue = web.get("/approvals")
    assert f'action="/approvals/churn/{own}/approve"' not in queue.text  # not in ada's queue
    head = world.audit_head()
    forced = web.post(
        f"/approvals/churn/{own}/approve",
        data={"comment": "mine", "csrf_token": csrf_of(queue.text)},
    )
    assert forced.status_code == 403
    assert "Separation of duties" in forced.text
    assert world.backend.governance.approvals("churn", own) == []
    assert world.audit_head() == head


def test_a_refused_rejection_of_a_version_in_production_says_why(
    world: Portfolio, web: TestClient
) -> None:
    live = world.approved()
    world.backend.governance.promote(world.person("admin"), "churn", live)
    signed_in(web, world.tokens["approver"])
    token = csrf_of(web.get("/approvals").text)
    refused = web.post(
        f"/approvals/churn/{live}/reject", data={"comment": "too late", "csrf_token": token}
    )
    assert refused.status_code == 303
    shown = web.get("/approvals")
    assert "is &#39;production&#39;: sign-off is for candidates" in shown.text
    assert 'class="error" role="alert"' in shown.text


@pytest.mark.parametrize("role", ["viewer", "contributor"])
def test_a_forged_approval_without_the_role_is_refused(
    world: Portfolio, web: TestClient, role: str
) -> None:
    waiting = world.candidate()
    signed_in(web, world.tokens[role])
    token = csrf_of(web.get("/approvals").text)  # a valid form token of this session
    head = world.audit_head()
    for verb in ("approve", "reject"):
        forged = web.post(
            f"/approvals/churn/{waiting}/{verb}", data={"comment": "x", "csrf_token": token}
        )
        assert forged.status_code == 403, forged.text
        assert "approver" in forged.text
    assert world.backend.governance.approvals("churn", waiting) == []
    assert world.audit_head() == head


def test_every_action_without_its_form_token_is_refused_and_writes_nothing(
    world: Portfolio, web: TestClient
) -> None:
    waiting = world.candidate()
    incident = world.incident()
    rollout = world.rollout()
    signed_in(web, world.tokens["admin"])
    other = csrf_of(web.get("/approvals").text)
    signed_in(web, world.tokens["approver"])
    head = world.audit_head()
    actions = [
        (f"/approvals/churn/{waiting}/approve", {"comment": "ok"}),
        (f"/approvals/churn/{waiting}/reject", {"comment": "no"}),
        (f"/incidents/{incident}/acknowledge", {}),
        (f"/incidents/{incident}/resolve", {}),
        (f"/incidents/{incident}/comment", {"text": "hello"}),
        (f"/incidents/{incident}/postmortem", {"markdown": "# what happened"}),
        (f"/deployments/{rollout}/pause", {}),
        (f"/deployments/{rollout}/resume", {}),
        (f"/deployments/{rollout}/abort", {}),
    ]
    for url, data in actions:
        for token in (None, "0" * 64, other):  # none, a made-up one, another session's
            sent = data if token is None else {**data, "csrf_token": token}
            refused = web.post(url, data=sent)
            assert refused.status_code == 403, (url, token, refused.text)
            assert "Reload the page and submit the form again" in refused.text
    assert world.audit_head() == head
    assert world.backend.governance.approvals("churn", waiting) == []
    assert world.backend.incidents.get(incident).status == IncidentStatus.TRIGGERED
    assert world.backend.deployments.store.get(rollout).state.active


def test_signing_out_needs_the_form_token(world: Portfolio, web: TestClient) -> None:
    signed_in(web, world.tokens["viewer"])
    page = web.get("/incidents")
    assert web.post("/logout").status_code == 403
    assert web.get("/incidents").status_code == 200  # still signed in
    out = web.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert web.get("/incidents").status_code == 303


def test_an_incident_is_acknowledged_commented_resolved_and_written_up(
    world: Portfolio, web: TestClient
) -> None:
    incident = world.incident()
    signed_in(web, world.tokens["contributor"])
    page = web.get(f"/incidents/{incident}")
    token = csrf_of(page.text)
    base = f"/incidents/{incident}"
    steps = [
        ("acknowledge", {"comment": "on it"}, "You acknowledged"),
        ("comment", {"text": "Rolled back the feed"}, "Your comment is on the timeline."),
        ("resolve", {"comment": "feed fixed"}, "You resolved"),
        ("postmortem", {"markdown": "# Cause\nA late feed."}, "The post-mortem is saved."),
    ]
    for verb, data, message in steps:
        answer = web.post(f"{base}/{verb}", data={**data, "csrf_token": token})
        assert answer.status_code == 303, (verb, answer.text)
        assert answer.headers["location"] == base
        assert message in web.get(base).text
    found = world.backend.incidents.get(incident)
    assert found.status == IncidentStatus.RESOLVED
    assert found.postmortem == "# Cause\nA late feed."
    shown = web.get(base).text
    assert "Rolled back the feed" in shown
    assert "by cara" in shown
    assert f'action="{base}/acknowledge"' not in shown  # resolved: nothing to respond to


def test_an_over_long_comment_comes_back_with_the_field_named(
    world: Portfolio, web: TestClient
) -> None:
    incident = world.incident()
    waiting = world.candidate()
    signed_in(web, world.tokens["approver"])
    token = csrf_of(web.get("/approvals").text)
    head = world.audit_head()
    timeline = world.backend.incidents.get(incident).timeline
    long = "x" * 10_001
    answer = web.post(f"/incidents/{incident}/comment", data={"text": long, "csrf_token": token})
    assert answer.status_code == 422
    assert "The &#39;text&#39; field is 10001 characters long; the limit is 10000." in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert long in answer.text  # what was typed is kept
    refused = web.post(
        f"/approvals/churn/{waiting}/approve", data={"comment": long, "csrf_token": token}
    )
    assert refused.status_code == 422
    assert "The &#39;comment&#39; is 10001 characters; keep it under 10000." in refused.text
    empty = web.post(
        f"/approvals/churn/{waiting}/approve", data={"comment": "  ", "csrf_token": token}
    )
    assert empty.status_code == 422
    assert "The &#39;comment&#39; is required" in empty.text
    assert world.audit_head() == head
    assert world.backend.incidents.get(incident).timeline == timeline
    assert world.backend.governance.approvals("churn", waiting) == []


def test_an_unknown_incident_is_a_404_page(world: Portfolio, web: TestClient) -> None:
    signed_in(web, world.tokens["contributor"])
    token = csrf_of(web.get("/incidents").text)
    page = web.get("/incidents/999")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no incident 999." in page.text
    acted = web.post("/incidents/999/acknowledge", data={"csrf_token": token})
    assert acted.status_code == 404


def test_incident_filters(world: Portfolio, web: TestClient) -> None:
    first = world.incident("Drift on income")
    world.incident("Latency p99")
    world.backend.incidents.resolve(world.person("admin"), first, "done")
    signed_in(web, world.tokens["viewer"])
    open_now = web.get("/incidents").text
    assert "Latency p99" in open_now
    assert "Drift on income" not in open_now
    resolved = web.get("/incidents", params={"status": "resolved"}).text
    assert "Drift on income" in resolved
    assert "Latency p99" not in resolved
    bad = web.get("/incidents", params={"status": "sleeping"})
    assert bad.status_code == 422
    assert "The &#39;status&#39; field must be one of" in bad.text
    unknown = web.get("/incidents", params={"model": "nope"})
    assert unknown.status_code == 422
    assert "nope" in unknown.text


def test_a_rollout_is_paused_resumed_and_aborted(world: Portfolio, web: TestClient) -> None:
    rollout = world.rollout()
    signed_in(web, world.tokens["contributor"])
    page = web.get("/deployments")
    assert "Steps of deployment" in page.text
    token = csrf_of(page.text)
    store = world.backend.deployments.store
    paused = web.post(
        f"/deployments/{rollout}/pause", data={"reason": "checking", "csrf_token": token}
    )
    assert paused.status_code == 303
    assert str(store.get(rollout).state) == "paused"
    assert "You paused the rollout of churn." in web.get("/deployments").text
    assert web.post(f"/deployments/{rollout}/resume", data={"csrf_token": token}).is_redirect
    assert str(store.get(rollout).state) == "progressing"
    aborted = web.post(f"/deployments/{rollout}/abort", data={"csrf_token": token})
    assert aborted.status_code == 303
    assert str(store.get(rollout).state) == "aborted"
    again = web.post(f"/deployments/{rollout}/pause", data={"csrf_token": token})
    assert again.status_code == 303
    assert "only a rollout in progress can be paused" in web.get("/deployments").text


def test_the_audit_page_searches_and_verifies(world: Portfolio, web: TestClient) -> None:
    world.incident()
    signed_in(web, world.tokens["admin"])
    page = web.get("/audit", params={"action": "incident.trigger"})
    assert page.status_code == 200
    assert "intact" in page.text
    assert "incident.trigger" in page.text
    assert "model.create" not in page.text
    bad = web.get("/audit", params={"since": "last week"})
    assert bad.status_code == 422
    assert "The &#39;since&#39; field must be a date as YYYY-MM-DD" in bad.text


def test_the_costs_page_shows_budgets_value_and_roi(world: Portfolio, web: TestClient) -> None:
    admin = world.person("admin")
    world.backend.costs.set_budget(admin, "portfolio", None, "1000", None)
    world.backend.value.set_value_model(admin, "churn", {"kind": "declared", "monthly": 5000})
    signed_in(web, world.tokens["viewer"])
    month = datetime.now(UTC).strftime("%Y-%m")
    page = web.get("/costs")
    assert page.status_code == 200
    assert f"Spent in {month}" in page.text
    assert '<th scope="row">portfolio</th><td class="number">1,000.00</td>' in page.text
    assert 'aria-label="Spend against budgets, with the month-end forecast"' in page.text
    assert "plotly.min.js" in page.text  # the chart's scripts, served by Keel
    assert '<a href="/models/churn">churn</a>' in page.text
    assert "5,000.00" in page.text  # the declared value
    bad = web.get("/costs", params={"month": "November"})
    assert bad.status_code == 422
    assert "The &#39;month&#39; field must be a month as YYYY-MM" in bad.text


def test_the_delivery_page_drills_down_and_scores_maturity(
    world: Portfolio, web: TestClient
) -> None:
    live = world.approved()
    world.backend.governance.promote(world.person("admin"), "churn", live)
    signed_in(web, world.tokens["viewer"])
    page = web.get("/delivery", params={"show": "deployments"})
    assert page.status_code == 200
    assert "1 deployments</a>" in page.text
    assert f'<a href="/models/churn/versions/{live}">{live}</a>' in page.text
    assert "DORA metrics by team" in page.text
    assert "Criteria of model churn" in page.text
    assert "Next step:" in page.text
    team = web.get("/delivery", params={"subject": "team:risk"})
    assert "Criteria of team risk" in team.text
    for params in ({"show": "everything"}, {"subject": "model:nope"}, {"subject": "churn"}):
        bad = web.get("/delivery", params=params)
        assert bad.status_code == 422, params
        assert 'class="error" role="alert"' in bad.text


def _statements(backend: Backend, client: TestClient, url: str) -> int:
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(backend.engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(backend.engine, "before_cursor_execute", count)
    return len(seen)


def test_no_page_issues_a_query_per_row(world: Portfolio, web: TestClient) -> None:
    world.candidate()
    world.incident("one")
    world.rollout()
    signed_in(web, world.tokens["admin"])
    urls = ["/approvals", "/incidents?status=all", "/deployments", "/costs", "/delivery"]
    before = {url: _statements(world.backend, web, url) for url in urls}
    for n in range(3):
        # More rows on every page, in other models (a model's own maturity reads each of its
        # versions: the delivery page scores one model, whatever the portfolio's size).
        model = world.model(f"fraud-{n}")
        world.candidate(model)
        world.incident(f"more {n}")
        world.rollout(model)
    after = {url: _statements(world.backend, web, url) for url in urls}
    assert after == before
