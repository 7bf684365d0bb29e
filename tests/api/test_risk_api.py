"""The risk questionnaire and assessments over HTTP, as an approver, a contributor and a script."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.api.conftest import bearer

from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.services.backend import Backend

ROOT = Principal("root", grants=(Grant(Role.ADMIN),))


def user_token(backend: Backend, name: str, role: Role, team: str) -> dict[str, str]:
    backend.identity.create_principal(ROOT, name, PrincipalKind.USER)
    backend.identity.grant(ROOT, name, role, team)
    token, _ = backend.identity.create_token(ROOT, principal=name, name="test")
    return bearer(token)


@pytest.fixture
def questionnaire(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/v1/risk/questionnaire")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def answers(questionnaire: dict[str, Any], *yes: str, **explicit: bool) -> dict[str, bool]:
    """Every always-asked question answered no, except ``yes``."""
    given = {q["id"]: q["id"] in yes for q in questionnaire["questions"] if not q["follow_up"]}
    return given | explicit


def test_the_questionnaire_names_the_articles(questionnaire: dict[str, Any]) -> None:
    by_id = {q["id"]: q for q in questionnaire["questions"]}
    assert by_id["social_scoring"]["article"] == "Art. 5(1)(c)"
    assert by_id["credit_scoring"]["article"] == "Annex III point 5(b)"
    assert by_id["interacts_with_people"]["article"] == "Art. 50(1)"
    assert {q["category"] for q in questionnaire["questions"]} >= {
        "prohibited_practice",
        "high_risk_area",
        "transparency",
    }


def test_tier_change_needs_an_approver_and_is_audited(
    client: TestClient, backend: Backend, team_and_model: str, questionnaire: dict[str, Any]
) -> None:
    cara = user_token(backend, "cara", Role.CONTRIBUTOR, "risk")
    april = user_token(backend, "april", Role.APPROVER, "risk")
    scoring = answers(
        questionnaire, "credit_scoring", narrow_procedural_task=False, profiles_people=True
    )
    path = f"/api/v1/models/{team_and_model}/risk-assessments"

    refused = client.post(path, json={"answers": scoring}, headers=cara)
    assert refused.status_code == 403, refused.text
    assert "approver" in refused.json()["error"]["message"]
    assert client.get(f"/api/v1/models/{team_and_model}").json()["risk_tier"] == "unassessed"

    created = client.post(path, json={"answers": scoring}, headers=april)
    assert created.status_code == 201, created.text
    assessment = created.json()
    assert (assessment["tier"], assessment["assessed_by"]) == ("high", "april")
    assert "Annex III point 5(b)" in assessment["rationale"]
    assert client.get(f"/api/v1/models/{team_and_model}").json()["risk_tier"] == "high"

    # A contributor may confirm the tier the approver set.
    confirmed = client.post(path, json={"answers": scoring}, headers=cara)
    assert confirmed.status_code == 201, confirmed.text
    assert [a["assessed_by"] for a in client.get(path).json()] == ["april", "cara"]

    trail = client.get("/api/v1/audit", params={"action": "risk.assess"}).json()["items"]
    assert [(e["actor"], e["details"]["tier"], e["details"]["tier_changed"]) for e in trail] == [
        ("april", "high", True),
        ("cara", "high", False),
    ]


def test_the_tier_cannot_be_patched_onto_a_model(client: TestClient, team_and_model: str) -> None:
    response = client.patch(f"/api/v1/models/{team_and_model}", json={"risk_tier": "minimal"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert "keel risk assess" in error["message"]
    assert error["details"]["problems"][0]["field"] == "risk_tier"
    assert client.get(f"/api/v1/models/{team_and_model}").json()["risk_tier"] == "unassessed"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"credit_scoring": "yes"}, "answers.credit_scoring"),
        ({"social_credit": True}, "answers.social_credit"),
    ],
)
def test_bad_answers_are_refused_naming_the_question(
    client: TestClient,
    team_and_model: str,
    questionnaire: dict[str, Any],
    change: dict[str, Any],
    field: str,
) -> None:
    body = {"answers": answers(questionnaire) | change}
    response = client.post(f"/api/v1/models/{team_and_model}/risk-assessments", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == field
    assert field in response.json()["error"]["message"]
    assert client.get(f"/api/v1/models/{team_and_model}/risk-assessments").json() == []


def test_assessing_an_unknown_model_is_a_404(
    client: TestClient, questionnaire: dict[str, Any]
) -> None:
    response = client.post(
        "/api/v1/models/nope/risk-assessments", json={"answers": answers(questionnaire)}
    )
    assert response.status_code == 404
