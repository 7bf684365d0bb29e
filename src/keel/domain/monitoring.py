"""Monitors and what they record: which checks run over which windows, with which thresholds, and
the metric points their runs leave behind.

A monitor belongs to a model (and optionally one version). Every window it evaluates yields
metric points: one number per check, column and metric, compared with its threshold into a
status. Windows are aligned to the UTC epoch in multiples of their size, so two runs over "the
last complete hour" always agree on where that hour starts and ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from keel.errors import InvalidInput

MINUTES_PER_HOUR = 60
MINUTES_PER_DAY = 24 * MINUTES_PER_HOUR
MAX_WINDOW_MINUTES = 31 * MINUTES_PER_DAY
MAX_DELAY_MINUTES = MINUTES_PER_DAY
# How many missed windows one scheduled run catches up on; older gaps stay gaps (a manual run
# with an explicit time fills them).
MAX_BACKLOG_WINDOWS = 48
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_L = TypeVar("_L", "QualityLimits", "FairnessLimits", "OperationsLimits", "ExplanationLimits")


class Check(StrEnum):
    DRIFT = "drift"
    QUALITY = "quality"
    PERFORMANCE = "performance"
    FAIRNESS = "fairness"
    OPERATIONS = "operations"
    # Runs the model in the sandbox per window: only on monitors that name it (DEFAULT_CHECKS).
    EXPLANATION_DRIFT = "explanation_drift"
    # Performance estimated before labels arrive (CBPE, DLE); see keel.services.estimation.
    ESTIMATED_PERFORMANCE = "estimated_performance"


class Status(StrEnum):
    """A metric point's verdict. ``warning`` means within `WARNING_MARGIN` of its threshold."""

    OK = "ok"
    WARNING = "warning"
    ALERT = "alert"
    NO_DATA = "no_data"


_SEVERITY = {Status.OK: 0, Status.NO_DATA: 1, Status.WARNING: 2, Status.ALERT: 3}
# A value this close to its limit (as a share of the limit) is a warning: it has not crossed yet.
WARNING_MARGIN = 0.1


def worst(statuses: Sequence[Status]) -> Status:
    """The most severe of ``statuses`` (alert > warning > no_data > ok); ok when empty.

    >>> worst([Status.OK, Status.WARNING, Status.NO_DATA])
    <Status.WARNING: 'warning'>
    """
    return max(statuses, key=_SEVERITY.__getitem__, default=Status.OK)


class Direction(StrEnum):
    """Whether a metric's limit is a ceiling (``max``: error rate) or a floor (``min``: AUC)."""

    MAX = "max"
    MIN = "min"


def verdict(value: float | None, limit: float | None, direction: Direction) -> Status:
    """Compare ``value`` with ``limit``: alert past it, warning within 10% of it, ok otherwise.

    >>> verdict(0.02, 0.01, Direction.MAX), verdict(0.0095, 0.01, Direction.MAX)
    (<Status.ALERT: 'alert'>, <Status.WARNING: 'warning'>)
    >>> verdict(0.95, 0.8, Direction.MIN), verdict(None, 0.8, Direction.MIN)
    (<Status.OK: 'ok'>, <Status.NO_DATA: 'no_data'>)
    """
    if value is None or math.isnan(value):
        return Status.NO_DATA
    if limit is None:
        return Status.OK
    margin = abs(limit) * WARNING_MARGIN
    if direction == Direction.MAX:
        if value > limit:
            return Status.ALERT
        return Status.WARNING if value > limit - margin else Status.OK
    if value < limit:
        return Status.ALERT
    return Status.WARNING if value < limit + margin else Status.OK


# -- windows and schedule ----------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A window size in minutes: hourly (60), daily (1440), or a custom multiple of an hour.

    Sizes are whole hours because window profiles are kept per hour: any multiple merges
    exactly, a 90-minute window could not.
    """

    minutes: int = MINUTES_PER_HOUR

    def __post_init__(self) -> None:
        if not isinstance(self.minutes, int) or isinstance(self.minutes, bool):
            raise InvalidInput(
                "The 'window' field must be 'hourly', 'daily' or a whole number of minutes.",
                {"field": "window"},
            )
        if not MINUTES_PER_HOUR <= self.minutes <= MAX_WINDOW_MINUTES or self.minutes % 60:
            raise InvalidInput(
                f"The 'window' field must be a multiple of 60 minutes between 60 and "
                f"{MAX_WINDOW_MINUTES} (profiles are kept per hour). Got {self.minutes} instead; "
                "use 'hourly', 'daily' or e.g. 360 for six hours.",
                {"field": "window", "value": self.minutes},
            )

    @classmethod
    def parse(cls, value: str | int) -> Window:
        """``"hourly"``, ``"daily"`` or a number of minutes (also as text).

        >>> Window.parse("daily").minutes, Window.parse("360").minutes
        (1440, 360)
        """
        if isinstance(value, str):
            named = {"hourly": MINUTES_PER_HOUR, "daily": MINUTES_PER_DAY}
            key = value.strip().lower()
            if key in named:
                return cls(named[key])
            try:
                return cls(int(key))
            except ValueError:
                raise InvalidInput(
                    f"The 'window' field must be 'hourly', 'daily' or a number of minutes. "
                    f"Got {value!r} instead.",
                    {"field": "window"},
                ) from None
        return cls(value)

    @property
    def name(self) -> str:
        """``hourly``, ``daily`` or ``<n>m``."""
        return {MINUTES_PER_HOUR: "hourly", MINUTES_PER_DAY: "daily"}.get(
            self.minutes, f"{self.minutes}m"
        )

    @property
    def size(self) -> timedelta:
        return timedelta(minutes=self.minutes)

    def floor(self, moment: datetime) -> datetime:
        """The window boundary at or before ``moment`` (boundaries are multiples of the size
        since the UTC epoch).

        >>> Window(360).floor(datetime(2026, 3, 1, 13, 59, tzinfo=UTC)).hour
        12
        """
        elapsed = moment.astimezone(UTC) - _EPOCH
        return _EPOCH + (elapsed // self.size) * self.size

    def last_complete(self, now: datetime) -> tuple[datetime, datetime]:
        """The newest window that has ended by ``now``, as ``(start, end)``."""
        end = self.floor(now)
        return end - self.size, end


@dataclass(frozen=True)
class Schedule:
    """When the worker runs a monitor: ``delay_minutes`` after each window ends (late rows have
    that long to land), unless ``enabled`` is False (then only manual runs)."""

    enabled: bool = True
    delay_minutes: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.delay_minutes <= MAX_DELAY_MINUTES:
            raise InvalidInput(
                f"The 'schedule.delay_minutes' field must be between 0 and {MAX_DELAY_MINUTES}. "
                f"Got {self.delay_minutes} instead.",
                {"field": "schedule.delay_minutes"},
            )


def due_windows(
    window: Window,
    schedule: Schedule,
    last_window_end: datetime | None,
    now: datetime,
    *,
    max_backlog: int = MAX_BACKLOG_WINDOWS,
) -> list[tuple[datetime, datetime]]:
    """The windows a scheduled run should evaluate at ``now``, oldest first.

    A window is due once ``schedule.delay_minutes`` have passed since it ended, and only if it
    ends after ``last_window_end`` (the newest window already evaluated). A monitor never run
    before starts with the newest due window; one that fell behind catches up on at most
    ``max_backlog`` windows.

    >>> hourly, at = Window(60), datetime(2026, 3, 1, 12, 4, tzinfo=UTC)
    >>> due_windows(hourly, Schedule(delay_minutes=5), None, at)  # 11:00-12:00 not yet settled
    [(datetime.datetime(2026, 3, 1, 10, 0, tzinfo=datetime.timezone.utc), \
datetime.datetime(2026, 3, 1, 11, 0, tzinfo=datetime.timezone.utc))]
    """
    if not schedule.enabled:
        return []
    settled = window.floor(now - timedelta(minutes=schedule.delay_minutes))
    if last_window_end is None:
        return [(settled - window.size, settled)]
    ends: list[datetime] = []
    end = settled
    while end > last_window_end and len(ends) < max_backlog:
        ends.append(end)
        end -= window.size
    return [(e - window.size, e) for e in reversed(ends)]


def next_due(
    window: Window, schedule: Schedule, last_window_end: datetime | None, now: datetime
) -> datetime | None:
    """When the monitor next has a window to evaluate: ``now`` if one is due already, else
    the moment the next window settles; None when the schedule is off.

    >>> hourly, at = Window(60), datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    >>> next_due(hourly, Schedule(), datetime(2026, 3, 1, 12, tzinfo=UTC), at).isoformat()
    '2026-03-01T13:05:00+00:00'
    """
    if not schedule.enabled:
        return None
    if due_windows(window, schedule, last_window_end, now):
        return now
    # Nothing due: the next window is the one after the current one ends.
    next_end = window.floor(now - timedelta(minutes=schedule.delay_minutes)) + window.size
    return next_end + timedelta(minutes=schedule.delay_minutes)


# -- thresholds --------------------------------------------------------------------------------

DRIFT_METHODS = ("ks", "wasserstein", "psi", "jensen_shannon", "chi_square", "share_difference")
NUMERIC_ONLY_METHODS = frozenset({"ks", "wasserstein"})
CATEGORICAL_ONLY_METHODS = frozenset({"chi_square", "share_difference"})
# Higher is better for these performance metrics (a limit is a minimum); lower for the rest.
HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})
PERFORMANCE_METRICS = frozenset(
    {*HIGHER_IS_BETTER, "log_loss", "calibration_error", "mae", "rmse", "mape"}
)


def performance_direction(metric: str) -> Direction:
    return Direction.MIN if metric in HIGHER_IS_BETTER else Direction.MAX


@dataclass(frozen=True)
class DriftOverride:
    """A column's drift test and threshold, replacing the defaults (docs/monitoring-defaults.md).

    ``method`` is one of `DRIFT_METHODS`; for ``ks`` and ``chi_square`` the threshold is a
    p-value (drift at or below it), for the others a distance (drift at or above it).
    """

    method: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class QualityLimits:
    """Ceilings for the data quality check, per window."""

    missing_rate_change: float = 0.1  # absolute change of a column's share of missing values
    out_of_range_share: float = 0.05  # share of numeric values outside the reference min..max
    unseen_category_share: float = 0.05  # share of categorical values the reference never saw
    rejected_rows: float = 0  # rows refused at ingest (wrong type, unknown column)
    row_count_zscore: float = 3.0  # |z| of the window's rows against the recent windows


@dataclass(frozen=True)
class FairnessLimits:
    min_disparate_impact: float = 0.8  # the four-fifths rule
    max_demographic_parity_difference: float = 0.1
    max_equalized_odds_difference: float = 0.1
    min_group_size: int = 30


@dataclass(frozen=True)
class OperationsLimits:
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    error_rate: float = 0.01
    min_throughput_per_s: float | None = None


@dataclass(frozen=True)
class ExplanationLimits:
    """Explanation drift: the window's feature-importance ranking against gate 1's evidence."""

    min_rank_correlation: float = 0.5  # Spearman's rho of the two importance rankings
    top_k: int = 3  # the features compared by overlap (capped at the number of features)
    min_top_k_overlap: float = 0.5  # share of gate 1's top k still in the window's top k


@dataclass(frozen=True)
class Thresholds:
    """Every limit a monitor applies; left out, the documented defaults hold."""

    drift: Mapping[str, DriftOverride] = field(default_factory=dict)  # column -> override
    drift_share: float = 0.5  # dataset drift: alert when this share of columns drifted
    quality: QualityLimits = QualityLimits()
    performance: Mapping[str, float] = field(default_factory=dict)  # metric -> min or max
    fairness: FairnessLimits = FairnessLimits()
    operations: OperationsLimits = OperationsLimits()
    explanation: ExplanationLimits = ExplanationLimits()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (stored with the monitor, sent on the wire)."""
        return {
            "drift": {
                column: {"method": o.method, "threshold": o.threshold}
                for column, o in sorted(self.drift.items())
            },
            "drift_share": self.drift_share,
            "quality": vars(self.quality).copy(),
            "performance": dict(sorted(self.performance.items())),
            "fairness": vars(self.fairness).copy(),
            "operations": vars(self.operations).copy(),
            "explanation": vars(self.explanation).copy(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Thresholds:
        """Build and validate from JSON; every error names the offending field."""
        data = dict(data or {})
        _only(data, {f for f in cls.__dataclass_fields__}, "thresholds")
        drift_raw = _mapping(data.get("drift", {}), "thresholds.drift")
        drift: dict[str, DriftOverride] = {}
        for column, raw in drift_raw.items():
            where = f"thresholds.drift.{column}"
            spec = _mapping(raw, where)
            _only(spec, {"method", "threshold"}, where)
            drift[str(column)] = DriftOverride(
                method=_optional_str(spec.get("method"), f"{where}.method"),
                threshold=_optional_number(spec.get("threshold"), f"{where}.threshold"),
            )
        performance = {
            str(k): _number(v, f"thresholds.performance.{k}")
            for k, v in _mapping(data.get("performance", {}), "thresholds.performance").items()
        }
        built = cls(
            drift=drift,
            drift_share=_number(data.get("drift_share", 0.5), "thresholds.drift_share"),
            quality=_limits(QualityLimits, data.get("quality"), "thresholds.quality"),
            performance=performance,
            fairness=_limits(FairnessLimits, data.get("fairness"), "thresholds.fairness"),
            operations=_limits(OperationsLimits, data.get("operations"), "thresholds.operations"),
            explanation=_limits(
                ExplanationLimits, data.get("explanation"), "thresholds.explanation"
            ),
        )
        built.validate()
        return built

    def validate(self) -> None:
        for column, override in self.drift.items():
            where = f"thresholds.drift.{column}"
            if override.method is not None and override.method not in DRIFT_METHODS:
                raise InvalidInput(
                    f"The '{where}.method' field must be one of {', '.join(DRIFT_METHODS)}. "
                    f"Got {override.method!r} instead.",
                    {"field": f"{where}.method"},
                )
            if override.threshold is not None and not override.threshold > 0:
                raise InvalidInput(
                    f"The '{where}.threshold' field must be > 0.", {"field": f"{where}.threshold"}
                )
        if not 0 < self.drift_share <= 1:
            raise InvalidInput(
                "The 'thresholds.drift_share' field must be in (0, 1]: the share of columns "
                f"that must drift before the dataset counts as drifted. Got {self.drift_share}.",
                {"field": "thresholds.drift_share"},
            )
        for metric in self.performance:
            if metric not in PERFORMANCE_METRICS:
                raise InvalidInput(
                    f"The 'thresholds.performance' field names {metric!r}, which is not a metric "
                    f"Keel computes. Use one of {', '.join(sorted(PERFORMANCE_METRICS))}.",
                    {"field": f"thresholds.performance.{metric}"},
                )
        for section, limits in (
            ("quality", self.quality),
            ("fairness", self.fairness),
            ("operations", self.operations),
            ("explanation", self.explanation),
        ):
            for name, value in vars(limits).items():
                if value is not None and value < 0:
                    raise InvalidInput(
                        f"The 'thresholds.{section}.{name}' field must be >= 0. Got {value}.",
                        {"field": f"thresholds.{section}.{name}"},
                    )


def check_drift_columns(thresholds: Thresholds, kinds: Mapping[str, str]) -> None:
    """Every drift override names a monitored column (``kinds``: column -> "numeric" or
    "categorical") and a method that applies to its kind.

    >>> t = Thresholds(drift={"plan": DriftOverride(method="ks")})
    >>> check_drift_columns(t, {"plan": "categorical"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keel.errors.InvalidInput: The 'thresholds.drift.plan.method' field is 'ks', ...
    """
    for column, override in thresholds.drift.items():
        where = f"thresholds.drift.{column}"
        if column not in kinds:
            raise InvalidInput(
                f"The '{where}' field names column {column!r}, which the version's signature "
                f"does not profile. Profiled columns: {', '.join(sorted(kinds)) or 'none'}.",
                {"field": where},
            )
        wrong = NUMERIC_ONLY_METHODS if kinds[column] == "categorical" else CATEGORICAL_ONLY_METHODS
        if override.method in wrong:
            raise InvalidInput(
                f"The '{where}.method' field is {override.method!r}, which does not apply to "
                f"the {kinds[column]} column {column!r}. Use one of "
                f"{', '.join(m for m in DRIFT_METHODS if m not in wrong)}.",
                {"field": f"{where}.method"},
            )


def _only(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidInput(
            f"The '{where}' field has no setting {unknown[0]!r}. "
            f"Known settings: {', '.join(sorted(allowed))}.",
            {"field": f"{where}.{unknown[0]}"},
        )


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"The '{where}' field must be an object.", {"field": where})
    return dict(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(
            f"The '{where}' field must be a finite number. Got {value!r} instead.",
            {"field": where},
        )
    return float(value)


def _optional_number(value: Any, where: str) -> float | None:
    return None if value is None else _number(value, where)


def _optional_str(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"The '{where}' field must be text.", {"field": where})
    return value


def _limits(kind: type[_L], raw: Any, where: str) -> _L:
    if raw is None:
        return kind()
    data = _mapping(raw, where)
    fields = kind.__dataclass_fields__
    _only(data, set(fields), where)
    values: dict[str, Any] = {}
    for name, value in data.items():
        if value is None and fields[name].default is None:
            values[name] = None
        elif name in ("min_group_size", "top_k"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(
                    f"The '{where}.{name}' field must be a whole number >= 1.",
                    {"field": f"{where}.{name}"},
                )
            values[name] = value
        else:
            values[name] = _number(value, f"{where}.{name}")
    return kind(**values)


# -- monitors ----------------------------------------------------------------------------------

ALL_CHECKS: tuple[Check, ...] = tuple(Check)
# What a monitor runs when it names no checks. Asked for by name only: explanation_drift (it runs
# the model in the sandbox per window) and estimated_performance (it needs an estimator fitted on
# a reference that carries predictions and labels).
DEFAULT_CHECKS: tuple[Check, ...] = tuple(
    c for c in Check if c not in (Check.EXPLANATION_DRIFT, Check.ESTIMATED_PERFORMANCE)
)


@dataclass(frozen=True)
class Monitor:
    """What to watch on a model, how often, and where the limits are.

    ``version`` None follows the model's live version: the one its ``production`` alias points
    to, else its newest. ``reference_version`` None compares with the monitored version's own
    reference profile; a number compares with that version's (e.g. a retrained model's traffic
    against the training data of the one it replaced).
    """

    model: str
    name: str = "default"
    version: int | None = None
    checks: tuple[Check, ...] = DEFAULT_CHECKS
    window: Window = Window()
    reference_version: int | None = None
    thresholds: Thresholds = Thresholds()
    schedule: Schedule = Schedule()
    id: int | None = None
    last_window_end: datetime | None = None
    next_due_at: datetime | None = None
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.checks:
            raise InvalidInput(
                "The 'checks' field must name at least one of "
                f"{', '.join(Check)}; a monitor with no checks records nothing.",
                {"field": "checks"},
            )
        if len(set(self.checks)) != len(self.checks):
            raise InvalidInput("The 'checks' field names a check twice.", {"field": "checks"})
        for name, value in (
            ("version", self.version),
            ("reference_version", self.reference_version),
        ):
            if value is not None and value < 1:
                raise InvalidInput(
                    f"The '{name}' field must be a version number >= 1, or left out.",
                    {"field": name},
                )

    def scheduled(self, now: datetime) -> Monitor:
        """This monitor with ``next_due_at`` computed for ``now``."""
        return replace(
            self, next_due_at=next_due(self.window, self.schedule, self.last_window_end, now)
        )


def parse_checks(values: Sequence[str]) -> tuple[Check, ...]:
    """Check names as given by people; an unknown one is an error naming the known ones."""
    parsed: list[Check] = []
    for value in values:
        try:
            parsed.append(Check(value.strip().lower()))
        except ValueError:
            raise InvalidInput(
                f"The 'checks' field names {value!r}, which is not a check. "
                f"Use one or more of {', '.join(Check)}.",
                {"field": "checks"},
            ) from None
    return tuple(parsed)


@dataclass(frozen=True)
class MonitorChanges:
    """Fields to change on a monitor; None leaves a field as it is."""

    checks: tuple[Check, ...] | None = None
    window: Window | None = None
    version: int | None = None
    clear_version: bool = False
    reference_version: int | None = None
    clear_reference_version: bool = False
    thresholds: Thresholds | None = None
    schedule: Schedule | None = None

    def apply(self, monitor: Monitor) -> Monitor:
        changed = replace(
            monitor,
            checks=self.checks if self.checks is not None else monitor.checks,
            window=self.window or monitor.window,
            version=None if self.clear_version else (self.version or monitor.version),
            reference_version=None
            if self.clear_reference_version
            else (self.reference_version or monitor.reference_version),
            thresholds=self.thresholds or monitor.thresholds,
            schedule=self.schedule or monitor.schedule,
        )
        if changed.window != monitor.window:
            # A new window size starts a new series: the next run begins at the newest window.
            changed = replace(changed, last_window_end=None)
        return changed


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricPoint:
    """One number a monitor run measured, and its verdict.

    ``column`` is None for dataset-level metrics (drift share, accuracy, latency); ``value`` is
    None when there was nothing to measure (status ``no_data``).
    """

    model: str
    version: int
    window_start: datetime
    window_end: datetime
    check: Check
    column: str | None
    metric: str
    value: float | None
    threshold: float | None
    status: Status
    monitor_id: int | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class MonitoringStatus:
    """The latest verdict of every check, column and metric of a model."""

    model: str
    status: Status
    points: tuple[MetricPoint, ...]
