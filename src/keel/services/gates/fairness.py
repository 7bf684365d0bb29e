"""Gate 3, ethics & bias: group fairness on the evaluation data, per protected attribute.

Rules:
- For every column the version's signature marks ``protected_attribute``, the evaluation
  (fairlearn) reports each group's size, selection rate, true and false positive rates, and the
  demographic parity difference, equalized odds difference and disparate impact ratio (the
  four-fifths rule), which are held against the policy's limits.
- A group smaller than ``min_group_size`` is too small to judge: it is shown with its size and
  the gate FAILS, naming the group and the two ways out (more evaluation rows for that group, or
  a smaller ``min_group_size`` in the policy). It is never silently passed.
- A limit whose metric could not be computed (fewer than two groups large enough, or a
  regression model) fails.
- With ``require_protected_attributes`` (the default), a signature without a protected
  attribute fails the gate: fairness cannot be shown without one.
"""

from __future__ import annotations

from typing import Any

from keel.domain.evaluation import EvaluationReport, FairnessResult
from keel.domain.governance import GateOutcome
from keel.domain.policy import FairnessPolicy
from keel.services.gates import Check, Verdict, fmt, from_checks

_TOLERANCE = 1e-9


def _limit(
    attribute: str, label: str, value: float | None, limit: float | None, *, minimum: bool
) -> Check | None:
    if limit is None:
        return None
    op = ">=" if minimum else "<="
    values = {"attribute": attribute, "metric": label, "value": value, "threshold": f"{op} {limit}"}
    if value is None:
        return Check(
            f"{label} for {attribute}",
            False,
            f"the {label} for {attribute} could not be computed (fewer than two groups "
            "large enough to judge)",
            values,
        )
    ok = value >= limit - _TOLERANCE if minimum else value <= limit + _TOLERANCE
    return Check(
        f"{label} for {attribute}",
        ok,
        f"the {label} for {attribute} is {fmt(value)}; the policy needs {op} {limit}",
        values,
    )


def _attribute(policy: FairnessPolicy, result: FairnessResult) -> list[Check]:
    checks: list[Check] = []
    if result.too_small_groups:
        sizes = {g.group: g.count for g in result.groups}
        small = ", ".join(f"{g!r} ({sizes.get(g, 0)} rows)" for g in result.too_small_groups)
        checks.append(
            Check(
                f"group sizes for {result.attribute}",
                False,
                f"{result.attribute} has groups too small to judge: {small}, under the policy's "
                f"min_group_size of {policy.min_group_size}; add evaluation rows for them or lower "
                "fairness.min_group_size in the policy",
                {"attribute": result.attribute, "too_small_groups": list(result.too_small_groups)},
            )
        )
    for check in (
        _limit(
            result.attribute,
            "demographic parity difference",
            result.demographic_parity_difference,
            policy.max_demographic_parity_difference,
            minimum=False,
        ),
        _limit(
            result.attribute,
            "equalized odds difference",
            result.equalized_odds_difference,
            policy.max_equalized_odds_difference,
            minimum=False,
        ),
        _limit(
            result.attribute,
            "disparate impact ratio",
            result.disparate_impact_ratio,
            policy.min_disparate_impact_ratio,
            minimum=True,
        ),
    ):
        if check is not None:
            checks.append(check)
    return checks


def _groups(result: FairnessResult) -> dict[str, Any]:
    return {
        "groups": [
            {
                "group": g.group,
                "count": g.count,
                "selection_rate": g.selection_rate,
                "tpr": g.tpr,
                "fpr": g.fpr,
                "too_small": g.too_small,
            }
            for g in result.groups
        ],
        "demographic_parity_difference": result.demographic_parity_difference,
        "equalized_odds_difference": result.equalized_odds_difference,
        "disparate_impact_ratio": result.disparate_impact_ratio,
        "too_small_groups": list(result.too_small_groups),
    }


def judge(
    policy: FairnessPolicy,
    *,
    report: EvaluationReport | None,
    unavailable: tuple[GateOutcome, str, str] | None,
    protected: tuple[str, ...],
) -> Verdict:
    """The fairness gate's verdict over the evaluation report's fairness results."""
    base: dict[str, Any] = {
        "protected_attributes": list(protected),
        "min_group_size": policy.min_group_size,
    }
    if report is None:
        assert unavailable is not None
        outcome, summary, to_pass = unavailable
        return Verdict(outcome, summary, to_pass, base)
    if not protected:
        if policy.require_protected_attributes:
            return Verdict(
                GateOutcome.FAILED,
                "no protected attribute to judge fairness on",
                "mark the protected attribute columns (role 'protected_attribute') in the "
                "version's signature and include them in the evaluation data",
                base,
            )
        return Verdict(
            GateOutcome.PASSED, "no protected attribute; the policy does not ask for one", "", base
        )
    by_attribute = {r.attribute: r for r in report.fairness}
    checks: list[Check] = []
    for attribute in protected:
        result = by_attribute.get(attribute)
        if result is None:
            checks.append(
                Check(
                    f"fairness of {attribute}",
                    False,
                    f"no fairness result was computed for {attribute!r}",
                    {"attribute": attribute},
                )
            )
        else:
            checks += _attribute(policy, result)
    details = base | {"attributes": {r.attribute: _groups(r) for r in report.fairness}}
    return from_checks(checks, passed="every fairness limit met", details=details)
