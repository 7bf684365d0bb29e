"""Gate 4, formal management sign-off: enough approvals, from the right teams, none void.

Rules (the service enforces who may decide; this module counts):
- Only approvals that are not void count, each person once.
- The policy's ``approvals`` is the total needed; ``from_teams`` says how many of them must come
  from people holding a role in a named team (a person counts once toward the total and toward
  every named team they belong to). An admin counts toward a team only with a grant in it.
- Any rejection fails the gate for good: the candidacy is over.
- Sign-off is judged live from the stored decisions; it has no stored result of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from keel.domain.governance import Approval, Decision, GateOutcome
from keel.domain.policy import SignoffPolicy
from keel.services.gates import Verdict


def counting(approvals: Sequence[Approval]) -> list[Approval]:
    """The approvals that count: approve decisions, not void, the first of each person."""
    seen: set[str] = set()
    counted: list[Approval] = []
    for approval in approvals:
        if (
            approval.decision == Decision.APPROVE
            and not approval.void
            and approval.actor not in seen
        ):
            seen.add(approval.actor)
            counted.append(approval)
    return counted


def missing(policy: SignoffPolicy, approvals: Sequence[Approval]) -> list[str]:
    """What sign-off still lacks, in words (empty when complete)."""
    counted = counting(approvals)
    needs: list[str] = []
    short = policy.approvals - len(counted)
    if short > 0:
        needs.append(
            f"{short} more approval{'s' if short > 1 else ''} "
            f"({len(counted)} of {policy.approvals})"
        )
    for team, wanted in sorted(policy.from_teams.items()):
        have = sum(1 for a in counted if team in a.teams)
        if have < wanted:
            needs.append(
                f"{wanted - have} more approval{'s' if wanted - have > 1 else ''} from "
                f"someone in team {team!r} ({have} of {wanted})"
            )
    return needs


def complete(policy: SignoffPolicy, approvals: Sequence[Approval]) -> bool:
    return not missing(policy, approvals)


def judge(policy: SignoffPolicy, approvals: Sequence[Approval], *, evidence_ready: bool) -> Verdict:
    """The sign-off gate's state from the version's decisions."""
    rejection = next((a for a in approvals if a.decision == Decision.REJECT), None)
    counted = counting(approvals)
    approved_by = [a.actor for a in counted]
    details = {
        "approved_by": approved_by,
        "required": policy.approvals,
        "from_teams": dict(policy.from_teams),
    }
    if rejection is not None:
        return Verdict(
            GateOutcome.FAILED,
            f"rejected by {rejection.actor}: {rejection.comment}",
            "a rejection ends the candidacy: register a new version",
            details,
        )
    needs = missing(policy, approvals)
    if not needs:
        return Verdict(
            GateOutcome.PASSED,
            f"approved by {', '.join(approved_by)}" if counted else "no approvals required",
            "",
            details,
        )
    before = "" if evidence_ready else "once gates 1-3 pass, "
    return Verdict(
        GateOutcome.PENDING,
        f"{len(counted)} of {policy.approvals} approvals",
        f"{before}{'; '.join(needs)} (keel approve MODEL VERSION -m ...)",
        details,
    )
