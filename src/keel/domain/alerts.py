"""Alert rules: which metric points raise an incident, after how many windows, how loudly.

A rule matches a model's metric points by check (and optionally version, column and metric).
In each window it *breaches* when any matching point does: its value compared with the rule's
threshold (``>``, ``>=``, ``<``, ``<=``), or, for ``comparison: status``, the point's own verdict
is ``alert`` (the monitor's thresholds decide). A rule fires when its last ``windows``
evaluated windows all breached, and clears when the newest window has data and does not breach.
A window with only ``no_data`` points neither fires nor clears: missing data is not recovery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from keel.domain.incidents import Severity, check_labels
from keel.domain.monitoring import Check, MetricPoint, Monitor, Status
from keel.errors import InvalidInput

MAX_WINDOWS = 48
RULE_FIELDS = frozenset(
    {
        "name",
        "version",
        "check",
        "column",
        "metric",
        "comparison",
        "threshold",
        "windows",
        "severity",
        "labels",
        "auto_resolve",
    }
)


class Comparison(StrEnum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    STATUS = "status"  # the point's status is "alert" (the monitor's own threshold)


class Decision(StrEnum):
    FIRE = "fire"  # open an incident (or add an alert to the open one)
    HOLD = "hold"  # leave things as they are
    CLEAR = "clear"  # the condition no longer holds: resolve if the rule auto-resolves


@dataclass(frozen=True)
class AlertRule:
    """One alert rule of a model (``version`` None: whichever version the points are for)."""

    model: str
    name: str
    check: Check
    comparison: Comparison = Comparison.STATUS
    threshold: float | None = None
    windows: int = 2
    severity: Severity = Severity.P3
    labels: Mapping[str, str] = field(default_factory=dict)
    auto_resolve: bool = True
    version: int | None = None
    column: str | None = None
    metric: str | None = None
    id: int | None = None
    monitor_id: int | None = None
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.comparison == Comparison.STATUS:
            if self.threshold is not None:
                raise InvalidInput(
                    "The 'threshold' field must be left out when 'comparison' is 'status' (the "
                    "monitor's thresholds decide); or use >, >=, < or <= with a threshold.",
                    {"field": "threshold"},
                )
        elif self.threshold is None or not math.isfinite(self.threshold):
            raise InvalidInput(
                f"The 'threshold' field must be a finite number when 'comparison' is "
                f"'{self.comparison}'.",
                {"field": "threshold"},
            )
        if not 1 <= self.windows <= MAX_WINDOWS:
            raise InvalidInput(
                f"The 'windows' field must be between 1 and {MAX_WINDOWS}: how many consecutive "
                f"windows the condition must hold. Got {self.windows}.",
                {"field": "windows"},
            )
        if self.version is not None and self.version < 1:
            raise InvalidInput(
                "The 'version' field must be a version number >= 1, or left out.",
                {"field": "version"},
            )

    @property
    def series(self) -> tuple[str, str | None, str | None, int | None]:
        """The signal this rule reads: (check, column, metric, version). Two default rules over
        one series would open two incidents for one signal, so a model keeps one of them."""
        return (str(self.check), self.column, self.metric, self.version)

    def matches(self, point: MetricPoint) -> bool:
        """Whether ``point`` belongs to the series this rule reads."""
        return (
            point.model == self.model
            and point.check == self.check
            and (self.version is None or point.version == self.version)
            and (self.column is None or point.column == self.column)
            and (self.metric is None or point.metric == self.metric)
        )

    def breaches(self, point: MetricPoint) -> bool:
        """Whether one point satisfies the rule's condition (no_data never does).

        >>> from datetime import UTC
        >>> t = datetime(2026, 3, 1, tzinfo=UTC)
        >>> p = MetricPoint("m", 1, t, t, Check.DRIFT, "x", "psi", 0.3, 0.2, Status.ALERT)
        >>> AlertRule("m", "r", Check.DRIFT, Comparison.GT, 0.25).breaches(p)
        True
        >>> AlertRule("m", "r", Check.DRIFT, Comparison.LT, 0.25).breaches(p)
        False
        """
        if point.status == Status.NO_DATA or point.value is None:
            return False
        if self.comparison == Comparison.STATUS:
            return point.status == Status.ALERT
        assert self.threshold is not None
        value, limit = point.value, self.threshold
        return {
            Comparison.GT: value > limit,
            Comparison.GE: value >= limit,
            Comparison.LT: value < limit,
            Comparison.LE: value <= limit,
        }[self.comparison]

    def describe(self) -> str:
        """Human summary, e.g. ``drift drift_share status for 2 windows``."""
        what = " ".join(filter(None, (str(self.check), self.column, self.metric)))
        cond = (
            "is alert"
            if self.comparison == Comparison.STATUS
            else (f"{self.comparison} {self.threshold:g}" if self.threshold is not None else "")
        )
        return f"{what} {cond} for {self.windows} window{'s' if self.windows > 1 else ''}"


def decide(rule: AlertRule, windows: Sequence[Sequence[MetricPoint]]) -> Decision:
    """Fire, hold or clear, given the rule's matching points per window, oldest window first.

    >>> from datetime import UTC
    >>> t = datetime(2026, 3, 1, tzinfo=UTC)
    >>> def w(status: Status) -> list[MetricPoint]:
    ...     return [MetricPoint("m", 1, t, t, Check.DRIFT, None, "drift_share", 0.5, 0.5, status)]
    >>> rule = AlertRule("m", "drift", Check.DRIFT, windows=2)
    >>> decide(rule, [w(Status.ALERT)]), decide(rule, [w(Status.ALERT), w(Status.ALERT)])
    (<Decision.HOLD: 'hold'>, <Decision.FIRE: 'fire'>)
    >>> decide(rule, [w(Status.ALERT), w(Status.OK)])
    <Decision.CLEAR: 'clear'>
    """
    if not windows:
        return Decision.HOLD
    newest = windows[-1]
    if not any(p.status != Status.NO_DATA and p.value is not None for p in newest):
        return Decision.HOLD
    recent = windows[-rule.windows :]
    if len(recent) == rule.windows and all(any(rule.breaches(p) for p in w) for w in recent):
        return Decision.FIRE
    if not any(rule.breaches(p) for p in newest):
        return Decision.CLEAR
    return Decision.HOLD


def default_rules(monitor: Monitor) -> list[AlertRule]:
    """The rules created with a monitor, one per check it runs that has an obvious alarm.

    Drift: the dataset's drifted share reached its limit for 2 windows (P3). Performance below
    its minimum (P2), fairness disparate impact below four-fifths (P2), error rate above its
    ceiling for 2 windows (P2), an estimated metric past its performance limit (P2).
    Explanation drift: the importance ranking's correlation with gate 1's below its minimum
    (P3). All resolve automatically when the condition clears.
    """
    specs: dict[Check, tuple[str | None, int, Severity]] = {
        Check.DRIFT: ("drift_share", 2, Severity.P3),
        Check.PERFORMANCE: (None, 1, Severity.P2),
        Check.FAIRNESS: ("disparate_impact", 1, Severity.P2),
        Check.OPERATIONS: ("error_rate", 2, Severity.P2),
        Check.EXPLANATION_DRIFT: ("importance_rank_correlation", 1, Severity.P3),
        Check.ESTIMATED_PERFORMANCE: ("estimate", 1, Severity.P2),
    }
    rules: list[AlertRule] = []
    for check in monitor.checks:
        if check not in specs:
            continue
        metric, windows, severity = specs[check]
        rules.append(
            AlertRule(
                model=monitor.model,
                name=f"{monitor.name}-{check}",
                check=check,
                metric=metric,
                comparison=Comparison.STATUS,
                windows=windows,
                severity=severity,
                labels={"monitor": monitor.name, "source": "default"},
                auto_resolve=True,
                version=monitor.version,
                monitor_id=monitor.id,
            )
        )
    return rules


def parse_rule(model: str, data: Mapping[str, Any], where: str = "rule") -> AlertRule:
    """Build a rule from JSON or YAML; an unknown or wrong field is an error naming it."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"The '{where}' entry must be a mapping of fields.", {"field": where})
    unknown = sorted(set(map(str, data)) - RULE_FIELDS)
    if unknown:
        raise InvalidInput(
            f"The '{where}.{unknown[0]}' field is not a rule field. "
            f"Known fields: {', '.join(sorted(RULE_FIELDS))}.",
            {"field": f"{where}.{unknown[0]}"},
        )

    def text(name: str, *, required: bool = False) -> str | None:
        value = data.get(name)
        if value is None:
            if required:
                raise InvalidInput(
                    f"The '{where}.{name}' field is required.", {"field": f"{where}.{name}"}
                )
            return None
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(
                f"The '{where}.{name}' field must be non-empty text. Got {value!r}.",
                {"field": f"{where}.{name}"},
            )
        return value.strip()

    def choice(name: str, kind: type[StrEnum], default: Any) -> Any:
        value = data.get(name, default)
        try:
            return kind(str(value).strip() if name != "check" else str(value).strip().lower())
        except ValueError:
            raise InvalidInput(
                f"The '{where}.{name}' field must be one of {', '.join(kind)}. Got {value!r}.",
                {"field": f"{where}.{name}"},
            ) from None

    def integer(name: str, default: int | None) -> int | None:
        value = data.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(
                f"The '{where}.{name}' field must be a whole number. Got {value!r}.",
                {"field": f"{where}.{name}"},
            )
        return value

    threshold = data.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float)
    ):
        raise InvalidInput(
            f"The '{where}.threshold' field must be a number. Got {threshold!r}.",
            {"field": f"{where}.threshold"},
        )
    auto_resolve = data.get("auto_resolve", True)
    if not isinstance(auto_resolve, bool):
        raise InvalidInput(
            f"The '{where}.auto_resolve' field must be true or false. Got {auto_resolve!r}.",
            {"field": f"{where}.auto_resolve"},
        )
    labels_raw = data.get("labels") or {}
    if not isinstance(labels_raw, Mapping):
        raise InvalidInput(
            f"The '{where}.labels' field must be a mapping of text to text.",
            {"field": f"{where}.labels"},
        )
    name = text("name", required=True)
    assert name is not None
    try:
        return AlertRule(
            model=model,
            name=name,
            check=choice("check", Check, data.get("check")),
            comparison=choice("comparison", Comparison, Comparison.STATUS),
            threshold=None if threshold is None else float(threshold),
            windows=integer("windows", 2) or 0,
            severity=choice("severity", Severity, Severity.P3),
            labels=check_labels({str(k): v for k, v in labels_raw.items()}, f"{where}.labels"),
            auto_resolve=auto_resolve,
            version=integer("version", None),
            column=text("column"),
            metric=text("metric"),
        )
    except InvalidInput as exc:
        field_name = str(exc.details.get("field", ""))
        if field_name and not field_name.startswith(where):
            raise InvalidInput(
                exc.message.replace(f"'{field_name}'", f"'{where}.{field_name}'"),
                {**exc.details, "field": f"{where}.{field_name}"},
            ) from None
        raise


def rule_to_dict(rule: AlertRule) -> dict[str, Any]:
    """The rule's definition (also its audit details)."""
    return {
        "name": rule.name,
        "version": rule.version,
        "check": str(rule.check),
        "column": rule.column,
        "metric": rule.metric,
        "comparison": str(rule.comparison),
        "threshold": rule.threshold,
        "windows": rule.windows,
        "severity": str(rule.severity),
        "labels": dict(rule.labels),
        "auto_resolve": rule.auto_resolve,
    }
