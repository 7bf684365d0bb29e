"""Gate 1's explainability rules, judged on the explanation measured in the sandbox.

Rules (``checks.performance.explainability`` in the tier's policy):
- ``required: true``: the gate fails when no permutation importance could be computed (the budget
  ran out before one repeat finished, the explainer crashed, ...), naming the fallback.
  With ``required: false`` the evidence is recorded and a missing one is only noted.
- ``protected_top_k: K``: the gate fails when a protected attribute of the signature ranks among
  the K most important features. A protected attribute the model does not read passes. When no
  importance was computed the rule cannot be judged and fails.
"""

from __future__ import annotations

from keel.domain.explainability import Explanation
from keel.domain.policy import ExplainabilityPolicy
from keel.services.gates import Check


def checks(
    policy: ExplainabilityPolicy, explanation: Explanation, protected: tuple[str, ...]
) -> list[Check]:
    """The explainability checks of gate 1."""
    values = {
        "required": policy.required,
        "repeats_done": explanation.repeats_done,
        "n_repeats": explanation.n_repeats,
        "fallbacks": list(explanation.fallbacks),
    }
    found: list[Check] = []
    if explanation.computed:
        found.append(
            Check("explainability computed", True, explanation.summary(), values),
        )
    else:
        why = explanation.summary()
        to_fix = (
            "; raise checks.performance.explainability.budget_s in the policy or use a smaller "
            "evaluation dataset"
        )
        found.append(
            Check(
                "explainability computed",
                False if policy.required else None,
                f"feature importance was {why}" + (to_fix if policy.required else ""),
                values,
            )
        )
    if policy.protected_top_k is None:
        return found
    k = policy.protected_top_k
    name = f"no protected attribute in the top {k}"
    rule = {"top_k": k, "protected": list(protected)}
    if not explanation.computed:
        return [
            *found,
            Check(name, False, f"cannot be checked: feature importance was {why}", rule),
        ]
    ranks = {attribute: explanation.rank_of(attribute) for attribute in protected}
    high = {a: r for a, r in ranks.items() if r is not None and r <= k}
    if high:
        listed = ", ".join(f"{a} ranks {r}" for a, r in sorted(high.items(), key=lambda x: x[1]))
        detail = (
            f"protected attribute(s) among the {k} most important features: {listed}; retrain "
            "without them (and their proxies), or change the policy's protected_top_k"
        )
        return [*found, Check(name, False, detail, rule | {"ranks": ranks})]
    unread = [a for a, r in ranks.items() if r is None]
    detail = f"no protected attribute ranks in the top {k}" + (
        f" (the model does not read {', '.join(unread)})" if unread else ""
    )
    return [*found, Check(name, True, detail, rule | {"ranks": ranks})]
