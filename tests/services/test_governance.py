"""Governance's rules through the service, on SQLite and on a real PostgreSQL.

These use policies that need no evaluation run (security and sign-off), so each rule is shown in
isolation; tests/test_governance_e2e.py runs real models through every gate.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import pg_cluster

from keel.config import Settings
from keel.domain.governance import Decision, Gate, GateOutcome
from keel.domain.lifecycle import VersionStatus
from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.domain.registry import Environment, Model, VersionDraft
from keel.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from keel.services.backend import Backend

ROOT = Principal("root", grants=(Grant(Role.ADMIN),))
DANA = Principal("dana", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
APRIL = Principal("april", grants=(Grant(Role.APPROVER, "risk"),))
CARL = Principal("carl", grants=(Grant(Role.APPROVER, "compliance"),))
BOT = Principal("ci-bot", PrincipalKind.SERVICE, grants=(Grant(Role.APPROVER, "risk"),))
PINNED = Environment("3.11.9", {"scikit-learn": "1.5.2"})
POLICY = """\
tier: unassessed
checks:
  security:
    max_artifact_mb: 1
  signoff:
    approvals: 2
    from_teams: {compliance: 1}
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        opened = Backend.open(Settings.load(data_dir=tmp_path, env={}))
        opened.migrate()
        yield opened
        opened.close()
        return
    server = request.getfixturevalue("postgres_url")
    with pg_cluster.fresh_database(server) as url:
        opened = Backend.open(Settings.load(data_dir=tmp_path, database_url=url, env={}))
        opened.migrate()
        yield opened
        opened.close()


@pytest.fixture
def keel(backend: Backend) -> Backend:
    backend.registry.create_team(ROOT, "risk")
    backend.registry.create_team(ROOT, "compliance")
    backend.registry.create_model(ROOT, Model(name="credit", team="risk", owner="ana"))
    backend.governance.apply_policy(ROOT, POLICY)
    return backend


def register(backend: Backend, environment: Environment = PINNED) -> int:
    draft = VersionDraft(environment=environment)
    found = backend.registry.register_version(
        DANA, "credit", io.BytesIO(b"\x80\x04K\x01."), "m.pkl", draft
    )
    return found.version


def outcome(backend: Backend, version: int, gate: Gate) -> GateOutcome:
    state = backend.governance.status("credit", version)
    return next(g.outcome for g in state.gates if g.gate == gate)


def test_policy_versions_and_the_default(keel: Backend) -> None:
    governance = keel.governance
    assert governance.policy("high").version == 0  # the built-in default, not yet recorded
    assert governance.policy("unassessed").version == 1
    again = governance.apply_policy(ROOT, POLICY.replace("approvals: 2", "approvals: 3"))
    assert again.version == 2
    assert governance.policy("unassessed", 1).policy.signoff is not None
    assert [p.version for p in governance.policy_versions("unassessed")] == [1, 2]
    with pytest.raises(PermissionDenied):
        governance.apply_policy(APRIL, POLICY)
    with pytest.raises(NotFound):
        governance.policy("unassessed", 9)
    with pytest.raises(InvalidInput, match="tiers are"):
        governance.policy("extreme")
    events = keel.audit.events(ROOT, action="policy.apply")
    assert [(e.actor, e.details["version"]) for e in events] == [("root", 1), ("root", 2)]


def test_results_record_tier_and_policy_version_and_go_stale(keel: Backend) -> None:
    governance = keel.governance
    version = register(keel)
    governance.run_gates(DANA, "credit", version)
    (result,) = governance.gate_results("credit", version)
    assert (result.gate, result.outcome) == (Gate.SECURITY, GateOutcome.PASSED)
    assert (result.policy_tier, result.policy_version, result.evaluated_by) == (
        "unassessed",
        1,
        "dana",
    )
    assert keel.registry.get_version("credit", version).status == VersionStatus.CANDIDATE
    governance.apply_policy(ROOT, POLICY)
    state = governance.status("credit", version)
    security = next(g for g in state.gates if g.gate == Gate.SECURITY)
    assert security.outcome == GateOutcome.PENDING
    assert "policy v1" in security.to_pass and "v2" in security.to_pass


def test_sign_off_rules(keel: Backend) -> None:
    governance = keel.governance
    version = register(keel)
    with pytest.raises(Conflict, match="once gates 1-3 have passed"):
        governance.approve(APRIL, "credit", version, "early")
    governance.run_gates(DANA, "credit", version)
    with pytest.raises(InvalidInput) as empty:
        governance.approve(APRIL, "credit", version, "   ")
    assert empty.value.details["field"] == "comment"
    with pytest.raises(PermissionDenied, match="service account"):
        governance.approve(BOT, "credit", version, "automated")
    with pytest.raises(PermissionDenied, match="approver"):
        governance.approve(DANA, "credit", version, "I am only a contributor")
    dana_approver = Principal("dana", grants=(Grant(Role.APPROVER, "risk"),))
    with pytest.raises(PermissionDenied, match="Separation of duties"):
        governance.approve(dana_approver, "credit", version, "mine")

    first = governance.approve(APRIL, "credit", version, "reviewed")
    assert first.saw == {"security": governance.gate_results("credit", version)[-1].evidence_digest}
    with pytest.raises(Conflict, match="already approved"):
        governance.approve(APRIL, "credit", version, "again")
    assert outcome(keel, version, Gate.SIGNOFF) == GateOutcome.PENDING
    # carl approves from compliance (the policy names the team, so his grant there suffices)
    governance.approve(CARL, "credit", version, "compliance ok")
    assert outcome(keel, version, Gate.SIGNOFF) == GateOutcome.PASSED
    assert keel.registry.get_version("credit", version).status == VersionStatus.APPROVED
    assert [a.teams for a in governance.approvals("credit", version)] == [
        ("risk",),
        ("compliance",),
    ]


def test_a_rerun_with_a_different_result_voids_approvals(keel: Backend) -> None:
    governance = keel.governance
    version = register(keel)
    governance.run_gates(DANA, "credit", version)
    governance.approve(APRIL, "credit", version, "reviewed")
    governance.approve(CARL, "credit", version, "compliance ok")

    # The same evidence again: the approvals stand.
    governance.run_gates(DANA, "credit", version)
    assert not any(a.void for a in governance.approvals("credit", version))
    assert governance.status("credit", version).promotable

    # Under a new policy version the evidence differs: both approvals are void.
    governance.apply_policy(ROOT, POLICY.replace("max_artifact_mb: 1", "max_artifact_mb: 2"))
    governance.run_gates(DANA, "credit", version)
    decisions = governance.approvals("credit", version)
    assert all(a.void for a in decisions)
    assert "security gate was re-run by dana" in (decisions[0].void_reason or "")
    assert keel.registry.get_version("credit", version).status == VersionStatus.CANDIDATE
    state = governance.status("credit", version)
    assert not state.promotable
    with pytest.raises(Conflict, match="signoff gate pending"):
        governance.promote(DANA, "credit", version)
    assert len(keel.audit.events(ROOT, action="approval.void")) == 2


def test_promotion_retires_the_previous_version(keel: Backend) -> None:
    governance = keel.governance
    first, second = register(keel), register(keel)
    for version in (first, second):
        governance.run_gates(DANA, "credit", version)
        governance.approve(APRIL, "credit", version, "ok")
        governance.approve(CARL, "credit", version, "ok")
    governance.promote(DANA, "credit", first)
    promoted = governance.promote(DANA, "credit", second)
    assert (promoted.previous_version, promoted.break_glass, promoted.policy_version) == (
        first,
        False,
        1,
    )
    assert keel.registry.get_version("credit", first).status == VersionStatus.RETIRED
    assert keel.registry.get_version("credit", second).aliases == ("production",)
    with pytest.raises(Conflict, match="already in production"):
        governance.promote(ROOT, "credit", second, justification="again")
    # The registry still refuses the production alias outside governance.
    with pytest.raises(Conflict, match="governance"):
        keel.registry.set_alias(ROOT, "credit", "production", first)
    history = keel.registry.alias_history("credit", "production")
    assert [(a.version, a.set_by) for a in history] == [(second, "dana"), (first, "dana")]


def test_a_rejection_ends_the_candidacy_even_for_break_glass(keel: Backend) -> None:
    governance = keel.governance
    version = register(keel)
    governance.run_gates(DANA, "credit", version)
    rejection = governance.reject(APRIL, "credit", version, "trained on the wrong window")
    assert rejection.decision == Decision.REJECT
    assert keel.registry.get_version("credit", version).status == VersionStatus.ARCHIVED
    with pytest.raises(Conflict):
        governance.approve(CARL, "credit", version, "too late")
    with pytest.raises(Conflict, match="candidacy is over"):
        governance.run_gates(DANA, "credit", version)
    with pytest.raises(Conflict, match="archived"):
        governance.promote(ROOT, "credit", version, justification="override")
    assert governance.promotions("credit") == []


def test_break_glass_is_for_admins_and_never_for_prohibited_models(keel: Backend) -> None:
    governance = keel.governance
    version = register(keel, Environment("3.11.9", {}))  # nothing pinned: security fails
    governance.run_gates(DANA, "credit", version)
    assert outcome(keel, version, Gate.SECURITY) == GateOutcome.FAILED
    with pytest.raises(PermissionDenied, match="break glass"):
        governance.promote(APRIL, "credit", version, justification="trust me")
    with pytest.raises(InvalidInput):
        governance.promote(ROOT, "credit", version, justification="")
    forced = governance.promote(ROOT, "credit", version, justification="regulator deadline")
    assert forced.break_glass
    assert any("security gate failed" in o for o in forced.overridden)
    (event,) = keel.audit.events(ROOT, action="governance.break_glass")
    assert event.details["justification"] == "regulator deadline"

    questions = keel.risk.questionnaire().questions
    answers = {q.id: q.id == "social_scoring" for q in questions if not q.follow_up}
    keel.risk.assess(ROOT, "credit", answers)
    assert keel.registry.get_model("credit").risk_tier == "prohibited"
    later = register(keel)
    with pytest.raises(Conflict, match="prohibited"):
        governance.promote(ROOT, "credit", later, justification="please")
    with pytest.raises(Conflict, match="prohibited"):
        governance.approve(APRIL, "credit", later, "no")
