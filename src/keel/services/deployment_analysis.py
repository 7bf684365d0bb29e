"""Canary analysis: the canary against the stable version over the same period, from telemetry.

Each arm's figures are read per version from telemetry over the same [start, end): error rate
and p99 latency from `Telemetry.operations`; the arms' predictions (and labels, where they
arrived) from `Telemetry.labelled_predictions`. So the analysis needs no shared memory with the
gateway and works across API and gateway replicas.

Prediction drift between the arms is the two-sample Kolmogorov-Smirnov distance of their
predictions (0: same distribution, 1: disjoint); live performance is computed on the rows whose
labels arrived, per arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from keel.domain.deployments import (
    ArmFigure,
    Check,
    CheckResult,
    Deployment,
    Metric,
    Verdict,
    judge_check,
    measurement,
)
from keel.domain.telemetry import LABEL, PREDICTION
from keel.services.telemetry import Telemetry
from keel.stats.drift import ks_exact

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Measurement:
    verdict: Verdict
    results: tuple[CheckResult, ...]
    canary_rows: int
    stable_rows: int
    error: str = ""


def _floats(table: pa.Table, column: str) -> FloatArray:
    values = table.column(column).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True)
class _Arm:
    error_rate: ArmFigure
    p99: ArmFigure
    predictions: FloatArray
    labelled: tuple[FloatArray, FloatArray]  # (prediction, label) of labelled rows


def _live(metric: Metric, predicted: FloatArray, actual: FloatArray) -> ArmFigure:
    if len(predicted) == 0:
        return ArmFigure(None, 0)
    if metric == Metric.LIVE_ACCURACY:
        value = float(np.mean(predicted == actual))
    elif metric == Metric.LIVE_MAE:
        value = float(np.mean(np.abs(predicted - actual)))
    else:
        value = float(np.sqrt(np.mean((predicted - actual) ** 2)))
    return ArmFigure(value, len(predicted))


def _no_stable(check: Check) -> CheckResult:
    return CheckResult(
        check.metric,
        Verdict.SKIPPED,
        None,
        None,
        None,
        "a 100% step sends the stable version no traffic to compare with",
    )


class CanaryAnalysis:
    """Measures one step of a canary (`measure`)."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def _arm(
        self, model: str, version: int, start: datetime, end: datetime, rows_needed: bool
    ) -> _Arm:
        ops = self.telemetry.operations(model, version, start, end)
        predictions: FloatArray = np.empty(0)
        labelled: tuple[FloatArray, FloatArray] = (np.empty(0), np.empty(0))
        if rows_needed:
            table = self.telemetry.labelled_predictions(
                model, version, start, end, include_unlabelled=True
            )
            predicted = _floats(table, PREDICTION)
            label = _floats(table, LABEL)
            served = ~np.isnan(predicted)
            predictions = predicted[served]
            has_label = served & ~np.isnan(label)
            labelled = (predicted[has_label], label[has_label])
        return _Arm(
            ArmFigure(ops.error_rate, ops.rows),
            ArmFigure(ops.latency_p99_ms, ops.rows),
            predictions,
            labelled,
        )

    def figures(self, check: Check, canary: _Arm, stable: _Arm) -> tuple[ArmFigure, ArmFigure]:
        if check.metric == Metric.ERROR_RATE:
            return canary.error_rate, stable.error_rate
        if check.metric == Metric.LATENCY_P99_MS:
            return canary.p99, stable.p99
        if check.metric == Metric.PREDICTION_DRIFT:
            if len(canary.predictions) == 0 or len(stable.predictions) == 0:
                distance = None
            else:
                distance = ks_exact(stable.predictions, canary.predictions).statistic
            # The distance is the canary's figure; stable's own distance to itself is 0.
            return (
                ArmFigure(distance, len(canary.predictions)),
                ArmFigure(0.0, len(stable.predictions)),
            )
        return _live(check.metric, *canary.labelled), _live(check.metric, *stable.labelled)

    def measure(self, deployment: Deployment, start: datetime, end: datetime) -> Measurement:
        """Judge the current step's checks on [start, end); an unreadable figure is an ERROR
        measurement (counted against `consecutiveErrorLimit`), never a pass."""
        assert deployment.stable is not None
        step = deployment.plan.steps[deployment.step]
        rows_needed = any(
            c.metric != Metric.ERROR_RATE and c.metric != Metric.LATENCY_P99_MS for c in step.checks
        )
        try:
            canary = self._arm(deployment.model, deployment.candidate, start, end, rows_needed)
            stable = self._arm(deployment.model, deployment.stable, start, end, rows_needed)
        except Exception as exc:  # a telemetry read failing is an analysis error, not a crash
            return Measurement(Verdict.ERROR, (), 0, 0, f"{type(exc).__name__}: {exc}")
        min_samples = deployment.plan.analysis.min_samples
        results = tuple(
            _no_stable(check)
            if step.weight >= 1.0 and check.needs_stable
            else judge_check(check, *self.figures(check, canary, stable), min_samples)
            for check in step.checks
        )
        return Measurement(
            measurement(results), results, canary.error_rate.rows, stable.error_rate.rows
        )
