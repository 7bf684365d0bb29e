"""Governance policies as data: which gates a risk tier requires, and their thresholds.

A policy is a mapping (parsed from YAML by ``keel.services.policies``) of this shape::

    tier: high                      # unassessed | minimal | limited | high | prohibited
    description: High-risk systems (EU AI Act Annex III)
    checks:                         # a check left out is not required for the tier
      performance:
        min: {roc_auc: 0.80}        # absolute: computed metric >= value
        max: {log_loss: 0.60}       # absolute: computed metric <= value
        max_drop_vs_production:     # relative: not worse than the production version, evaluated
          roc_auc: 0.01             #   on this version's evaluation data, by more than this
        segments:                   # per-segment metrics (the segment columns of the data)
          columns: [region]
          min: {roc_auc: 0.70}      # applied to every group of every column listed
        explainability:             # permutation importance (+ TreeSHAP) on the evaluation data
          required: true            # fail when no importance could be computed
          budget_s: 60              # compute budget; default KEEL_EXPLAIN_BUDGET_S, else 60
          n_repeats: 5              # permutation repeats, at least 5
          shap: true                # TreeSHAP summaries for tree ensembles (extra 'explain')
          protected_top_k: 3        # fail when a protected attribute ranks in the top 3
      security:
        max_artifact_mb: 512
        require_pinned_environment: true   # every recorded package has an exact version
      fairness:
        max_demographic_parity_difference: 0.10
        max_equalized_odds_difference: 0.10
        min_disparate_impact_ratio: 0.80   # the four-fifths rule
        min_group_size: 30                 # smaller groups are reported and fail the gate
        require_protected_attributes: true # no protected column in the signature fails the gate
      signoff:
        approvals: 2                # distinct people, none of them the version's registrant
        from_teams: {compliance: 1} # of which at least 1 holds a role in team 'compliance'

Metric directions (which way is "worse") are fixed: accuracy, precision, recall, f1, roc_auc and
r2 are better higher; log_loss, mae, rmse and mape are better lower. A threshold on a metric of
the other task (``r2`` for a classifier) is reported as not applicable, so one policy can cover
classifiers and regressors alike.

`parse_policy` checks the mapping and raises `PolicyProblem` naming the field path at fault
(``checks.perfomance``); the service turns the path into a line of the YAML file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.domain.evaluation import CLASSIFICATION_METRICS, REGRESSION_METRICS
from keel.domain.registry import RiskTier

KNOWN_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "mape"})
KNOWN_CHECKS = ("performance", "security", "fairness", "signoff")
# Permutation importance: fewer repeats give no useful standard deviation.
MIN_REPEATS = 5
MAX_REPEATS = 100
DEFAULT_EXPLAIN_BUDGET_S = 60.0
Path = tuple[str | int, ...]


class PolicyProblem(Exception):
    """A policy mapping breaks a rule; ``path`` names the field (``("checks", "perfomance")``)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{dotted(path)}: {message}")
        self.path = path
        self.message = message


def dotted(path: Path) -> str:
    """``("checks", "segments", "columns", 0)`` as ``checks.segments.columns[0]``.

    >>> dotted(("checks", "signoff", "from_teams", "compliance")), dotted(("a", 0, "b")), dotted(())
    ('checks.signoff.from_teams.compliance', 'a[0].b', '(top level)')
    """
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is the better one."""
    return metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class SegmentPolicy:
    columns: tuple[str, ...] = ()
    min: Mapping[str, float] = field(default_factory=dict)
    max: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ExplainabilityPolicy:
    """Explainability evidence in gate 1 (`keel.domain.explainability`)."""

    required: bool = True  # no importance computed fails the gate
    budget_s: float | None = None  # None: KEEL_EXPLAIN_BUDGET_S, else DEFAULT_EXPLAIN_BUDGET_S
    n_repeats: int = MIN_REPEATS
    shap: bool = True
    protected_top_k: int | None = None  # a protected attribute ranked this high fails


@dataclass(frozen=True)
class PerformancePolicy:
    min: Mapping[str, float] = field(default_factory=dict)
    max: Mapping[str, float] = field(default_factory=dict)
    max_drop_vs_production: Mapping[str, float] = field(default_factory=dict)
    segments: SegmentPolicy = field(default_factory=SegmentPolicy)
    explainability: ExplainabilityPolicy | None = None  # None: no explanation is computed


@dataclass(frozen=True)
class SecurityPolicy:
    max_artifact_mb: float | None = None
    require_pinned_environment: bool = True

    @property
    def max_artifact_bytes(self) -> int | None:
        return None if self.max_artifact_mb is None else int(self.max_artifact_mb * 1024 * 1024)


@dataclass(frozen=True)
class FairnessPolicy:
    max_demographic_parity_difference: float | None = None
    max_equalized_odds_difference: float | None = None
    min_disparate_impact_ratio: float | None = None
    min_group_size: int = 30
    require_protected_attributes: bool = True


@dataclass(frozen=True)
class SignoffPolicy:
    approvals: int = 1
    from_teams: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """A parsed, valid policy. A check that is ``None`` is not required for the tier."""

    tier: RiskTier
    description: str = ""
    performance: PerformancePolicy | None = None
    security: SecurityPolicy | None = None
    fairness: FairnessPolicy | None = None
    signoff: SignoffPolicy | None = None


# -- parsing -----------------------------------------------------------------------------------


def _mapping(value: Any, path: Path) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyProblem(path, f"must be a mapping of fields, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return "nothing" if value is None else type(value).__name__


def _only(data: Mapping[str, Any], known: Sequence[str], path: Path, what: str) -> None:
    for key in data:
        if not isinstance(key, str) or key not in known:
            raise PolicyProblem((*path, str(key)), f"unknown {what}; known: {', '.join(known)}")


def _number(
    value: Any, path: Path, *, low: float | None = None, high: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyProblem(path, f"must be a number, not {_kind(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise PolicyProblem(path, f"must be {bounds}, not {value}")
    return float(value)


def _integer(value: Any, path: Path, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyProblem(path, f"must be a whole number, not {_kind(value)}")
    if value < low:
        raise PolicyProblem(path, f"must be at least {low}, not {value}")
    return value


def _flag(value: Any, path: Path) -> bool:
    if not isinstance(value, bool):
        raise PolicyProblem(path, f"must be true or false, not {_kind(value)}")
    return value


def _metrics(value: Any, path: Path, *, kind: str) -> dict[str, float]:
    data = _mapping(value, path)
    _only(data, KNOWN_METRICS, path, "metric")
    high = 1.0 if kind == "drop" else None
    return {
        name: _number(v, (*path, name), low=0.0 if kind == "drop" else None, high=high)
        for name, v in data.items()
    }


def _names(value: Any, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise PolicyProblem(path, f"must be a list of column names, not {_kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise PolicyProblem((*path, index), f"must be a column name, not {_kind(item)}")
    return tuple(value)


def _explainability(value: Any, path: Path) -> ExplainabilityPolicy | None:
    if value is None:
        return None
    data = _mapping(value, path)
    known = ("required", "budget_s", "n_repeats", "shap", "protected_top_k")
    _only(data, known, path, "field")
    budget = data.get("budget_s")
    if budget is not None and _number(budget, (*path, "budget_s")) <= 0:
        raise PolicyProblem((*path, "budget_s"), f"must be more than 0 seconds, not {budget}")
    repeats = _integer(data.get("n_repeats", MIN_REPEATS), (*path, "n_repeats"), low=MIN_REPEATS)
    if repeats > MAX_REPEATS:
        raise PolicyProblem((*path, "n_repeats"), f"must be at most {MAX_REPEATS}, not {repeats}")
    top_k = data.get("protected_top_k")
    top_path = (*path, "protected_top_k")
    return ExplainabilityPolicy(
        required=_flag(data.get("required", True), (*path, "required")),
        budget_s=None if budget is None else float(budget),
        n_repeats=repeats,
        shap=_flag(data.get("shap", True), (*path, "shap")),
        protected_top_k=None if top_k is None else _integer(top_k, top_path, low=1),
    )


def _performance(data: Mapping[str, Any], path: Path) -> PerformancePolicy:
    known = ("min", "max", "max_drop_vs_production", "segments", "explainability")
    _only(data, known, path, "field")
    segments = _mapping(data.get("segments"), (*path, "segments"))
    seg_path = (*path, "segments")
    _only(segments, ("columns", "min", "max"), seg_path, "field")
    return PerformancePolicy(
        min=_metrics(data.get("min"), (*path, "min"), kind="value"),
        max=_metrics(data.get("max"), (*path, "max"), kind="value"),
        max_drop_vs_production=_metrics(
            data.get("max_drop_vs_production"), (*path, "max_drop_vs_production"), kind="drop"
        ),
        segments=SegmentPolicy(
            columns=_names(segments.get("columns", []), (*seg_path, "columns")),
            min=_metrics(segments.get("min"), (*seg_path, "min"), kind="value"),
            max=_metrics(segments.get("max"), (*seg_path, "max"), kind="value"),
        ),
        explainability=_explainability(data.get("explainability"), (*path, "explainability")),
    )


def _security(data: Mapping[str, Any], path: Path) -> SecurityPolicy:
    _only(data, ("max_artifact_mb", "require_pinned_environment"), path, "field")
    size = data.get("max_artifact_mb")
    return SecurityPolicy(
        max_artifact_mb=None if size is None else _number(size, (*path, "max_artifact_mb"), low=0),
        require_pinned_environment=_flag(
            data.get("require_pinned_environment", True), (*path, "require_pinned_environment")
        ),
    )


def _optional(data: Mapping[str, Any], key: str, path: Path, *, high: float | None) -> float | None:
    value = data.get(key)
    return None if value is None else _number(value, (*path, key), low=0.0, high=high)


def _fairness(data: Mapping[str, Any], path: Path) -> FairnessPolicy:
    known = (
        "max_demographic_parity_difference",
        "max_equalized_odds_difference",
        "min_disparate_impact_ratio",
        "min_group_size",
        "require_protected_attributes",
    )
    _only(data, known, path, "field")
    return FairnessPolicy(
        max_demographic_parity_difference=_optional(data, known[0], path, high=1.0),
        max_equalized_odds_difference=_optional(data, known[1], path, high=1.0),
        min_disparate_impact_ratio=_optional(data, known[2], path, high=1.0),
        min_group_size=_integer(data.get("min_group_size", 30), (*path, "min_group_size"), low=1),
        require_protected_attributes=_flag(
            data.get("require_protected_attributes", True), (*path, known[4])
        ),
    )


def _signoff(data: Mapping[str, Any], path: Path) -> SignoffPolicy:
    _only(data, ("approvals", "from_teams"), path, "field")
    approvals = _integer(data.get("approvals", 1), (*path, "approvals"), low=0)
    teams_path = (*path, "from_teams")
    teams = _mapping(data.get("from_teams"), teams_path)
    from_teams = {str(t): _integer(n, (*teams_path, str(t)), low=1) for t, n in teams.items()}
    if sum(from_teams.values()) > approvals:
        raise PolicyProblem(
            teams_path,
            f"asks for {sum(from_teams.values())} approvals from named teams, more than the "
            f"{approvals} approvals required in total; raise 'approvals' or lower these counts",
        )
    return SignoffPolicy(approvals=approvals, from_teams=from_teams)


def parse_policy(data: Any) -> Policy:
    """Check a parsed policy mapping and return the `Policy`, or raise `PolicyProblem`.

    >>> parse_policy({"tier": "minimal", "checks": {"signoff": {"approvals": 1}}}).signoff
    SignoffPolicy(approvals=1, from_teams={})
    >>> parse_policy({"tier": "minimal", "checks": {"perfomance": {}}})
    Traceback (most recent call last):
    ...
    keel.domain.policy.PolicyProblem: checks.perfomance: unknown check; known: performance, \
security, fairness, signoff
    """
    top = _mapping(data, ())
    if not top:
        raise PolicyProblem((), "the policy is empty; it needs at least 'tier' and 'checks'")
    _only(top, ("tier", "description", "checks"), (), "field")
    if "tier" not in top:
        raise PolicyProblem(("tier",), "is missing; name the risk tier this policy is for")
    tiers = [str(t) for t in RiskTier]
    if top["tier"] not in tiers:
        raise PolicyProblem(("tier",), f"unknown tier {top['tier']!r}; known: {', '.join(tiers)}")
    description = top.get("description", "")
    if not isinstance(description, str):
        raise PolicyProblem(("description",), f"must be text, not {_kind(description)}")
    if "checks" not in top:
        raise PolicyProblem(("checks",), "is missing; list the checks (or 'checks: {}' for none)")
    checks = _mapping(top["checks"], ("checks",))
    _only(checks, KNOWN_CHECKS, ("checks",), "check")

    def section(name: str) -> Mapping[str, Any] | None:
        return _mapping(checks[name], ("checks", name)) if name in checks else None

    performance, security = section("performance"), section("security")
    fairness, signoff = section("fairness"), section("signoff")
    return Policy(
        tier=RiskTier(top["tier"]),
        description=description,
        performance=None
        if performance is None
        else _performance(performance, ("checks", "performance")),
        security=None if security is None else _security(security, ("checks", "security")),
        fairness=None if fairness is None else _fairness(fairness, ("checks", "fairness")),
        signoff=None if signoff is None else _signoff(signoff, ("checks", "signoff")),
    )


def policy_to_dict(policy: Policy) -> dict[str, Any]:
    """The policy as plain data (what `parse_policy` reads back to an equal `Policy`)."""
    checks: dict[str, Any] = {}
    if policy.performance is not None:
        p = policy.performance
        checks["performance"] = {
            "min": dict(p.min),
            "max": dict(p.max),
            "max_drop_vs_production": dict(p.max_drop_vs_production),
            "segments": {
                "columns": list(p.segments.columns),
                "min": dict(p.segments.min),
                "max": dict(p.segments.max),
            },
        }
        if p.explainability is not None:
            checks["performance"]["explainability"] = dict(vars(p.explainability))
    if policy.security is not None:
        checks["security"] = {
            "max_artifact_mb": policy.security.max_artifact_mb,
            "require_pinned_environment": policy.security.require_pinned_environment,
        }
    if policy.fairness is not None:
        f = policy.fairness
        checks["fairness"] = {
            "max_demographic_parity_difference": f.max_demographic_parity_difference,
            "max_equalized_odds_difference": f.max_equalized_odds_difference,
            "min_disparate_impact_ratio": f.min_disparate_impact_ratio,
            "min_group_size": f.min_group_size,
            "require_protected_attributes": f.require_protected_attributes,
        }
    if policy.signoff is not None:
        checks["signoff"] = {
            "approvals": policy.signoff.approvals,
            "from_teams": dict(policy.signoff.from_teams),
        }
    return {"tier": str(policy.tier), "description": policy.description, "checks": checks}
