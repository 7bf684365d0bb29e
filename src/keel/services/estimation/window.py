"""One window's estimate, read from the predictions Keel logged, with the realized value beside
it once the window's labels have arrived."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keel.domain.estimation import EstimationMethod
from keel.domain.telemetry import LABEL, PREDICTION, SCORE
from keel.errors import InvalidInput
from keel.services.estimation.reference import FittedEstimator, normalized_labels
from keel.stats import performance as performance_stats
from keel.stats.estimation.cbpe import CBPE_METRICS, check_metrics, estimate_cbpe
from keel.stats.estimation.dle import DLE_METRICS, estimate_dle
from keel.stats.estimation.estimate import EstimationResult


@dataclass(frozen=True)
class WindowEstimate:
    """The estimates of a window, and (for its labelled rows) the realized values."""

    result: EstimationResult
    labelled_rows: int
    realized: dict[str, float]

    def estimation_error(self, metric: str) -> float | None:
        """Estimate minus realized value, once the realized value is known."""
        real = self.realized.get(metric)
        found = self.result.estimates.get(metric)
        if real is None or found is None:
            return None
        return found.value - real


def metric_names(method: EstimationMethod) -> tuple[str, ...]:
    return CBPE_METRICS if method == EstimationMethod.CBPE else DLE_METRICS


def estimate_window(
    fitted: FittedEstimator, table: pa.Table, metrics: Sequence[str] = ()
) -> WindowEstimate:
    """Estimate over every prediction in ``table`` (columns: prediction, score, label, and the
    features DLE reads); realized metrics over the rows whose label has arrived."""
    wanted = check_metrics(
        tuple(metrics) or metric_names(fitted.method), metric_names(fitted.method)
    )
    if table.num_rows == 0:
        raise InvalidInput(
            "No predictions were logged in this window; estimation reads the predictions "
            "(and, for classifiers, their scores) Keel logged.",
            {"field": "window"},
        )
    predictions = normalized_labels(table.column(PREDICTION))
    if fitted.cbpe is not None:
        score_column = table.column(SCORE)
        if score_column.null_count == table.num_rows:
            raise InvalidInput(
                "No scores were logged in this window: CBPE reads the model's score (the "
                "positive class's probability); log 'score' with each prediction.",
                {"field": SCORE},
            )
        if score_column.null_count:
            keep = pc.is_valid(score_column)
            table, predictions = (
                table.filter(keep),
                predictions[keep.to_numpy(zero_copy_only=False)],
            )
        score = np.asarray(table.column(SCORE).to_numpy(zero_copy_only=False), dtype=np.float64)
        result = estimate_cbpe(fitted.cbpe, predictions, score, wanted)
    else:
        assert fitted.dle is not None
        model = fitted.dle
        names = [*model.encoding.numeric, *model.encoding.categorical]
        missing = [n for n in names if n not in table.column_names]
        if missing:
            raise InvalidInput(
                f"The window lacks the feature(s) {', '.join(missing)} that DLE's error model "
                "reads.",
                {"field": "features", "missing": missing},
            )
        columns = {n: table.column(n).to_numpy(zero_copy_only=False) for n in names}
        absolute, squared = model.predict(columns, predictions.astype(np.float64))
        outside = float(model.encoding.outside_support(columns).mean())
        result = estimate_dle(
            model.reference, absolute, squared, wanted, outside_support_share=outside
        )
    labelled = table.filter(pc.is_valid(table.column(LABEL)))
    return WindowEstimate(result, labelled.num_rows, _realized(fitted, labelled, wanted))


def _realized(
    fitted: FittedEstimator, labelled: pa.Table, wanted: Sequence[str]
) -> dict[str, float]:
    if labelled.num_rows == 0:
        return {}
    truth = normalized_labels(labelled.column(LABEL))
    predicted = normalized_labels(labelled.column(PREDICTION))
    if fitted.cbpe is not None:
        score = np.asarray(labelled.column(SCORE).to_numpy(zero_copy_only=False), dtype=np.float64)
        positive = fitted.cbpe.classes[-1]
        found = performance_stats.classification_metrics(truth, predicted, score, positive=positive)
    else:
        found = performance_stats.regression_metrics(
            truth.astype(np.float64), predicted.astype(np.float64)
        )
    return {m: float(found[m]) for m in wanted if m in found and math.isfinite(found[m])}
