"""The checks a monitor runs over one window, each turning telemetry into metric points.

Drift and data quality read merged window profiles (never raw rows), so their cost does not grow
with traffic; live performance and fairness read the labelled predictions of the window;
operations read latency and errors. The numbers come from `keel.stats`; this module only decides
what to compute, against which limit, and names the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from keel.domain.evaluation import TaskType
from keel.domain.explainability import Explanation
from keel.domain.monitoring import (
    Check,
    Direction,
    MetricPoint,
    Status,
    Thresholds,
    Window,
    performance_direction,
    verdict,
)
from keel.domain.signature import ColumnRole, ColumnType, Signature
from keel.domain.telemetry import LABEL, PREDICTION, SCORE, OperationsStats
from keel.errors import InvalidInput
from keel.stats import drift as drift_stats
from keel.stats import explanation_drift as explanation_stats
from keel.stats import fairness as fairness_stats
from keel.stats import performance as performance_stats
from keel.stats import quality as quality_stats
from keel.stats.profile import CategoricalProfile, DatasetProfile, NumericProfile

# How many earlier windows a row-count anomaly is judged against.
ROW_COUNT_HISTORY = 24
# Targets of these types make a classifier; float targets a regressor.
CLASSIFICATION_TARGETS = frozenset(
    {ColumnType.BOOLEAN, ColumnType.CATEGORICAL, ColumnType.STRING, ColumnType.INTEGER}
)
_METRIC_NAME_MAX = 64


class TelemetryReader(Protocol):
    """What the checks read from telemetry (`keel.services.telemetry.Telemetry` provides it)."""

    def reference_profile(self, model: str, version: int) -> DatasetProfile | None: ...

    def merged_profile(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> DatasetProfile | None: ...

    def hourly_row_counts(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> list[tuple[datetime, int]]: ...

    def rejected_rows(self, model: str, version: int, start: datetime, end: datetime) -> int: ...

    def labelled_predictions(
        self,
        model: str,
        version: int,
        start: datetime,
        end: datetime,
        columns: Sequence[str] = (),
        *,
        include_unlabelled: bool = False,
    ) -> pa.Table: ...

    def operations(
        self, model: str, version: int, start: datetime, end: datetime
    ) -> OperationsStats: ...

    def labelled_span(
        self, model: str, label_files: Sequence[str], since: datetime
    ) -> tuple[datetime, datetime] | None: ...


class ExplanationSource(Protocol):
    """What explanation drift reads (`keel.services.explanation_drift.WindowExplanations`)."""

    def evidence(self, model: str, version: int) -> Explanation | None: ...

    def explain(
        self, model: str, version: int, data: Any, *, task: TaskType, target: str
    ) -> Explanation: ...


@dataclass(frozen=True)
class CheckContext:
    """One monitor's view of one window of one version."""

    model: str
    version: int
    reference_version: int
    signature: Signature
    start: datetime
    end: datetime
    window: Window
    thresholds: Thresholds
    telemetry: TelemetryReader
    monitor_id: int | None = None
    explanations: ExplanationSource | None = None

    def point(
        self,
        check: Check,
        column: str | None,
        metric: str,
        value: float | None,
        threshold: float | None,
        status: Status,
    ) -> MetricPoint:
        clean = None if value is None or not math.isfinite(value) else float(value)
        return MetricPoint(
            model=self.model,
            version=self.version,
            window_start=self.start,
            window_end=self.end,
            check=check,
            column=column,
            metric=metric[:_METRIC_NAME_MAX],
            value=clean,
            threshold=threshold,
            status=Status.NO_DATA if clean is None else status,
            monitor_id=self.monitor_id,
        )

    def limited(
        self,
        check: Check,
        column: str | None,
        metric: str,
        value: float | None,
        limit: float | None,
        direction: Direction,
    ) -> MetricPoint:
        """A point whose status is `verdict` of ``value`` against ``limit``."""
        return self.point(check, column, metric, value, limit, verdict(value, limit, direction))


def run_check(check: Check, ctx: CheckContext) -> list[MetricPoint]:
    """The metric points of ``check`` over the context's window."""
    runners: dict[Check, Callable[[CheckContext], list[MetricPoint]]] = {
        Check.DRIFT: drift,
        Check.QUALITY: quality,
        Check.PERFORMANCE: performance,
        Check.FAIRNESS: fairness,
        Check.OPERATIONS: operations,
        Check.EXPLANATION_DRIFT: explanation_drift,
    }
    if check not in runners:
        # Checks that need more than telemetry (estimated_performance) are run by the service
        # that owns them; see `Monitoring.add_check`.
        raise InvalidInput(f"The {check} check is not available on this server.")
    return runners[check](ctx)


# -- drift -------------------------------------------------------------------------------------


def drift_config(thresholds: Thresholds) -> drift_stats.DriftConfig:
    """The monitor's per-column overrides on top of the documented defaults."""
    return drift_stats.DriftConfig(
        columns={
            column: drift_stats.ColumnRule(method=override.method, threshold=override.threshold)
            for column, override in thresholds.drift.items()
        },
        drift_share=thresholds.drift_share,
    )


def _profiles(ctx: CheckContext) -> tuple[DatasetProfile | None, DatasetProfile | None]:
    reference = ctx.telemetry.reference_profile(ctx.model, ctx.reference_version)
    if reference is None:
        return None, None
    current = ctx.telemetry.merged_profile(ctx.model, ctx.version, ctx.start, ctx.end)
    return reference, current


def drift(ctx: CheckContext) -> list[MetricPoint]:
    """Per column: the configured test's value, threshold and verdict; then the dataset's share
    of drifted columns (alert at ``thresholds.drift_share``, warning below it if any drifted)."""
    share_limit = ctx.thresholds.drift_share
    reference, current = _profiles(ctx)
    if reference is None or current is None or current.rows == 0:
        names = list(reference.columns) if reference is not None else []
        return [
            *(ctx.point(Check.DRIFT, n, "drift", None, None, Status.NO_DATA) for n in names),
            ctx.point(Check.DRIFT, None, "drift_share", None, share_limit, Status.NO_DATA),
        ]
    config = drift_config(ctx.thresholds)
    result = drift_stats.dataset_drift(reference, current, config)
    points: list[MetricPoint] = []
    for c in result.columns:
        if c.tail_drifted and not c.drifted:
            # Only the tail moved (values beyond the reference's range): the point names the
            # test that found it, so its value and threshold explain the alert.
            tail_limit = config.tail_share
            points.append(
                ctx.point(
                    Check.DRIFT, c.column, "tail_share", c.tail_share, tail_limit, Status.ALERT
                )
            )
            continue
        if c.new_categories_drifted and not c.drifted:
            # Values from categories the reference never saw (a high-cardinality column): the
            # point names that test, so its value and threshold explain the alert.
            points.append(
                ctx.point(
                    Check.DRIFT,
                    c.column,
                    "new_categories",
                    c.new_category_share,
                    config.new_category_share,
                    Status.ALERT,
                )
            )
            continue
        if c.drifted and c.value < c.threshold and not math.isnan(c.ks_statistic):
            # The distance stayed under its threshold but a tenth of the values moved (a
            # heavy-tailed column): the point names the KS statistic that found it.
            ks_limit = config.ks_statistic
            points.append(
                ctx.point(
                    Check.DRIFT, c.column, "ks_statistic", c.ks_statistic, ks_limit, Status.ALERT
                )
            )
            continue
        status = Status.ALERT if c.drifted else Status.OK
        points.append(ctx.point(Check.DRIFT, c.column, c.method, c.value, c.threshold, status))
    status = Status.WARNING if result.drifted_columns else Status.OK
    if result.drifted:
        status = Status.ALERT
    points.append(ctx.point(Check.DRIFT, None, "drift_share", result.share, share_limit, status))
    return points


# -- data quality ------------------------------------------------------------------------------


def quality(ctx: CheckContext) -> list[MetricPoint]:
    """Missing-rate change and out-of-range or unseen values per column; rows rejected at
    ingest; and the window's row count against the recent windows."""
    limits = ctx.thresholds.quality
    points: list[MetricPoint] = []
    reference, current = _profiles(ctx)
    if reference is not None and current is not None and current.rows > 0:
        for name, ref in reference.columns.items():
            cur = current.columns.get(name)
            if cur is None:
                continue
            points.append(
                ctx.limited(
                    Check.QUALITY,
                    name,
                    "missing_rate_change",
                    quality_stats.missing_rate_change(ref, cur),
                    limits.missing_rate_change,
                    Direction.MAX,
                )
            )
            if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
                points.append(
                    ctx.limited(
                        Check.QUALITY,
                        name,
                        "out_of_range_share",
                        quality_stats.out_of_range_share(ref, cur),
                        limits.out_of_range_share,
                        Direction.MAX,
                    )
                )
            elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
                points.append(
                    ctx.limited(
                        Check.QUALITY,
                        name,
                        "unseen_category_share",
                        quality_stats.unseen_categories(ref, cur),
                        limits.unseen_category_share,
                        Direction.MAX,
                    )
                )
    rejected = ctx.telemetry.rejected_rows(ctx.model, ctx.version, ctx.start, ctx.end)
    points.append(
        ctx.limited(
            Check.QUALITY, None, "rejected_rows", rejected, limits.rejected_rows, Direction.MAX
        )
    )
    points.extend(_row_count(ctx))
    return points


def window_row_counts(
    hourly: Sequence[tuple[datetime, int]], window: Window, start: datetime, end: datetime
) -> tuple[int, list[int]]:
    """Sum hourly counts into the window ``[start, end)`` and the windows before it.

    Returns the current window's rows and the earlier windows' rows, oldest first (windows
    with no rows at all count as 0 from the first window that had any).
    """
    current = sum(n for hour, n in hourly if start <= hour < end)
    earlier: dict[int, int] = {}
    for hour, n in hourly:
        if hour < start:
            minutes_before = (start - hour) // timedelta(minutes=1)
            back = (minutes_before - 1) // window.minutes  # 0 = the window just before
            earlier[back] = earlier.get(back, 0) + n
    if not earlier:
        return current, []
    oldest = max(earlier)
    return current, [earlier.get(i, 0) for i in range(oldest, -1, -1)]


def _row_count(ctx: CheckContext) -> list[MetricPoint]:
    limit = ctx.thresholds.quality.row_count_zscore
    history_start = ctx.start - ROW_COUNT_HISTORY * ctx.window.size
    hourly = ctx.telemetry.hourly_row_counts(ctx.model, ctx.version, history_start, ctx.end)
    current, recent = window_row_counts(hourly, ctx.window, ctx.start, ctx.end)
    rows = ctx.point(Check.QUALITY, None, "rows", current, None, Status.OK)
    anomaly = quality_stats.row_count_anomaly(recent, current, z_threshold=limit)
    status = (
        Status.ALERT if anomaly.anomalous else verdict(abs(anomaly.zscore), limit, Direction.MAX)
    )
    # Too little history gives a NaN z-score, recorded as no_data.
    return [rows, ctx.point(Check.QUALITY, None, "row_count_zscore", anomaly.zscore, limit, status)]


# -- live performance and fairness ------------------------------------------------------------


def _target(signature: Signature) -> ColumnType | None:
    targets = signature.with_role(ColumnRole.TARGET)
    return targets[0].dtype if targets else None


def _labels(values: pa.ChunkedArray | pa.Array) -> npt.NDArray[Any]:
    """Labels or predictions as NumPy: booleans as 0/1, whole floats as ints."""
    array = np.asarray(values.to_numpy(zero_copy_only=False))
    if array.dtype == np.bool_:
        return array.astype(np.int64)
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        return array.astype(np.int64)
    if array.dtype.kind == "O":
        return array.astype(str)
    return array


def _labelled(table: pa.Table) -> pa.Table:
    """The rows whose label has arrived."""
    mask = pa.compute.is_valid(table.column(LABEL))
    return table.filter(mask)


def performance(ctx: CheckContext) -> list[MetricPoint]:
    """Classification (accuracy, precision, recall, F1, ROC AUC, log loss, calibration error) or
    regression (MAE, RMSE, MAPE, R²) metrics over the window's labelled predictions, chosen by
    the signature's target type (float: regression)."""
    table = _labelled(
        ctx.telemetry.labelled_predictions(ctx.model, ctx.version, ctx.start, ctx.end)
    )
    rows = ctx.point(Check.PERFORMANCE, None, "labelled_rows", table.num_rows, None, Status.OK)
    if table.num_rows == 0:
        return [replace(rows, status=Status.NO_DATA)]
    y_true, y_pred = _labels(table.column(LABEL)), _labels(table.column(PREDICTION))
    target = _target(ctx.signature)
    regression = (
        target not in CLASSIFICATION_TARGETS if target is not None else y_true.dtype.kind == "f"
    )
    if regression:
        metrics = performance_stats.regression_metrics(
            y_true.astype(np.float64), y_pred.astype(np.float64)
        )
    else:
        score_column = table.column(SCORE)
        score = (
            np.asarray(score_column.to_numpy(zero_copy_only=False), dtype=np.float64)
            if score_column.null_count == 0
            else None
        )
        metrics = performance_stats.classification_metrics(y_true, y_pred, score)
    limits = ctx.thresholds.performance
    return [
        rows,
        *(
            ctx.limited(
                Check.PERFORMANCE,
                None,
                name,
                value,
                limits.get(name),
                performance_direction(name),
            )
            for name, value in metrics.items()
            if name != "count"  # already recorded as labelled_rows
        ),
    ]


def fairness(ctx: CheckContext) -> list[MetricPoint]:
    """Per protected attribute: selection rate (and TPR/FPR once labelled) per group, disparate
    impact ratio, demographic parity and equalized odds differences."""
    protected = [c.name for c in ctx.signature.with_role(ColumnRole.PROTECTED_ATTRIBUTE)]
    if not protected:
        return []
    limits = ctx.thresholds.fairness
    # Selection rates need no labels: they are judged on every prediction of the window, so
    # fairness reports before ground truth arrives. TPR, FPR and equalized odds use the
    # labelled rows only.
    table = ctx.telemetry.labelled_predictions(
        ctx.model, ctx.version, ctx.start, ctx.end, columns=protected, include_unlabelled=True
    )
    points: list[MetricPoint] = []
    for attribute in protected:
        if table.num_rows == 0:
            points.append(
                ctx.point(
                    Check.FAIRNESS,
                    attribute,
                    "disparate_impact",
                    None,
                    limits.min_disparate_impact,
                    Status.NO_DATA,
                )
            )
            continue
        groups = np.asarray(table.column(attribute).to_numpy(zero_copy_only=False), dtype=object)
        y_pred = _labels(table.column(PREDICTION))
        result = fairness_stats.group_fairness(
            y_pred, groups, None, min_group_size=limits.min_group_size
        )
        labelled = _labelled(table)
        with_labels = None
        if labelled.num_rows:
            with_labels = fairness_stats.group_fairness(
                _labels(labelled.column(PREDICTION)),
                np.asarray(labelled.column(attribute).to_numpy(zero_copy_only=False), dtype=object),
                _labels(labelled.column(LABEL)),
                min_group_size=limits.min_group_size,
            )
        rates: list[tuple[fairness_stats.GroupRates, tuple[str, ...]]] = [
            (g, ("selection_rate",)) for g in result.groups
        ]
        if with_labels is not None:
            rates += [(g, ("tpr", "fpr")) for g in with_labels.groups]
        for group, metrics in rates:
            for metric in metrics:
                value = float(getattr(group, metric))
                if math.isfinite(value):
                    name = f"{metric}[{group.group}]"
                    points.append(
                        ctx.point(Check.FAIRNESS, attribute, name, value, None, Status.OK)
                    )
        points.append(
            ctx.limited(
                Check.FAIRNESS,
                attribute,
                "disparate_impact",
                result.disparate_impact_ratio,
                limits.min_disparate_impact,
                Direction.MIN,
            )
        )
        points.append(
            ctx.limited(
                Check.FAIRNESS,
                attribute,
                "demographic_parity_difference",
                result.demographic_parity_difference,
                limits.max_demographic_parity_difference,
                Direction.MAX,
            )
        )
        if with_labels is not None and with_labels.equalized_odds_difference is not None:
            points.append(
                ctx.limited(
                    Check.FAIRNESS,
                    attribute,
                    "equalized_odds_difference",
                    with_labels.equalized_odds_difference,
                    limits.max_equalized_odds_difference,
                    Direction.MAX,
                )
            )
    return points


# -- operations --------------------------------------------------------------------------------


def operations(ctx: CheckContext) -> list[MetricPoint]:
    """Latency p50/p95/p99, error rate and throughput of the window."""
    limits = ctx.thresholds.operations
    stats = ctx.telemetry.operations(ctx.model, ctx.version, ctx.start, ctx.end)
    seen = stats.rows > 0
    figures: list[tuple[str, float | None, float | None, Direction]] = [
        ("latency_p50_ms", stats.latency_p50_ms, limits.latency_p50_ms, Direction.MAX),
        ("latency_p95_ms", stats.latency_p95_ms, limits.latency_p95_ms, Direction.MAX),
        ("latency_p99_ms", stats.latency_p99_ms, limits.latency_p99_ms, Direction.MAX),
        ("error_rate", stats.error_rate, limits.error_rate, Direction.MAX),
        ("throughput_per_s", stats.throughput_per_s, limits.min_throughput_per_s, Direction.MIN),
    ]
    return [
        ctx.point(Check.OPERATIONS, None, "rows", stats.rows, None, Status.OK),
        *(
            ctx.limited(Check.OPERATIONS, None, name, value if seen else None, limit, direction)
            for name, value, limit, direction in figures
        ),
    ]


# -- explanation drift -------------------------------------------------------------------------

# Fewer labelled rows than this make a permutation-importance ranking mostly noise.
MIN_EXPLAIN_ROWS = 50
# The window's first rows explained at most: the sandboxed run stays within its budget.
MAX_EXPLAIN_ROWS = 5000
RANK_CORRELATION = "importance_rank_correlation"


def explanation_drift(ctx: CheckContext) -> list[MetricPoint]:
    """The window's permutation-importance ranking (the model run in the sandbox on the window's
    labelled rows) against the ranking gate 1 recorded for the version: Spearman's rank
    correlation and the top-k overlap, each against its minimum; and each feature's importance.
    No data when the version has no explainability evidence or the window too few labels."""
    limits = ctx.thresholds.explanation
    nothing = ctx.point(
        Check.EXPLANATION_DRIFT,
        None,
        RANK_CORRELATION,
        None,
        limits.min_rank_correlation,
        Status.NO_DATA,
    )
    baseline = (
        None if ctx.explanations is None else ctx.explanations.evidence(ctx.model, ctx.version)
    )
    targets = ctx.signature.with_role(ColumnRole.TARGET)
    if ctx.explanations is None or baseline is None or not baseline.computed or not targets:
        return [nothing]
    known = {c.name for c in ctx.signature.columns}
    features = [f for f in baseline.ranking if f in known]
    table = _labelled(
        ctx.telemetry.labelled_predictions(
            ctx.model, ctx.version, ctx.start, ctx.end, columns=features
        )
    )
    rows = ctx.point(
        Check.EXPLANATION_DRIFT, None, "labelled_rows", table.num_rows, None, Status.OK
    )
    if table.num_rows < MIN_EXPLAIN_ROWS:
        return [replace(rows, status=Status.NO_DATA), nothing]
    table = table.slice(0, MAX_EXPLAIN_ROWS)
    target = targets[0]
    data = table.select(features).to_pandas()
    data[target.name] = _labels(table.column(LABEL))
    regression = target.dtype not in CLASSIFICATION_TARGETS
    current = ctx.explanations.explain(
        ctx.model,
        ctx.version,
        data,
        task=TaskType.REGRESSION if regression else TaskType.CLASSIFICATION,
        target=target.name,
    )
    if not current.computed:
        return [rows, nothing]
    before = {f.feature: f.mean for f in baseline.features}
    now = {f.feature: f.mean for f in current.features}
    k = min(limits.top_k, len(baseline.ranking))
    return [
        rows,
        ctx.limited(
            Check.EXPLANATION_DRIFT,
            None,
            RANK_CORRELATION,
            explanation_stats.rank_correlation(before, now),
            limits.min_rank_correlation,
            Direction.MIN,
        ),
        ctx.limited(
            Check.EXPLANATION_DRIFT,
            None,
            f"top_{k}_overlap",
            explanation_stats.top_k_overlap(baseline.ranking, current.ranking, k),
            limits.min_top_k_overlap,
            Direction.MIN,
        ),
        *(
            ctx.point(Check.EXPLANATION_DRIFT, f.feature, "importance", f.mean, None, Status.OK)
            for f in current.features
        ),
    ]
