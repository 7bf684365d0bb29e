"""Gate 4, management sign-off: who may approve or reject, and when.

Approving or rejecting needs the approver role in the model's team or in a team the policy asks
approvals from, a person (not a service account) and a comment. Whoever registered the version
cannot approve it (separation of duties). Approvals are accepted only once every required gate
1-3 has passed; each approval records the evidence digests it saw, and is void as soon as a
re-run of those gates produces a different digest. A rejection ends the candidacy: the version
is archived and can never be promoted; register a new version. Candidates and retired versions
(the ones a rollback may return to) take decisions; a version in production or archived does not.
"""

from __future__ import annotations

from collections.abc import Sequence

from keel.domain.governance import Approval, Decision, Gate, GateOutcome, GateResult
from keel.domain.lifecycle import VersionStatus
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, PrincipalKind, allows, authorize
from keel.domain.policy import Policy
from keel.domain.registry import Model, RiskTier
from keel.errors import Conflict, PermissionDenied
from keel.services.gates import signoff as signoff_gate
from keel.services.governance.pipeline import Pipeline, latest_results, required_text


class SignOff(Pipeline):
    """Approvals and rejections."""

    def _decider(self, by: Principal, owner: Model, policy: Policy) -> None:
        if by.kind == PrincipalKind.SERVICE:
            raise PermissionDenied(
                f"{by.name!r} is a service account; sign-off is a person's decision. "
                "Approve or reject with a user's token.",
                {"permission": "approve", "principal": by.name},
            )
        teams = [owner.team, *(policy.signoff.from_teams if policy.signoff else ())]
        if not any(allows(by, Permission.APPROVE, team) for team in teams):
            authorize(by, Permission.APPROVE, owner.team)

    def _decide(
        self, by: Principal, model: str, version: int, comment: str, decision: Decision
    ) -> Approval:
        comment = required_text(
            comment,
            "comment",
            "say why you " + ("approve" if decision == Decision.APPROVE else "reject"),
        )
        owner = self.registry.get_model(check_name(model, "model"))
        record = self.policy(str(owner.risk_tier))
        self._decider(by, owner, record.policy)
        found = self.registry.get_version(owner.name, version)
        saw: dict[str, str] = {}
        if decision == Decision.APPROVE:
            if found.created_by == by.name:
                raise PermissionDenied(
                    f"Separation of duties: {by.name!r} registered {owner.name} version "
                    f"{version}, so {by.name!r} cannot approve it. Ask another approver.",
                    {"permission": "approve", "reason": "separation_of_duties"},
                )
            if owner.risk_tier == RiskTier.PROHIBITED:
                raise Conflict(
                    f"{owner.name} is in the prohibited risk tier: it can never be promoted, "
                    "so it cannot be approved.",
                    {"model": owner.name, "tier": str(owner.risk_tier)},
                )
            state = self._status(owner, found, record)
            unready = [
                s
                for s in state.gates
                if s.gate != Gate.SIGNOFF
                and s.outcome not in (GateOutcome.PASSED, GateOutcome.NOT_REQUIRED)
            ]
            if unready:
                listed = "; ".join(f"{s.gate} is {s.outcome} ({s.to_pass})" for s in unready)
                raise Conflict(
                    f"Approvals are accepted once gates 1-3 have passed: {listed}.",
                    {"gates": {str(s.gate): str(s.outcome) for s in unready}},
                )
            saw = {
                str(s.gate): s.result.evidence_digest
                for s in state.gates
                if s.result is not None and s.gate != Gate.SIGNOFF
            }
        signoff = record.policy.signoff

        def check(
            decisions: Sequence[Approval], results: Sequence[GateResult], status: VersionStatus
        ) -> None:
            if any(d.decision == Decision.REJECT for d in decisions):
                raise Conflict(
                    f"{owner.name} version {version} was rejected; its candidacy is over. "
                    "Register a new version.",
                    {"model": owner.name, "version": version},
                )
            # A retired version may be decided on again: its approvals are voided when a policy
            # change or a risk reassessment makes its gates run again, and without new ones
            # it could never be rolled back to (see `rollback_plan`).
            if status in (VersionStatus.ARCHIVED, VersionStatus.PRODUCTION):
                raise Conflict(
                    f"{owner.name} version {version} is '{status}': sign-off is for candidates "
                    "and for retired versions to roll back to.",
                    {"model": owner.name, "version": version, "status": str(status)},
                )
            if decision == Decision.APPROVE:
                if any(d.actor == by.name for d in signoff_gate.counting(decisions)):
                    raise Conflict(
                        f"{by.name!r} already approved {owner.name} version {version}; each "
                        "person counts once.",
                        {"model": owner.name, "version": version},
                    )
                latest = latest_results(results)
                if any(
                    latest[Gate(g)].evidence_digest != d
                    for g, d in saw.items()
                    if Gate(g) in latest
                ):
                    raise Conflict(
                        "The gates were re-run while you were approving; review the new "
                        f"results (keel gates status {owner.name} {version}) and approve again.",
                        {"model": owner.name, "version": version},
                    )

        def complete(decisions: Sequence[Approval]) -> bool:
            return signoff is None or signoff_gate.complete(signoff, decisions)

        return self.store.add_decision(
            owner.name,
            version,
            decision=decision,
            actor=by.name,
            teams=tuple(sorted({g.team for g in by.grants if g.team})),
            comment=comment,
            saw=saw,
            check=check,
            complete=complete,
        )

    def _announce_decision(self, approval: Approval) -> Approval:
        self._announce(
            "gate.signoff",
            {
                "model": approval.model,
                "version": approval.version,
                "decision": str(approval.decision),
                "actor": approval.actor,
                "comment": approval.comment,
                "decided_at": approval.decided_at.isoformat(),
            },
        )
        return approval

    def approve(self, by: Principal, model: str, version: int, comment: str) -> Approval:
        """Approve the version (see the module's rules: role, comment, separation of duties,
        gates 1-3 passed first)."""
        return self._announce_decision(self._decide(by, model, version, comment, Decision.APPROVE))

    def reject(self, by: Principal, model: str, version: int, comment: str) -> Approval:
        """Reject the version: its candidacy ends (it is archived and never promoted)."""
        return self._announce_decision(self._decide(by, model, version, comment, Decision.REJECT))
