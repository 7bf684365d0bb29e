"""Explainability evidence in gate 1: permutation importance and TreeSHAP measured in the sandbox
on real fitted models, judged by the policy, and shown in the exported compliance document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from tests.services.evaluation_fixtures import (
    ADMIN,
    attach,
    dataset,
    joblib_bytes,
    open_backend,
    register,
)

from keel.domain.evaluation import EvaluationReport, TaskType
from keel.domain.explainability import Explanation, FeatureImportance
from keel.domain.governance import Gate, GateOutcome, GateResult, evidence_digest
from keel.domain.policy import (
    ExplainabilityPolicy,
    PerformancePolicy,
    parse_policy,
    policy_to_dict,
)
from keel.errors import InvalidInput
from keel.services import policies
from keel.services.backend import Backend
from keel.services.explainability import default_budget
from keel.services.gates import explainability as explainability_rules
from keel.services.gates import performance as performance_gate

POLICY = """\
tier: unassessed
checks:
  performance:
    min: {accuracy: 0.5}
    explainability:
      required: true
      n_repeats: 5
      protected_top_k: 2
"""


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    opened = open_backend(tmp_path_factory.mktemp("explain") / "keel")
    yield opened
    opened.close()


def _gate(backend: Backend, version: int) -> GateResult:
    backend.governance.run_gates(ADMIN, "churn", version)
    results = backend.governance.gate_results("churn", version)
    return [r for r in results if r.gate == Gate.PERFORMANCE][-1]


def _check(result: GateResult, name: str) -> dict[str, Any]:
    return next(c for c in result.evidence["checks"] if c["check"] == name)


def _fitted_version(backend: Backend, estimator: Any) -> int:
    train = dataset(n=400, seed=1)
    estimator.fit(train[["x1", "x2"]], train["y"])
    version = register(backend, joblib_bytes(estimator)).version
    attach(backend, version, dataset(n=300, seed=2))
    return version


def test_tree_ensembles_get_importance_and_shap_shown_in_the_exported_document(
    backend: Backend,
) -> None:
    backend.governance.apply_policy(ADMIN, POLICY)
    for estimator in (
        RandomForestClassifier(n_estimators=25, max_depth=5, random_state=0),
        HistGradientBoostingClassifier(max_iter=25, random_state=0),
    ):
        version = _fitted_version(backend, estimator)
        result = _gate(backend, version)
        assert result.outcome == GateOutcome.PASSED, result.evidence["to_pass"]
        evidence = result.evidence["explainability"]
        # y depends on 1.5 * x1 - x2: x1 matters most, x2 next; the model never reads sex.
        assert [f["feature"] for f in evidence["features"]] == ["x1", "x2"]
        assert (evidence["repeats_done"], evidence["n_repeats"]) == (5, 5)
        assert all(f["mean"] > 0 and f["std"] >= 0 for f in evidence["features"])
        assert evidence["shap_rows"] == 300, evidence["fallbacks"]
        assert all(f["shap"] > 0 for f in evidence["features"])
        assert evidence["fallbacks"] == []
        top_k = _check(result, "no protected attribute in the top 2")
        assert top_k["status"] == "pass" and "does not read sex, region" in top_k["detail"]

        doc = backend.compliance.technical_documentation("churn", version)
        markdown = backend.compliance.render(doc, "md")
        assert "### Explainability: feature importance (performance gate: passed" in markdown
        assert "| 1 | x1 |" in markdown and "| 2 | x2 |" in markdown
        assert "**Factors:** Feature importance (performance gate): most important" in markdown
        html = backend.compliance.render(doc, "html")
        assert "<td>1</td><td>x1</td>" in html
        exported = json.loads(backend.compliance.render(doc, "json"))
        [evaluation] = [s for s in exported["sections"] if s["key"] == "evaluation"]
        assert evaluation["content"]["explainability"]["features"][0]["feature"] == "x1"


def test_a_required_explanation_that_ran_out_of_budget_fails_the_gate(backend: Backend) -> None:
    backend.governance.apply_policy(ADMIN, POLICY.replace("n_repeats: 5", "budget_s: 0.000001"))
    version = _fitted_version(backend, RandomForestClassifier(n_estimators=10, random_state=0))

    result = _gate(backend, version)

    assert result.outcome == GateOutcome.FAILED
    evidence = result.evidence["explainability"]
    assert (evidence["computed"], evidence["repeats_done"], evidence["features"]) == (False, 0, [])
    assert "budget ran out before the first of 5 repeats" in evidence["fallbacks"][0]
    assert _check(result, "explainability computed")["status"] == "fail"
    assert "raise checks.performance.explainability.budget_s" in result.evidence["to_pass"]
    assert _check(result, "min accuracy")["status"] == "pass"  # only explainability failed
    markdown = backend.compliance.render(
        backend.compliance.technical_documentation("churn", version), "md"
    )
    assert "- Fallback: permutation importance: the budget ran out" in markdown


def test_a_protected_attribute_in_the_top_k_fails_the_gate() -> None:
    settings = ExplainabilityPolicy(protected_top_k=2)
    leaning_on_sex = Explanation(
        "accuracy",
        300,
        5,
        5,
        60.0,
        (
            FeatureImportance("x1", 0.20, 0.01),
            FeatureImportance("sex", 0.15, 0.01),
            FeatureImportance("x2", 0.05, 0.01),
        ),
    )
    computed, top_k = explainability_rules.checks(settings, leaning_on_sex, ("sex", "region"))
    assert computed.passed is True
    assert top_k.passed is False
    assert "sex ranks 2" in top_k.detail and top_k.values["ranks"] == {"sex": 2, "region": None}

    third = ExplainabilityPolicy(protected_top_k=1)
    _, passing = explainability_rules.checks(third, leaning_on_sex, ("sex", "region"))
    assert passing.passed is True and "does not read region" in passing.detail

    nothing = Explanation("accuracy", 0, 5, 0, 1.0, fallbacks=("the budget ran out",))
    _, unjudged = explainability_rules.checks(settings, nothing, ("sex",))
    assert unjudged.passed is False and "cannot be checked" in unjudged.detail
    optional = ExplainabilityPolicy(required=False)
    [noted] = explainability_rules.checks(optional, nothing, ("sex",))
    assert noted.passed is None  # recorded, neither passes nor fails the gate


def test_a_changed_explanation_changes_the_digest_approvals_were_given_on() -> None:
    def digest(first: str) -> str:
        features = (FeatureImportance(first, 0.3, 0.01), FeatureImportance("other", 0.1, 0.01))
        explanation = Explanation("accuracy", 100, 5, 5, 60.0, features)
        report = EvaluationReport(TaskType.CLASSIFICATION, 100, {"accuracy": 0.9}, {}, (), 1.0)
        verdict = performance_gate.judge(
            PerformancePolicy(),
            report=report,
            unavailable=None,
            reported={},
            production=performance_gate.Production(None),
            dataset=None,
            explanation=explanation,
        )
        evidence = verdict.evidence("unassessed", 1)
        return evidence_digest(Gate.PERFORMANCE, verdict.outcome, evidence)

    assert digest("x1") == digest("x1")
    assert digest("x1") != digest("x2")


@pytest.mark.parametrize(
    ("setting", "field", "message"),
    [
        ("budget_s: -5", "checks.performance.explainability.budget_s", "more than 0 seconds"),
        ("budget_s: 0", "checks.performance.explainability.budget_s", "more than 0 seconds"),
        ("budget_s: soon", "checks.performance.explainability.budget_s", "must be a number"),
        ("protected_top_k: 0", "checks.performance.explainability.protected_top_k", "at least 1"),
        ("protected_top_k: -2", "checks.performance.explainability.protected_top_k", "at least 1"),
        ("n_repeats: 3", "checks.performance.explainability.n_repeats", "at least 5"),
        ("n_repeats: 1000", "checks.performance.explainability.n_repeats", "at most 100"),
        ("required: maybe", "checks.performance.explainability.required", "true or false"),
        ("shapley: true", "checks.performance.explainability.shapley", "unknown field"),
    ],
)
def test_bad_explainability_settings_are_refused_naming_the_field(
    setting: str, field: str, message: str
) -> None:
    key = setting.split(":")[0]
    # The setting replaces its own line when the policy has one, else the n_repeats line.
    line = next((n for n in POLICY.splitlines() if n.strip().startswith(f"{key}:")), None)
    replaced = (line or "n_repeats: 5").strip()
    with pytest.raises(InvalidInput) as refused:
        policies.parse(POLICY.replace(replaced, setting))
    assert refused.value.details["field"] == field
    assert message in refused.value.message
    assert refused.value.details["line"] == POLICY.splitlines().index(f"      {replaced}") + 1


def test_a_refused_policy_stores_nothing(tmp_path: Path) -> None:
    backend = open_backend(tmp_path / "keel")
    try:
        with pytest.raises(InvalidInput, match="budget_s: must be more than 0"):
            backend.governance.apply_policy(ADMIN, POLICY.replace("n_repeats: 5", "budget_s: -1"))
        assert backend.governance.policy("unassessed").version == 0  # still the default
    finally:
        backend.close()


def test_the_explainability_section_round_trips_and_defaults() -> None:
    parsed = policies.parse(POLICY)
    assert parsed.performance is not None
    settings = parsed.performance.explainability
    assert settings is not None
    assert (settings.required, settings.budget_s, settings.n_repeats) == (True, None, 5)
    assert (settings.shap, settings.protected_top_k) == (True, 2)
    assert parse_policy(policy_to_dict(parsed)) == parsed


def test_the_budget_comes_from_the_environment_when_the_policy_sets_none() -> None:
    assert default_budget({}) == 60.0
    assert default_budget({"KEEL_EXPLAIN_BUDGET_S": "12.5"}) == 12.5


@pytest.mark.parametrize("raw", ["0", "-3", "soon", "nan"])
def test_a_bad_budget_variable_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(InvalidInput, match="KEEL_EXPLAIN_BUDGET_S must be a number of seconds"):
        default_budget({"KEEL_EXPLAIN_BUDGET_S": raw})
