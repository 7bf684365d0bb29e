"""Rollback: ``production`` back to the version the current one replaced, through the gates.

The target must still pass every required gate under the policy in force now, with its
evaluation data now and its sign-off; after a policy change or a risk reassessment, its gates
run again and approvers sign it off again (see `keel.services.governance.signoff`).
"""

from __future__ import annotations

from dataclasses import dataclass

from keel.domain.governance import Promotion
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.errors import Conflict
from keel.services.governance.pipeline import Pipeline, promotion_payload, required_text
from keel.store.sql.governance import NewPromotion, RollbackNote


@dataclass(frozen=True)
class RollbackPlan:
    """Where a rollback would move ``production`` (``target``) and what blocks it."""

    model: str
    current: int | None
    target: int | None
    blockers: tuple[str, ...]


class RollbackPath(Pipeline):
    """Rollback plans and rollbacks."""

    def rollback_plan(self, model: str) -> RollbackPlan:
        """Where a rollback of the model would go and what blocks it, without changing anything.

        The target is the ``previous_version`` of the promotion that put the current production
        version in place. It must still pass every required gate under the tier's policy in
        force now, with its evaluation data now, and keep its sign-off; the one check a rollback
        does not re-judge is the comparison against the production version (that is the version
        being rolled back from).
        """
        owner = self.registry.get_model(check_name(model, "model"))
        current, target = self._rollback_target(owner.name)
        if current is None:
            return RollbackPlan(
                owner.name,
                None,
                None,
                (f"{owner.name} has no production version, so there is nothing to roll back",),
            )
        if target is None:
            return RollbackPlan(
                owner.name,
                current,
                None,
                (
                    f"{owner.name} version {current} is the first production version: there is "
                    "no earlier promoted version to roll back to; promote a fixed version instead",
                ),
            )
        found = self.registry.get_version(owner.name, target)
        record = self.policy(str(owner.risk_tier))
        state = self._status(owner, found, record, rollback=True)
        return RollbackPlan(owner.name, current, target, state.blockers)

    def rollback(
        self, by: Principal, model: str, *, reason: str, incident_id: int | None = None
    ) -> Promotion:
        """Move ``production`` back to the version it replaced, through the promotion checks.

        See `rollback_plan` for the target and the checks. Refused with `Conflict` (409) and
        the reasons when there is no earlier production version or it no longer passes. Recorded
        as a promotion plus a rollback record (reason, incident), audited as
        ``governance.rollback``, and visible in the alias history.
        """
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        reason = required_text(reason, "reason", "say why production is rolled back")
        plan = self.rollback_plan(owner.name)
        if plan.target is None or plan.blockers:
            where = "" if plan.target is None else f" to version {plan.target}"
            raise Conflict(
                f"{owner.name} cannot be rolled back{where}: " + "; ".join(plan.blockers) + ".",
                {
                    "model": owner.name,
                    "version": plan.target,
                    "production": plan.current,
                    "blockers": list(plan.blockers),
                },
            )
        assert plan.current is not None
        token = self.store.state_token(owner.name, plan.target)
        record = self.policy(str(owner.risk_tier))
        # Judged again under the token, so a gate run or decision landing meanwhile refuses.
        again = self.rollback_plan(owner.name)
        if again != plan:
            raise Conflict(
                f"{owner.name}'s production or gates changed while it was being rolled back; "
                "try again.",
                {"model": owner.name},
            )
        promotion = self.store.promote(
            owner.name,
            plan.target,
            NewPromotion(
                actor=by.name,
                break_glass=False,
                justification="",
                overridden=(),
                policy_tier=record.tier,
                policy_version=record.version,
                rollback=RollbackNote(
                    reason=reason, incident_id=incident_id, from_version=plan.current
                ),
            ),
            expect=token,
        )
        self._announce(
            "rollback.completed",
            {**promotion_payload(promotion), "reason": reason, "incident_id": incident_id},
        )
        return promotion
