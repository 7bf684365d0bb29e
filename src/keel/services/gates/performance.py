"""Gate 1, model selection & performance: Keel's own metrics against the policy's thresholds.

Rules:
- The metrics are the ones Keel computed by running the artifact on the version's evaluation
  data; the metrics the client reported at registration are stored next to them, with the
  difference, and never used to pass the gate.
- ``min`` / ``max`` thresholds apply to the overall metrics; ``segments.min`` / ``segments.max``
  to every group of every segment column the policy lists.
- ``max_drop_vs_production`` compares with the version currently in production, evaluated on
  this version's evaluation data (the same rows). With no version in production the check is
  recorded as not applicable.
- A threshold on a metric of the other task (``r2`` for a classifier) is not applicable; a
  threshold on a metric of this task that could not be computed (``roc_auc`` without
  ``predict_proba``) fails.
- With ``explainability`` in the policy, the feature-importance evidence measured in the
  sandbox is part of the evidence (and its digest), judged by `keel.services.gates.explainability`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keel.domain.evaluation import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    EvaluationReport,
    TaskType,
)
from keel.domain.explainability import Explanation
from keel.domain.governance import GateOutcome
from keel.domain.policy import PerformancePolicy, higher_is_better
from keel.services.gates import Check, Verdict, fmt, from_checks
from keel.services.gates import explainability as explainability_rules

_TOLERANCE = 1e-9  # float noise must not fail a metric sitting exactly on its threshold


@dataclass(frozen=True)
class Production:
    """The production version's side of the relative check."""

    version: int | None  # None: nothing in production
    report: EvaluationReport | None = None
    error: str | None = None  # it could not be evaluated on this version's data


def _task_metrics(task: TaskType) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == TaskType.CLASSIFICATION else REGRESSION_METRICS


def _bound(
    name: str,
    where: str,
    metrics: Mapping[str, float],
    task: TaskType,
    metric: str,
    limit: float,
    *,
    minimum: bool,
) -> Check:
    op = ">=" if minimum else "<="
    values: dict[str, Any] = {"metric": metric, "threshold": f"{op} {limit}", "where": where}
    if metric not in _task_metrics(task):
        return Check(name, None, f"{metric} does not apply to a {task} model", values)
    value = metrics.get(metric)
    if value is None:
        return Check(
            name,
            False,
            f"{metric} could not be computed {where} (the policy needs {op} {limit})",
            values | {"value": None},
        )
    ok = value >= limit - _TOLERANCE if minimum else value <= limit + _TOLERANCE
    detail = f"{metric} is {fmt(value)} {where}; the policy needs {op} {limit}"
    return Check(name, ok, detail, values | {"value": value})


def _relative(policy: PerformancePolicy, report: EvaluationReport, prod: Production) -> list[Check]:
    checks: list[Check] = []
    for metric, max_drop in sorted(policy.max_drop_vs_production.items()):
        values: dict[str, Any] = {
            "metric": metric,
            "max_drop": max_drop,
            "production_version": prod.version,
        }
        name = f"not worse than production: {metric}"
        if metric not in _task_metrics(report.task):
            checks.append(
                Check(name, None, f"{metric} does not apply to a {report.task} model", values)
            )
            continue
        if prod.version is None:
            checks.append(
                Check(name, None, "no version is in production: nothing to compare", values)
            )
            continue
        if prod.report is None:
            checks.append(
                Check(
                    name,
                    False,
                    f"production version {prod.version} could not be "
                    f"evaluated on this version's data: {prod.error}",
                    values,
                )
            )
            continue
        mine, theirs = report.metrics.get(metric), prod.report.metrics.get(metric)
        if mine is None or theirs is None:
            checks.append(
                Check(
                    name,
                    False,
                    f"{metric} could not be computed for "
                    f"{'this' if mine is None else 'the production'} version",
                    values | {"candidate": mine, "production": theirs},
                )
            )
            continue
        drop = (theirs - mine) if higher_is_better(metric) else (mine - theirs)
        ok = drop <= max_drop + _TOLERANCE
        detail = (
            f"{metric} is {fmt(mine)} against production version {prod.version}'s "
            f"{fmt(theirs)} on the same data: {'worse' if drop > 0 else 'no worse'} by "
            f"{fmt(abs(drop)) if drop > 0 else '0'}; the policy allows at most {max_drop}"
        )
        checks.append(
            Check(
                name, ok, detail, values | {"candidate": mine, "production": theirs, "drop": drop}
            )
        )
    return checks


def judge(
    policy: PerformancePolicy,
    *,
    report: EvaluationReport | None,
    unavailable: tuple[GateOutcome, str, str] | None,
    reported: Mapping[str, float],
    production: Production,
    dataset: Mapping[str, Any] | None,
    explanation: Explanation | None = None,
    protected: tuple[str, ...] = (),
) -> Verdict:
    """The performance gate's verdict.

    ``unavailable`` is (outcome, summary, to_pass) when no report could be made (no evaluation
    data, an unsafe artifact, a crashed evaluation); ``dataset`` describes the data evaluated on.
    ``explanation`` is the explainability evidence when the policy asks for it
    (`keel.services.gates.explainability`); ``protected`` the signature's protected attributes.
    """
    base: dict[str, Any] = {
        "dataset": dict(dataset) if dataset else None,
        "reported_metrics": dict(reported),
    }
    if report is None:
        assert unavailable is not None
        outcome, summary, to_pass = unavailable
        return Verdict(outcome, summary, to_pass, base)
    checks = [
        _bound(
            f"min {m}", "on the evaluation data", report.metrics, report.task, m, v, minimum=True
        )
        for m, v in sorted(policy.min.items())
    ] + [
        _bound(
            f"max {m}", "on the evaluation data", report.metrics, report.task, m, v, minimum=False
        )
        for m, v in sorted(policy.max.items())
    ]
    for column in policy.segments.columns:
        groups = report.segments.get(column)
        if groups is None:
            checks.append(
                Check(
                    f"segments of {column}",
                    False,
                    f"no per-segment metrics were computed for {column!r}",
                    {"column": column},
                )
            )
            continue
        for group, metrics in sorted(groups.items()):
            where = f"for {column}={group}"
            checks += [
                _bound(f"min {m} {where}", where, metrics, report.task, m, v, minimum=True)
                for m, v in sorted(policy.segments.min.items())
            ] + [
                _bound(f"max {m} {where}", where, metrics, report.task, m, v, minimum=False)
                for m, v in sorted(policy.segments.max.items())
            ]
    checks += _relative(policy, report, production)
    if policy.explainability is not None and explanation is not None:
        checks += explainability_rules.checks(policy.explainability, explanation, protected)
    computed = dict(report.metrics)
    details = base | {
        "task": str(report.task),
        "rows": report.rows,
        "sandbox": report.sandbox,
        "computed_metrics": computed,
        "segment_metrics": {
            c: {g: dict(v) for g, v in gs.items()} for c, gs in report.segments.items()
        },
        "reported_minus_computed": {
            m: reported[m] - computed[m] for m in sorted(reported) if m in computed
        },
        "production_version": production.version,
        "production_metrics": dict(production.report.metrics) if production.report else None,
    }
    if explanation is not None:
        details["explainability"] = explanation.to_dict()
    shown = ", ".join(f"{m}={fmt(v)}" for m, v in sorted(computed.items()))
    return from_checks(checks, passed=f"every threshold met ({shown})", details=details)
