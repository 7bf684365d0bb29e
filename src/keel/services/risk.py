"""Risk classification: the EU AI Act questionnaire, assessments, and who may change a tier.

The rule for who may record an assessment (see also README "Risk classification"):

* Anyone with write access in the model's team (contributor and up) may record an assessment
  whose resulting tier equals the model's current tier: a re-assessment that confirms it.
* An assessment that changes the tier, including the first one that moves a model out of
  ``unassessed``, needs the approver role in the model's team (or admin). The tier decides which
  gates and how many sign-offs a version needs, so whoever builds a model must not be able to
  lower the bar for it alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, allows, authorize
from keel.domain.risk import QUESTIONNAIRE, Questionnaire, RiskAssessment, classify
from keel.errors import PermissionDenied
from keel.store.registry_store import RegistryStore
from keel.store.sql.risk import SqlRiskStore


class RiskClassification:
    """Assess models against the questionnaire; the model's ``risk_tier`` follows the newest."""

    def __init__(self, store: SqlRiskStore, registry: RegistryStore) -> None:
        self.store = store
        self.registry = registry

    def questionnaire(self) -> Questionnaire:
        """The questions, grouped by category, in the order they are asked."""
        return QUESTIONNAIRE

    def assess(self, by: Principal, model: str, answers: Mapping[str, Any]) -> RiskAssessment:
        """Classify ``answers``, record the assessment and set the model's tier (audited).

        Raises `InvalidInput` naming the question for an unknown id, a non-boolean or a missing
        answer, and `PermissionDenied` when the tier would change and ``by`` is no approver in the
        model's team. Nothing is written in either case.
        """
        found = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, found.team)
        classification = classify(answers, QUESTIONNAIRE)
        if classification.tier != found.risk_tier and not allows(
            by, Permission.APPROVE, found.team
        ):
            raise PermissionDenied(
                f"These answers change model {model!r}'s risk tier from {found.risk_tier!s} to "
                f"{classification.tier!s}, and changing a tier needs the 'approver' role in team "
                f"{found.team!r}. Ask an approver of that team to submit the assessment "
                "(`keel risk assess`), or an admin for the role (keel users grant).",
                {
                    "permission": Permission.APPROVE.value,
                    "team": found.team,
                    "needs": "approver",
                    "current_tier": str(found.risk_tier),
                    "assessed_tier": str(classification.tier),
                },
            )
        return self.store.record(
            found.name,
            classification,
            QUESTIONNAIRE.version,
            by.name,
            expected_tier=found.risk_tier,
        )

    def current(self, model: str) -> RiskAssessment | None:
        """The newest assessment of ``model``, or None when it was never assessed."""
        history = self.history(model)
        return history[-1] if history else None

    def history(self, model: str) -> list[RiskAssessment]:
        """Every assessment of ``model``, oldest first."""
        return self.store.history(check_name(model, "model"))
