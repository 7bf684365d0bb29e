"""Explanation drift's two sides: gate 1's evidence, and the model explained on a recent window.

The ``explanation_drift`` monitor check (`keel.services.monitoring_checks.explanation_drift`)
compares the feature-importance ranking a version was approved on (the explainability evidence
of its newest performance gate result) with the ranking of the same model on a window's
labelled rows. The window is explained the same way gate 1 was, in the sandbox: permutation
importance with the evidence's number of repeats and seed, under the budget
(``KEEL_EXPLAIN_BUDGET_S``, else 60 s); TreeSHAP is left out, as the rankings compared are the
permutation ones. A monitor runs this only when it names the check: each window starts a
sandboxed process.
"""

from __future__ import annotations

from typing import Any

from keel.domain.evaluation import TaskType
from keel.domain.explainability import Explanation
from keel.domain.governance import Gate
from keel.services.evaluation import Evaluation
from keel.services.explainability import Explainer
from keel.store.sql.governance import SqlGovernanceStore


class WindowExplanations:
    """Reads gate 1's explainability evidence and explains a version on a window's rows."""

    def __init__(self, governance: SqlGovernanceStore, evaluation: Evaluation) -> None:
        self.governance = governance
        self.evaluation = evaluation

    def evidence(self, model: str, version: int) -> Explanation | None:
        """The explainability evidence of the version's newest performance gate result."""
        for result in reversed(self.governance.gate_results(model, version)):
            raw = result.evidence.get("explainability")
            if result.gate == Gate.PERFORMANCE and isinstance(raw, dict):
                try:
                    return Explanation.from_dict(raw)
                except (KeyError, TypeError, ValueError):
                    return None
        return None

    def explain(
        self, model: str, version: int, data: Any, *, task: TaskType, target: str
    ) -> Explanation:
        """Permutation importance of the version on ``data`` (features and the label)."""
        found = self.evaluation.registry.get_version(model, version)
        baseline = self.evidence(model, version)
        repeats = baseline.n_repeats if baseline is not None else 5
        return Explainer(self.evaluation).explain(
            found, data, task=task, target=target, n_repeats=repeats, shap=False
        )
