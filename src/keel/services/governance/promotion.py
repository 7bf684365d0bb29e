"""Promotion: the only way a version reaches the ``production`` alias.

Promotion (write access in the model's team) sets the ``production`` alias only when every
required gate passed; otherwise `Conflict` (409) lists each failing or missing gate and what
would make it pass. The previous production version is retired and recorded for rollback.
**Break-glass**: an admin may promote despite failing gates with a written justification; the
promotion is flagged forever (`Promotion.break_glass`) and audited with the blockers it
overrode. It cannot revive a rejected (archived) version or a prohibited model.
"""

from __future__ import annotations

from keel.domain.governance import GateOutcome, PipelineStatus, PolicyRecord, Promotion
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.registry import Model, RiskTier
from keel.errors import Conflict, PermissionDenied
from keel.services.governance.pipeline import Pipeline, promotion_payload, required_text
from keel.store.sql.governance import NewPromotion


class PromotionPath(Pipeline):
    """Promotion through the gates, or break-glass."""

    def promote(
        self, by: Principal, model: str, version: int, *, justification: str | None = None
    ) -> Promotion:
        """Point ``production`` at the version when every required gate passed.

        With ``justification`` this is a break-glass override: admins only, audited and flagged
        forever, and still refused for a prohibited model or a rejected version.
        """
        found = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, found.team)
        name = found.name
        token = self.store.state_token(name, version)
        # Judged under the token, so a gate run or decision landing meanwhile refuses.
        owner, record, state, justification = self.check_promotable(
            by, name, version, justification=justification
        )
        break_glass = justification is not None
        promotion = self.store.promote(
            owner.name,
            version,
            NewPromotion(
                actor=by.name,
                break_glass=break_glass,
                justification=justification or "",
                overridden=state.blockers if break_glass else (),
                policy_tier=record.tier,
                policy_version=record.version,
            ),
            expect=token,
        )
        event = "promotion.break_glass" if promotion.break_glass else "promotion.completed"
        self._announce(event, promotion_payload(promotion))
        return promotion

    def production_version(self, model: str) -> int | None:
        """The version the ``production`` alias points at now, or None."""
        return self._production_version(check_name(model, "model"))

    def check_promotable(
        self, by: Principal, model: str, version: int, *, justification: str | None = None
    ) -> tuple[Model, PolicyRecord, PipelineStatus, str | None]:
        """The checks `promote` makes, changing nothing: `Conflict` (409) listing the blockers
        unless every required gate passed or an admin breaks glass with ``justification``.
        Deployments judge live traffic with it too. Returns the model, the policy in force, the
        version's pipeline and the cleaned justification."""
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        break_glass = justification is not None
        if break_glass:
            if not by.is_admin:
                raise PermissionDenied(
                    f"{by.name!r} may not break glass: overriding the gates needs the 'admin' "
                    "role. Make the failing gates pass instead, or ask an admin.",
                    {"permission": "admin", "needs": "admin"},
                )
            justification = required_text(
                justification or "", "justification", "explain why the gates must be overridden"
            )
        if owner.risk_tier == RiskTier.PROHIBITED:
            raise Conflict(
                f"{owner.name} is in the prohibited risk tier (EU AI Act Art. 5): it can never be "
                "promoted, not even by break-glass.",
                {"model": owner.name, "tier": "prohibited"},
            )
        found = self.registry.get_version(owner.name, version)
        record = self.policy(str(owner.risk_tier))
        state = self._status(owner, found, record)
        if not state.promotable and not break_glass:
            failing = [
                s
                for s in state.gates
                if s.outcome not in (GateOutcome.PASSED, GateOutcome.NOT_REQUIRED)
            ]
            raise Conflict(
                f"{owner.name} version {version} cannot be promoted: "
                + "; ".join(state.blockers)
                + ".",
                {
                    "model": owner.name,
                    "version": version,
                    "blockers": list(state.blockers),
                    "gates": [
                        {"gate": str(s.gate), "outcome": str(s.outcome), "to_pass": s.to_pass}
                        for s in failing
                    ],
                },
            )
        return owner, record, state, justification if break_glass else None
