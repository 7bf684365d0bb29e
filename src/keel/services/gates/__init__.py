"""The four gates' rules, one module each: each turns what Keel measured into a `Verdict`.

The rules read the evaluation report, scan report and approvals given to them; running the
evaluation and storing the verdicts is `keel.services.governance.Governance`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.domain.governance import GateOutcome


@dataclass(frozen=True)
class Check:
    """One rule of a gate and how the version fared against it."""

    name: str
    passed: bool | None  # None: not applicable (noted, neither passes nor fails the gate)
    detail: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        status = "not_applicable" if self.passed is None else ("pass" if self.passed else "fail")
        return {"check": self.name, "status": status, "detail": self.detail, **self.values}


@dataclass(frozen=True)
class Verdict:
    """A gate's outcome, a one-line summary, what would make it pass, and the details."""

    outcome: GateOutcome
    summary: str
    to_pass: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def evidence(self, tier: str, policy_version: int) -> dict[str, Any]:
        """The stored evidence: summary, advice, the policy it was judged under, the details."""
        return {
            "summary": self.summary,
            "to_pass": self.to_pass,
            "policy": {"tier": tier, "version": policy_version},
            **self.details,
        }


def from_checks(checks: list[Check], *, passed: str, details: Mapping[str, Any]) -> Verdict:
    """PASSED when no check failed, else FAILED with the failing checks as the advice."""
    failing = [c for c in checks if c.passed is False]
    body = {**details, "checks": [c.to_dict() for c in checks]}
    if not failing:
        return Verdict(GateOutcome.PASSED, passed, "", body)
    return Verdict(
        GateOutcome.FAILED,
        f"{len(failing)} of {len(checks)} checks failed",
        "; ".join(c.detail for c in failing),
        body,
    )


def fmt(value: float | None) -> str:
    """A metric for people: four significant decimals, or 'n/a'.

    >>> fmt(0.812345), fmt(None), fmt(12.0)
    ('0.8123', 'n/a', '12')
    """
    return "n/a" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")
