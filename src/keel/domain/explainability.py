"""Explainability evidence: which features a version's predictions depend on, and how much.

Gate 1 measures it in the sandbox on the evaluation data (`keel.services.explanation_runner`):

- **permutation importance**: the drop of the score (accuracy for a classifier, R² for a
  regressor) when one feature's values are shuffled, ``n_repeats`` times with a fixed seed; the
  mean and standard deviation per feature. It works for any model that predicts.
- **TreeSHAP**: the mean |SHAP value| per feature, when the model is a tree ensemble the optional
  ``shap`` package explains.

Both run under a compute budget; whatever was skipped or cut short is listed in ``fallbacks``
("shap is not installed", "the budget ran out after 3 of 5 repeats"). The record holds no
timings, so the same model on the same data gives the same evidence and the same digest.
Stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The seed every permutation-importance run uses, so that runs can be compared.
RANDOM_STATE = 0


@dataclass(frozen=True)
class FeatureImportance:
    """One feature's importance: the permutation score drop (mean, std), mean |SHAP| if any."""

    feature: str
    mean: float
    std: float
    shap: float | None = None


@dataclass(frozen=True)
class Explanation:
    """What the explainer measured on one dataset; ``features`` are ordered by rank (1 first)."""

    scoring: str  # the score permutation importance measured drops of: accuracy, r2
    rows: int
    n_repeats: int  # asked for
    repeats_done: int  # completed within the budget (0: nothing was computed)
    budget_s: float
    features: tuple[FeatureImportance, ...] = ()
    shap_rows: int = 0  # rows TreeSHAP explained (0: no SHAP summary)
    fallbacks: tuple[str, ...] = ()
    random_state: int = RANDOM_STATE

    @property
    def computed(self) -> bool:
        """Whether at least one full repeat of permutation importance finished."""
        return self.repeats_done > 0 and bool(self.features)

    @property
    def ranking(self) -> list[str]:
        """Feature names, most important first."""
        return [f.feature for f in self.features]

    def rank_of(self, feature: str) -> int | None:
        """1-based rank of ``feature``, or None when the model does not read it.

        >>> e = Explanation("accuracy", 10, 5, 5, 60.0,
        ...                 (FeatureImportance("a", 0.3, 0.0), FeatureImportance("b", 0.1, 0.0)))
        >>> e.rank_of("b"), e.rank_of("z")
        (2, None)
        """
        for index, item in enumerate(self.features, start=1):
            if item.feature == feature:
                return index
        return None

    def summary(self, top: int = 5) -> str:
        """One line for people: the top features with their importance, or why there are none.

        >>> Explanation("r2", 10, 5, 0, 1.0, fallbacks=("budget ran out",)).summary()
        'not computed: budget ran out'
        """
        if not self.computed:
            return "not computed: " + ("; ".join(self.fallbacks) or "no reason recorded")
        shown = ", ".join(f"{f.feature} ({f.mean:.4g} ± {f.std:.2g})" for f in self.features[:top])
        return (
            f"most important by permutation importance ({self.scoring} drop, "
            f"{self.repeats_done} repeats on {self.rows} rows): {shown}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (round-trips through `from_dict`)."""
        return {
            "method": "permutation_importance",
            "scoring": self.scoring,
            "rows": self.rows,
            "n_repeats": self.n_repeats,
            "repeats_done": self.repeats_done,
            "random_state": self.random_state,
            "budget_s": self.budget_s,
            "computed": self.computed,
            "features": [
                {"feature": f.feature, "rank": rank, "mean": f.mean, "std": f.std, "shap": f.shap}
                for rank, f in enumerate(self.features, start=1)
            ],
            "shap_rows": self.shap_rows,
            "fallbacks": list(self.fallbacks),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Explanation:
        return cls(
            scoring=str(d["scoring"]),
            rows=int(d["rows"]),
            n_repeats=int(d["n_repeats"]),
            repeats_done=int(d["repeats_done"]),
            budget_s=float(d["budget_s"]),
            features=tuple(
                FeatureImportance(
                    feature=str(f["feature"]),
                    mean=float(f["mean"]),
                    std=float(f["std"]),
                    shap=None if f.get("shap") is None else float(f["shap"]),
                )
                for f in d.get("features", ())
            ),
            shap_rows=int(d.get("shap_rows", 0)),
            fallbacks=tuple(str(x) for x in d.get("fallbacks", ())),
            random_state=int(d.get("random_state", RANDOM_STATE)),
        )


def not_computed(reason: str, *, n_repeats: int, budget_s: float, scoring: str) -> Explanation:
    """The evidence when the explainer could not run at all (it crashed, was stopped, ...)."""
    return Explanation(
        scoring=scoring,
        rows=0,
        n_repeats=n_repeats,
        repeats_done=0,
        budget_s=budget_s,
        fallbacks=(reason,),
    )


def ordered(features: Sequence[FeatureImportance]) -> tuple[FeatureImportance, ...]:
    """Most important first; ties by name, so the ranking does not depend on column order.

    >>> [f.feature for f in ordered([FeatureImportance("b", 0.1, 0), FeatureImportance("a", 0.1, 0),
    ...                              FeatureImportance("c", 0.5, 0)])]
    ['c', 'a', 'b']
    """
    return tuple(sorted(features, key=lambda f: (-f.mean, f.feature)))
