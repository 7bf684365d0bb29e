"""The sign-off queue: the candidate versions waiting for a given approver's decision.

A version waits for ``by`` when ``by`` could decide on it under the sign-off rules
(`keel.services.governance.signoff`): ``by`` holds the approver role in the model's team or in a
team its policy asks approvals from, did not register it (separation of duties), has not
approved it yet, and its sign-off is not complete. Each entry carries the gate results an
approver reviews. Approving still goes through `SignOff.approve`, which checks everything again
(with stale results, gates first): the queue is a reading, never a permission.
"""

from __future__ import annotations

from dataclasses import dataclass

from keel.domain.governance import EVIDENCE_GATES, Gate, GateOutcome, GateResult
from keel.domain.permissions import Permission, Principal, PrincipalKind, allows
from keel.domain.policy import Policy
from keel.services.gates import signoff as signoff_gate
from keel.services.governance.pipeline import Pipeline, latest_results
from keel.store.sql.signoff_queue import CandidateRecord

# How many candidates one reading looks at; far more than anyone signs off in a sitting.
QUEUE_SCAN = 500


@dataclass(frozen=True)
class GateEvidence:
    gate: Gate
    required: bool
    outcome: GateOutcome  # of the latest stored result; PENDING when none
    result: GateResult | None


@dataclass(frozen=True)
class WaitingVersion:
    candidate: CandidateRecord
    policy_version: int
    gates: tuple[GateEvidence, ...]
    gates_passed: bool  # every required gate 1-3 passed: an approval can be accepted
    still_needed: tuple[str, ...]  # what sign-off lacks, in words


class SignoffQueue(Pipeline):
    """`waiting_for`: what an approver's queue shows."""

    def waiting_for(self, by: Principal, *, limit: int = 100) -> list[WaitingVersion]:
        """The candidates waiting for ``by``'s decision, longest waiting first."""
        if by.kind == PrincipalKind.SERVICE:
            return []
        policies: dict[str, tuple[Policy, int]] = {}
        waiting: list[WaitingVersion] = []
        for candidate in self.store.candidates(limit=QUEUE_SCAN):
            if candidate.risk_tier not in policies:
                record = self.policy(candidate.risk_tier)
                policies[candidate.risk_tier] = (record.policy, record.version)
            policy, policy_version = policies[candidate.risk_tier]
            entry = _waiting(by, candidate, policy, policy_version)
            if entry is not None:
                waiting.append(entry)
                if len(waiting) == limit:
                    break
        return waiting


def _waiting(
    by: Principal, candidate: CandidateRecord, policy: Policy, policy_version: int
) -> WaitingVersion | None:
    signoff = policy.signoff
    if signoff is None or signoff.approvals <= 0 or candidate.created_by == by.name:
        return None
    teams = [candidate.team, *signoff.from_teams]
    if not any(allows(by, Permission.APPROVE, team) for team in teams):
        return None
    decisions = candidate.decisions
    if any(a.actor == by.name for a in signoff_gate.counting(decisions)):
        return None
    verdict = signoff_gate.judge(signoff, decisions, evidence_ready=True)
    if verdict.outcome != GateOutcome.PENDING:
        return None  # complete, or rejected
    required = {
        Gate.PERFORMANCE: policy.performance is not None,
        Gate.SECURITY: policy.security is not None,
        Gate.FAIRNESS: policy.fairness is not None,
    }
    latest = latest_results(candidate.results)
    gates = tuple(
        GateEvidence(
            gate,
            required[gate],
            latest[gate].outcome if gate in latest else GateOutcome.PENDING,
            latest.get(gate),
        )
        for gate in EVIDENCE_GATES
    )
    return WaitingVersion(
        candidate=candidate,
        policy_version=policy_version,
        gates=gates,
        gates_passed=all(g.outcome == GateOutcome.PASSED for g in gates if g.required),
        still_needed=tuple(signoff_gate.missing(signoff, decisions)),
    )
