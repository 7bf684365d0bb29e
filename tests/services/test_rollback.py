"""Rollback through governance: an incident's playbook moves production back to the previous
promoted version, and refuses when that version's gates no longer pass.

Real scikit-learn models through the real gates (Keel evaluates each artifact on the holdout in
a separate process), real incidents, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import pg_cluster
from tests.services.governed_credit import (
    APRIL,
    CARL,
    DANA,
    MODEL,
    POLICY,
    ROOT,
    STRICTER,
    production,
    promote_new_version,
    set_up,
)

from keel.config import Settings
from keel.domain.governance import Gate, GateOutcome
from keel.domain.incidents import Incident, Severity, TimelineEntry
from keel.domain.lifecycle import VersionStatus
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.risk import QUESTIONNAIRE
from keel.errors import Conflict, PermissionDenied
from keel.services.backend import Backend

# A revised policy that v1 still meets (a larger artifact limit): a new policy version all the same.
REVISED = POLICY.replace("max_artifact_mb: 10", "max_artifact_mb: 20")
# The EU AI Act's credit scoring (Annex III point 5(b)): the high-risk tier.
CREDIT_SCORING = {
    **{q.id: False for q in QUESTIONNAIRE.questions if not q.follow_up},
    "credit_scoring": True,
    "narrow_procedural_task": False,
    "profiles_people": True,
}
# dana registered every version; as an approver she still may not approve her own.
REGISTRANT_APPROVER = Principal("dana", grants=(Grant(Role.APPROVER, "risk"),))

PLAYBOOK = """\
name: credit-rollback
model: credit
match:
  severity: [P1, P2]
  check: drift
actions:
  - rollback
  - pause_rollout
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
def promoted(backend: Backend) -> Backend:
    """v1 promoted, then v2 promoted over it, both through the gates and sign-off."""
    set_up(backend)
    assert promote_new_version(backend, seed=1) == 1
    assert promote_new_version(backend, seed=3) == 2
    assert production(backend) == 2
    backend.playbooks.apply(DANA, PLAYBOOK)
    return backend


def drift_incident(backend: Backend, key: str) -> Incident:
    incident, created = backend.incidents.trigger(
        ROOT,
        key=key,
        model=MODEL,
        version=2,
        title="income drifted (PSI 0.41)",
        severity=Severity.P1,
        check="drift",
        labels={"column": "income"},
    )
    assert created
    return backend.incidents.get(incident.id)


def actions(incident: Incident) -> list[tuple[str, str]]:
    return [
        (str(e.details["action"]), str(e.details["outcome"]))
        for e in incident.timeline
        if e.kind == "action"
    ]


def entry(incident: Incident, action: str) -> TimelineEntry:
    return next(e for e in incident.timeline if e.details.get("action") == action)


def test_an_incident_rolls_production_back_to_the_previous_version(promoted: Backend) -> None:
    incident = drift_incident(promoted, "drift:credit:2")

    assert production(promoted) == 1
    assert promoted.registry.get_version(MODEL, 2).status == VersionStatus.RETIRED
    assert promoted.registry.get_version(MODEL, 1).status == VersionStatus.PRODUCTION
    history = promoted.registry.alias_history(MODEL, "production")  # newest first
    assert [(a.version, a.set_by) for a in history] == [
        (1, "keel-playbooks"),
        (2, "dana"),
        (1, "dana"),
    ]
    assert history[1].cleared_by == "keel-playbooks"
    last = promoted.governance.promotions(MODEL)[-1]
    assert (last.version, last.previous_version, last.break_glass) == (1, 2, False)

    # The timeline says what ran; pause_rollout says there was no rollout to pause.
    assert actions(incident) == [("rollback", "done"), ("pause_rollout", "skipped")]
    pause = entry(incident, "pause_rollout")
    assert "credit has no rollout in progress" in pause.message

    trail = promoted.audit.events(ROOT, action="governance.rollback")
    assert [(e.actor, e.subject_id) for e in trail] == [("keel-playbooks", f"{MODEL}/1")]
    assert trail[0].details["incident_id"] == incident.id
    assert trail[0].details["previous_version"] == 2
    assert "incident" in trail[0].details["reason"]
    recorded = promoted.audit.events(ROOT, action="incident.action")
    assert [e.details.get("action") for e in recorded][-2:] == ["rollback", "pause_rollout"]
    assert [r.to_version for r in promoted.playbooks.store.rollbacks(MODEL)] == [1]


def test_rollback_is_refused_when_the_previous_version_no_longer_passes(
    promoted: Backend,
) -> None:
    # A stricter policy: v1's stored results were judged under the old one, so they are stale.
    promoted.governance.apply_policy(ROOT, STRICTER)
    first = drift_incident(promoted, "drift:credit:2:a")
    assert production(promoted) == 2
    assert actions(first) == [("rollback", "refused"), ("pause_rollout", "skipped")]
    refused = entry(first, "rollback")
    assert "cannot be rolled back to version 1" in refused.message
    assert "performance gate pending" in refused.message
    assert "run the gates again" in refused.message

    # Judged again under the stricter policy, v1's performance gate fails: still refused.
    status = promoted.governance.run_gates(DANA, MODEL, 1)
    performance = next(g for g in status.gates if g.gate == Gate.PERFORMANCE)
    assert performance.outcome == GateOutcome.FAILED
    promoted.incidents.resolve(ROOT, first.id, "handled by hand")
    second = drift_incident(promoted, "drift:credit:2:b")
    assert production(promoted) == 2
    reason = entry(second, "rollback").message
    assert "performance gate failed" in reason

    with pytest.raises(Conflict, match="performance gate failed"):
        promoted.governance.rollback(DANA, MODEL, reason="by hand")
    assert promoted.audit.events(ROOT, action="governance.rollback") == []
    assert [a.version for a in promoted.registry.alias_history(MODEL, "production")] == [2, 1]


def test_rollback_needs_an_earlier_production_version(backend: Backend) -> None:
    set_up(backend)
    with pytest.raises(Conflict, match="no production version"):
        backend.governance.rollback(DANA, MODEL, reason="nothing there")
    promote_new_version(backend, seed=1)
    with pytest.raises(Conflict, match="first production version"):
        backend.governance.rollback(DANA, MODEL, reason="only one")
    plan = backend.governance.rollback_plan(MODEL)
    assert (plan.current, plan.target) == (1, None)


@pytest.mark.parametrize("change", ["policy change", "risk reassessment"])
def test_after_a_policy_change_rollback_is_a_governed_path_not_a_dead_end(
    promoted: Backend, change: str
) -> None:
    # A change v1 still meets, yet its stored results and approvals were judged before it.
    if change == "policy change":
        promoted.governance.apply_policy(ROOT, REVISED)
        in_force = ("unassessed", 2)
    else:
        promoted.governance.apply_policy(ROOT, POLICY.replace("tier: unassessed", "tier: high"))
        assessed = promoted.risk.assess(APRIL, MODEL, CREDIT_SCORING)
        assert str(assessed.tier) == "high"
        in_force = ("high", 1)
    with pytest.raises(Conflict) as refused:
        promoted.governance.rollback(DANA, MODEL, reason="v2 drifted")
    assert "cannot be rolled back to version 1" in refused.value.message
    blockers = refused.value.details["blockers"]
    assert any("run the gates again (keel gates run credit 1)" in b for b in blockers), blockers

    # The gates run again on the retired version, under the policy in force now; they pass, and
    # the approvals that saw the old evidence are void.
    status = promoted.governance.run_gates(DANA, MODEL, 1)
    assert {str(g.gate): str(g.outcome) for g in status.gates} == {
        "performance": "passed",
        "security": "passed",
        "fairness": "not_required",
        "signoff": "pending",
    }
    assert [a.void for a in promoted.governance.approvals(MODEL, 1)] == [True, True]
    with pytest.raises(Conflict) as unsigned:
        promoted.governance.rollback(DANA, MODEL, reason="v2 drifted")
    assert "signoff gate pending" in unsigned.value.message
    assert "keel approve credit 1 -m" in unsigned.value.message
    assert production(promoted) == 2

    # Sign-off again, by approvers other than the registrant, on the retired version.
    with pytest.raises(PermissionDenied, match="Separation of duties"):
        promoted.governance.approve(REGISTRANT_APPROVER, MODEL, 1, "I trust my own model")
    promoted.governance.approve(APRIL, MODEL, 1, "re-reviewed under the revised policy")
    with pytest.raises(Conflict, match="each person counts once"):
        promoted.governance.approve(APRIL, MODEL, 1, "twice")
    promoted.governance.approve(CARL, MODEL, 1, "compliance re-review done")
    trail = promoted.audit.events(ROOT, action="approval.approve")
    assert [(e.actor, e.details["version_status"]) for e in trail][-2:] == [
        ("april", "retired"),
        ("carl", "retired"),
    ]
    assert promoted.registry.get_version(MODEL, 1).status == VersionStatus.RETIRED

    rolled = promoted.governance.rollback(DANA, MODEL, reason="v2 drifted")
    assert (rolled.version, rolled.previous_version) == (1, 2)
    assert (rolled.policy_tier, rolled.policy_version) == in_force
    assert production(promoted) == 1
    assert promoted.registry.get_version(MODEL, 1).status == VersionStatus.PRODUCTION
    assert promoted.registry.get_version(MODEL, 2).status == VersionStatus.RETIRED
    # The version in production is no candidate: no more decisions on it.
    with pytest.raises(Conflict, match="'production': sign-off is for candidates"):
        promoted.governance.approve(APRIL, MODEL, 1, "again")


def test_a_rejected_rollback_target_is_archived_and_never_rolled_back_to(
    promoted: Backend,
) -> None:
    promoted.governance.apply_policy(ROOT, REVISED)
    promoted.governance.run_gates(DANA, MODEL, 1)
    promoted.governance.reject(CARL, MODEL, 1, "v1 leaks a protected attribute after all")
    assert promoted.registry.get_version(MODEL, 1).status == VersionStatus.ARCHIVED
    with pytest.raises(Conflict, match="version 1 is archived"):
        promoted.governance.rollback(DANA, MODEL, reason="v2 drifted")
    with pytest.raises(Conflict, match="rejected; its candidacy is over"):
        promoted.governance.approve(APRIL, MODEL, 1, "changed my mind")
    assert production(promoted) == 2
