"""How a shadow compares with the version it shadows, pair by pair.

The gateway logs the live answer to the stable version's telemetry and the mirrored answer to
the shadow version's telemetry with the same ``prediction_id``; a pair is the two rows joined by
that id over the shadow's period. Reported: agreement (share of pairs with the same prediction),
the mean absolute score difference, the mean latency difference (shadow minus stable), and, on
the pairs whose label arrived, each arm's performance on exactly the same rows (accuracy when
the labels are whole numbers, mean absolute error otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa

from keel.domain.telemetry import LABEL, LATENCY_MS, PREDICTION, PREDICTION_ID, SCORE
from keel.services.telemetry import Telemetry


@dataclass(frozen=True)
class ShadowReport:
    model: str
    stable_version: int
    shadow_version: int
    start: datetime
    end: datetime
    pairs: int
    agreement: float | None
    score_difference: float | None  # mean |shadow score - stable score|
    latency_difference_ms: float | None  # mean (shadow latency - stable latency)
    labelled_pairs: int
    performance_metric: str | None  # "accuracy" or "mae"
    stable_performance: float | None
    shadow_performance: float | None


def _mean(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else None


def _column(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def shadow_report(
    telemetry: Telemetry, model: str, stable: int, shadow: int, start: datetime, end: datetime
) -> ShadowReport:
    """The pairs of ``stable`` and ``shadow`` answers over [start, end), compared."""

    def arm(version: int) -> pa.Table:
        table = telemetry.labelled_predictions(
            model, version, start, end, (LATENCY_MS,), include_unlabelled=True
        ).select([PREDICTION_ID, PREDICTION, SCORE, LATENCY_MS, LABEL])
        for index, column in enumerate(table.columns):
            if pa.types.is_null(column.type):  # an empty window's untyped column
                table = table.set_column(index, table.field(index).name, column.cast(pa.float64()))
        return table

    live, mirrored = arm(stable), arm(shadow)
    # Each id once per arm (a retried log keeps its first row), then an inner join by id.
    live = live.group_by(PREDICTION_ID, use_threads=False).aggregate(
        [(c, "first") for c in (PREDICTION, SCORE, LATENCY_MS, LABEL)]
    )
    mirrored = mirrored.group_by(PREDICTION_ID, use_threads=False).aggregate(
        [(c, "first") for c in (PREDICTION, SCORE, LATENCY_MS)]
    )
    pairs = live.join(
        mirrored, PREDICTION_ID, join_type="inner", left_suffix="_stable", right_suffix="_shadow"
    )
    count = pairs.num_rows
    if count == 0:
        return ShadowReport(
            model, stable, shadow, start, end, 0, None, None, None, 0, None, None, None
        )
    live_pred = pairs.column(f"{PREDICTION}_first_stable").to_pylist()
    shadow_pred = pairs.column(f"{PREDICTION}_first_shadow").to_pylist()
    agreement = float(np.mean([a == b for a, b in zip(live_pred, shadow_pred, strict=True)]))
    scores = np.abs(
        _column(pairs, f"{SCORE}_first_shadow") - _column(pairs, f"{SCORE}_first_stable")
    )
    latency = _column(pairs, f"{LATENCY_MS}_first_shadow") - _column(
        pairs, f"{LATENCY_MS}_first_stable"
    )
    rows = [
        (truth, a, b)
        for truth, a, b in zip(
            pairs.column(f"{LABEL}_first").to_pylist(), live_pred, shadow_pred, strict=True
        )
        if truth is not None
    ]
    metric, stable_perf, shadow_perf = None, None, None
    if rows:
        truths = [r[0] for r in rows]
        if all(isinstance(t, float) for t in truths) and any(t != round(t) for t in truths):
            metric = "mae"
            stable_perf = float(np.mean([abs(a - t) for t, a, _ in rows]))
            shadow_perf = float(np.mean([abs(b - t) for t, _, b in rows]))
        else:  # classes (whole numbers, booleans or strings)
            metric = "accuracy"
            stable_perf = float(np.mean([a == t for t, a, _ in rows]))
            shadow_perf = float(np.mean([b == t for t, _, b in rows]))
    return ShadowReport(
        model,
        stable,
        shadow,
        start,
        end,
        count,
        agreement,
        _mean(scores),
        _mean(latency),
        len(rows),
        metric,
        stable_perf,
        shadow_perf,
    )
