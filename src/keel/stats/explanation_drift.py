"""How far a window's feature-importance ranking moved from the one a version was approved on.

Two numbers over the features both explanations hold:

- **Spearman's rank correlation** of the importances (1: same order; -1: reversed). Its
  formula and ties handling are SciPy's (`scipy.stats.spearmanr`).
- **top-k overlap**: the share of the reference's k most important features that are still
  among the current k most important.

References: C. Spearman (1904), "The proof and measurement of association between two things";
the top-k overlap follows Krishna et al. (2022), "The Disagreement Problem in Explainable
Machine Learning" (feature agreement).

>>> reference = {"income": 0.30, "debt": 0.10, "age": 0.02}
>>> rank_correlation(reference, {"income": 0.25, "debt": 0.12, "age": 0.01})
1.0
>>> rank_correlation(reference, {"income": 0.01, "debt": 0.12, "age": 0.25})
-1.0
>>> top_k_overlap(["income", "debt", "age"], ["age", "debt", "income"], 2)
0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def rank_correlation(reference: Mapping[str, float], current: Mapping[str, float]) -> float | None:
    """Spearman's rho of the importances of the features in both; None when it is undefined
    (fewer than two common features, or one side's importances are all equal)."""
    from scipy.stats import spearmanr  # type: ignore[import-untyped]

    common = sorted(set(reference) & set(current))
    if len(common) < 2:
        return None
    ref = [reference[f] for f in common]
    cur = [current[f] for f in common]
    if len(set(ref)) < 2 or len(set(cur)) < 2:
        return None
    rho = float(spearmanr(ref, cur).statistic)
    return rho if math.isfinite(rho) else None


def top_k_overlap(reference: Sequence[str], current: Sequence[str], k: int) -> float | None:
    """Share of the reference's top ``k`` features in the current top ``k`` (rankings, most
    important first); None when ``k`` < 1 or the reference has no features."""
    k = min(k, len(reference))
    if k < 1:
        return None
    return len(set(reference[:k]) & set(current[:k])) / k
