"""MLOps maturity scored from evidence: the criteria, the two scales, and how a level is reached.

Each criterion is a question Keel answers from its own records (`keel.services.maturity` holds
the queries), except the few Keel cannot observe, which an admin may attest with a comment.
A level is reached when every criterion of it and of every level below it is met or attested:

* Google, "MLOps: continuous delivery and automation pipelines in machine learning" (2020):
  0 manual process; 1 ML pipeline automation (continuous training); 2 CI/CD pipeline automation.
* Microsoft, "Machine Learning operations maturity model" (Azure Architecture Center): 0 no
  MLOps; 1 DevOps but no MLOps; 2 automated training; 3 automated model deployment; 4 full MLOps
  automated operations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class CriterionStatus(StrEnum):
    MET = "met"
    MISSING = "missing"
    NEEDS_ATTESTATION = "needs attestation"
    ATTESTED = "attested"


@dataclass(frozen=True)
class Criterion:
    id: str
    title: str
    next_step: str
    attestable: bool = False


@dataclass(frozen=True)
class Evidence:
    """One record behind a verdict: what it is, its id, and when it happened."""

    kind: str
    id: str
    at: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class CriterionResult:
    criterion: Criterion
    status: CriterionStatus
    evidence: tuple[Evidence, ...] = ()
    missing: str = ""

    @property
    def holds(self) -> bool:
        return self.status in (CriterionStatus.MET, CriterionStatus.ATTESTED)


def _c(id: str, title: str, next_step: str, attestable: bool = False) -> Criterion:
    return Criterion(id, title, next_step, attestable)


CRITERIA: tuple[Criterion, ...] = (
    _c(
        "versions_registered",
        "Models are versioned in a registry",
        "keel versions register MODEL FILE",
    ),
    _c(
        "lineage_recorded",
        "The newest version records its training data and git commit",
        "Register from a git checkout with training_data= (the SDK records both).",
    ),
    _c(
        "environment_pinned",
        "The newest version pins its Python environment",
        "Register with environment= (Python version and packages).",
    ),
    _c(
        "model_card",
        "The newest version has a model card stating its intended use",
        "Register with a model card (card={'intended_use': ...}).",
    ),
    _c("risk_assessed", "The model's risk is assessed", "keel risk assess MODEL"),
    _c(
        "automated_validation",
        "The production version passed the gates Keel ran, without a break-glass override",
        "keel gates run MODEL VERSION, then promote through the gates.",
    ),
    _c(
        "continuous_delivery",
        "Two or more versions reached production through the gates in the last 90 days",
        "Promote retrained versions through the gates (keel promote MODEL VERSION).",
    ),
    _c(
        "production_telemetry",
        "The production version logged predictions in the last 30 days",
        "Log predictions (Client.log_predictions or keel telemetry import).",
    ),
    _c(
        "monitoring",
        "A scheduled monitor has judged the model's windows",
        "keel monitor create MODEL (scheduled)",
    ),
    _c(
        "alerting",
        "Alert rules turn monitor verdicts into incidents",
        "keel alerts apply MODEL FILE",
    ),
    _c(
        "rollback_playbook",
        "An enabled playbook rolls the model back on an incident",
        "keel playbooks apply a playbook with a rollback action.",
    ),
    _c(
        "retraining_automated",
        "Retraining runs without a person: on a schedule or from a playbook",
        "keel retraining set MODEL --schedule-every N, or a playbook with a retrain action.",
    ),
    _c(
        "retraining_from_monitoring",
        "An incident triggered a retraining run that registered a version with lineage",
        "Add a retrain action to a playbook matching the model's drift incidents.",
    ),
    _c(
        "incident_rehearsed",
        "Incident response was rehearsed in the last 90 days (a drill a person resolved)",
        "keel drills run --model MODEL --scenario drift, then acknowledge and resolve it.",
    ),
    _c(
        "ci_tests",
        "Training and serving code is built and tested automatically (CI)",
        "Run the pipeline's tests in CI, then: keel maturity attest ci_tests",
        attestable=True,
    ),
    _c(
        "training_serving_consistency",
        "Training and serving compute features with the same code",
        "Share feature code (or a feature store), then: keel maturity attest "
        "training_serving_consistency",
        attestable=True,
    ),
)
BY_ID: Mapping[str, Criterion] = {c.id: c for c in CRITERIA}

GOOGLE: Mapping[int, tuple[str, ...]] = {
    1: (
        "lineage_recorded",
        "environment_pinned",
        "automated_validation",
        "production_telemetry",
        "monitoring",
        "retraining_automated",
    ),
    2: (
        "ci_tests",
        "continuous_delivery",
        "alerting",
        "rollback_playbook",
        "retraining_from_monitoring",
    ),
}
MICROSOFT: Mapping[int, tuple[str, ...]] = {
    1: ("versions_registered", "ci_tests"),
    2: ("lineage_recorded", "environment_pinned", "model_card"),
    3: ("risk_assessed", "automated_validation", "continuous_delivery"),
    4: (
        "production_telemetry",
        "monitoring",
        "alerting",
        "rollback_playbook",
        "retraining_automated",
        "retraining_from_monitoring",
        "training_serving_consistency",
    ),
}
SCALES: Mapping[str, Mapping[int, tuple[str, ...]]] = {"google": GOOGLE, "microsoft": MICROSOFT}


@dataclass(frozen=True)
class Level:
    """A scale's level, and what the next one still needs (empty at the top)."""

    scale: str
    level: int
    top: int
    next_needs: tuple[str, ...] = field(default=())


def level(scale: str, results: Mapping[str, CriterionResult]) -> Level:
    """The highest level of ``scale`` whose criteria, and those below, all hold.

    >>> level("google", {}).level
    0
    """
    levels = SCALES[scale]
    reached = 0
    for number in sorted(levels):
        failing = tuple(c for c in levels[number] if c not in results or not results[c].holds)
        if failing:
            return Level(scale, reached, max(levels), failing)
        reached = number
    return Level(scale, reached, max(levels))


def evidence_share(criteria: Sequence[Criterion] = CRITERIA) -> float:
    """The share of criteria decided from records rather than attestation.

    >>> evidence_share() >= 0.8
    True
    """
    return sum(not c.attestable for c in criteria) / len(criteria)
