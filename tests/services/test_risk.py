"""Risk assessments through the service, on SQLite and PostgreSQL: who may change a tier, what is
stored, and what reaches the audit trail."""

from __future__ import annotations

from typing import Any

import pytest

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, RiskTier
from keel.domain.risk import QUESTIONNAIRE, classify
from keel.errors import Conflict, InvalidInput, PermissionDenied
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
CARA = Principal("cara", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
APRIL = Principal("april", grants=(Grant(Role.APPROVER, "risk"),))
OTTO = Principal("otto", grants=(Grant(Role.APPROVER, "growth"),))


def answers(*yes: str, **explicit: Any) -> dict[str, Any]:
    base: dict[str, Any] = {q.id: False for q in QUESTIONNAIRE.questions if not q.follow_up}
    base.update(dict.fromkeys(yes, True))
    return base | explicit


CREDIT_SCORING = answers("credit_scoring", narrow_procedural_task=False, profiles_people=True)
SPAM_FILTER = answers()


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    opened = empty_backend
    opened.registry.create_team(ADMIN, "risk")
    opened.registry.create_team(ADMIN, "growth")
    opened.registry.create_model(ADMIN, Model(name="scorecard", team="risk", owner="ana"))
    return opened


def risk_events(backend: Backend) -> list[dict[str, Any]]:
    return [
        {"actor": e.actor, **e.details}
        for e in backend.audit.log.events(action="risk.assess", subject_id="scorecard")
    ]


def test_an_approver_sets_the_tier_with_its_rationale_and_an_audit_event(backend: Backend) -> None:
    assessment = backend.risk.assess(APRIL, "scorecard", CREDIT_SCORING)

    assert (assessment.tier, assessment.previous_tier) == (RiskTier.HIGH, RiskTier.UNASSESSED)
    assert "Annex III point 5(b)" in assessment.rationale
    assert assessment.assessed_by == "april"
    assert assessment.answers["credit_scoring"] is True
    assert backend.registry.get_model("scorecard").risk_tier == RiskTier.HIGH
    assert backend.risk.current("scorecard") == assessment
    [event] = risk_events(backend)
    assert event["actor"] == "april"
    assert (event["tier"], event["previous_tier"], event["tier_changed"]) == (
        "high",
        "unassessed",
        True,
    )
    assert event["assessment_id"] == assessment.id


def test_a_contributor_cannot_change_the_tier_and_nothing_is_written(backend: Backend) -> None:
    with pytest.raises(PermissionDenied, match="approver") as refused:
        backend.risk.assess(CARA, "scorecard", SPAM_FILTER)
    assert "unassessed to minimal" in refused.value.message

    assert backend.registry.get_model("scorecard").risk_tier == RiskTier.UNASSESSED
    assert backend.risk.history("scorecard") == []
    assert risk_events(backend) == []


def test_a_contributor_may_confirm_the_current_tier(backend: Backend) -> None:
    backend.risk.assess(APRIL, "scorecard", CREDIT_SCORING)
    confirmed = backend.risk.assess(
        CARA, "scorecard", answers("employment", narrow_procedural_task=False, profiles_people=True)
    )
    assert (confirmed.tier, confirmed.previous_tier) == (RiskTier.HIGH, RiskTier.HIGH)
    with pytest.raises(PermissionDenied, match="from high to minimal"):
        backend.risk.assess(CARA, "scorecard", SPAM_FILTER)
    assert [a.assessed_by for a in backend.risk.history("scorecard")] == ["april", "cara"]
    assert [e["tier_changed"] for e in risk_events(backend)] == [True, False]


def test_an_approver_of_another_team_may_not_assess(backend: Backend) -> None:
    with pytest.raises(PermissionDenied, match="'risk'"):
        backend.risk.assess(OTTO, "scorecard", CREDIT_SCORING)
    assert backend.risk.history("scorecard") == []


def test_bad_answers_write_nothing(backend: Backend) -> None:
    with pytest.raises(InvalidInput, match=r"answers\.credit_scoring"):
        backend.risk.assess(APRIL, "scorecard", answers(credit_scoring="yes"))
    assert backend.risk.history("scorecard") == []
    assert backend.registry.get_model("scorecard").risk_tier == RiskTier.UNASSESSED


def test_an_assessment_judged_against_a_stale_tier_is_refused(backend: Backend) -> None:
    # What a contributor's request would meet if an approver changed the tier meanwhile.
    backend.risk.assess(APRIL, "scorecard", CREDIT_SCORING)
    with pytest.raises(Conflict, match="changed to high"):
        backend.risk.store.record(
            "scorecard",
            classify(SPAM_FILTER),
            QUESTIONNAIRE.version,
            "cara",
            expected_tier=RiskTier.UNASSESSED,
        )
    assert len(backend.risk.history("scorecard")) == 1
    assert backend.registry.get_model("scorecard").risk_tier == RiskTier.HIGH
