"""Policy files: the defaults Keel ships, and bad files refused at their line and field."""

from __future__ import annotations

import pytest

from keel.domain.policy import PolicyProblem, parse_policy, policy_to_dict
from keel.domain.registry import RiskTier
from keel.errors import InvalidInput
from keel.services import policies


@pytest.mark.parametrize("tier", list(RiskTier))
def test_every_tier_ships_a_valid_default_that_round_trips(tier: RiskTier) -> None:
    policy = policies.parse(policies.default_source(tier), f"{tier}.yaml")
    assert policy.tier == tier
    assert parse_policy(policy_to_dict(policy)) == policy
    assert policy.security is not None and policy.security.require_pinned_environment


def test_high_risk_default_needs_two_approvers_one_from_compliance() -> None:
    high = policies.parse(policies.default_source(RiskTier.HIGH))
    assert high.signoff is not None
    assert (high.signoff.approvals, dict(high.signoff.from_teams)) == (2, {"compliance": 1})
    assert high.fairness is not None and high.fairness.min_disparate_impact_ratio == 0.8
    unassessed = policies.parse(policies.default_source(RiskTier.UNASSESSED))
    assert unassessed.signoff == high.signoff  # unassessed is judged as strictly as high risk


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "tier: high\ndescription: x\nchecks:\n  performance:\n    min:\n      roc_auc: 0.8\n"
            "  perfomance: {}\n",
            "policy.yaml line 7: checks.perfomance: unknown check; known: performance, "
            "security, fairness, signoff",
        ),
        (
            "tier: high\nchecks:\n  performance:\n    min:\n      rocauc: 0.8\n",
            "policy.yaml line 5: checks.performance.min.rocauc: unknown metric; known: accuracy",
        ),
        (
            "tier: high\nchecks:\n  security:\n    max_size: 3\n",
            "policy.yaml line 4: checks.security.max_size: unknown field; known: max_artifact_mb",
        ),
        (
            "tier: high\nchecks:\n  signoff:\n    approvals: two\n",
            "policy.yaml line 4: checks.signoff.approvals: must be a whole number, not the text",
        ),
        (
            "tier: high\nchecks:\n  signoff:\n    approvals: 1\n    from_teams: {compliance: 2}\n",
            "policy.yaml line 5: checks.signoff.from_teams: asks for 2 approvals",
        ),
        (
            "tier: high\nchecks:\n  fairness:\n    min_disparate_impact_ratio: 1.5\n",
            "line 4: checks.fairness.min_disparate_impact_ratio: must be between 0.0 and 1.0",
        ),
        (
            "tier: high\nchecks:\n  fairness: {}\n  fairness: {}\n",
            "policy.yaml line 4: checks.fairness: appears twice; keep one",
        ),
        ("tier: extreme\nchecks: {}\n", "policy.yaml line 1: tier: unknown tier 'extreme'"),
        ("checks: {}\n", "tier: is missing"),
        ("tier: [high\n", "policy.yaml line 2: (syntax): not valid YAML"),
        ("", "(top level): the policy is empty"),
    ],
)
def test_bad_policy_files_are_refused_at_their_line(source: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        policies.parse(source)
    assert message in refused.value.message
    assert refused.value.details["field"]


def test_the_problem_names_the_field_path() -> None:
    with pytest.raises(PolicyProblem) as problem:
        parse_policy({"tier": "high", "checks": {"performance": {"segments": {"columns": [1]}}}})
    assert problem.value.path == ("checks", "performance", "segments", "columns", 0)


def test_a_check_left_out_is_not_required() -> None:
    policy = parse_policy({"tier": "minimal", "checks": {"security": {}}})
    assert (policy.performance, policy.fairness, policy.signoff) == (None, None, None)
    assert policy.security is not None and policy.security.max_artifact_bytes is None
