"""Service level objectives for a model's serving endpoint, error budgets and burn-rate alerts.

An SLO says which share of requests must be good over a rolling window (28 or 30 days):
availability counts a request good when it carries no error; latency counts it good when it was
answered within a bound. The error budget is the share allowed to be bad, ``1 - objective``.

The burn rate of a window is how fast that window spends the budget: its error rate divided by
``1 - objective``. A burn rate of 1 spends exactly the budget over the SLO's window; 14.4 spends
2% of a 30-day budget in one hour. Alerts follow the Google SRE workbook, chapter "Alerting on
SLOs" (multiwindow, multi-burn-rate): each rule has a long and a short window and fires only
when BOTH burn faster than its rate — the long window proves the burn is significant, the short
one that it is still happening (so the alert stops soon after the problem does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from keel.errors import InvalidInput

WINDOW_DAYS = (28, 30)


class SloKind(StrEnum):
    AVAILABILITY = "availability"  # good = the request carries no error
    LATENCY = "latency"  # good = answered within latency_threshold_ms


class AlertAction(StrEnum):
    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True)
class Slo:
    id: int
    model: str
    name: str
    kind: SloKind
    objective: float  # e.g. 0.999: 99.9% of requests good
    window_days: int
    latency_threshold_ms: float | None
    created_by: str
    created_at: datetime

    @property
    def budget(self) -> float:
        """The share of requests allowed to be bad, ``1 - objective``."""
        return 1.0 - self.objective


@dataclass(frozen=True)
class Counts:
    """Requests in a window and how many of them were bad."""

    total: int
    bad: int

    @property
    def error_rate(self) -> float:
        """The share of bad requests; 0 when there were no requests (nothing burned)."""
        return self.bad / self.total if self.total else 0.0


@dataclass(frozen=True)
class BurnRule:
    long: timedelta
    short: timedelta
    rate: float
    action: AlertAction
    severity: str  # a keel.domain.incidents.Severity value


# The SRE workbook's recommended set (Table 5-8 there), for a 30-day window.
BURN_RULES: tuple[BurnRule, ...] = (
    BurnRule(timedelta(hours=1), timedelta(minutes=5), 14.4, AlertAction.PAGE, "P1"),
    BurnRule(timedelta(hours=6), timedelta(minutes=30), 6.0, AlertAction.PAGE, "P2"),
    BurnRule(timedelta(days=3), timedelta(hours=6), 1.0, AlertAction.TICKET, "P4"),
)


def span(window: timedelta) -> str:
    """A window as people write it: ``5m``, ``6h``, ``3d``.

    >>> span(timedelta(hours=6)), span(timedelta(minutes=90)), span(timedelta(days=3))
    ('6h', '90m', '3d')
    """
    minutes = int(window.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def rule_name(rule: BurnRule) -> str:
    """A burn rule's short name, e.g. ``ticket 1x over 3d/6h``.

    >>> rule_name(BURN_RULES[0])
    'page 14.4x over 1h/5m'
    """
    return f"{rule.action} {rule.rate:g}x over {span(rule.long)}/{span(rule.short)}"


@dataclass(frozen=True)
class RuleResult:
    rule: BurnRule
    long_burn: float
    short_burn: float

    @property
    def firing(self) -> bool:
        """Both windows burn faster than the rule's rate (strictly: "exceed")."""
        return self.long_burn > self.rule.rate and self.short_burn > self.rule.rate


def burn_rate(counts: Counts, objective: float) -> float:
    """Error rate over the window divided by the error budget ``1 - objective``.

    >>> round(burn_rate(Counts(total=1000, bad=15), 0.999), 9)  # 1.5% bad / 0.1% allowed
    15.0
    """
    return counts.error_rate / (1.0 - objective)


def budget_remaining(counts: Counts, objective: float) -> float:
    """The share of the SLO window's error budget left: ``1 - bad / (total * (1 - objective))``.

    Negative when the budget is overspent; 1.0 when there were no requests.

    >>> round(budget_remaining(Counts(total=100_000, bad=25), 0.999), 6)  # 25 of 100 allowed
    0.75
    """
    if counts.total == 0:
        return 1.0
    return 1.0 - counts.bad / (counts.total * (1.0 - objective))


def windows_needed(rules: tuple[BurnRule, ...] = BURN_RULES) -> tuple[timedelta, ...]:
    """Every distinct window the rules read, shortest first."""
    return tuple(sorted({w for r in rules for w in (r.long, r.short)}))


def evaluate_rules(
    counts: Mapping[timedelta, Counts],
    objective: float,
    rules: tuple[BurnRule, ...] = BURN_RULES,
) -> list[RuleResult]:
    """Each rule's burn rates over its long and short window, given counts per window."""
    return [
        RuleResult(r, burn_rate(counts[r.long], objective), burn_rate(counts[r.short], objective))
        for r in rules
    ]


def check_definition(
    kind: str, objective: float, window_days: int, latency_threshold_ms: float | None
) -> SloKind:
    """Validate an SLO definition; raise `InvalidInput` naming the field and the fix."""
    try:
        parsed = SloKind(kind)
    except ValueError:
        raise InvalidInput(
            f"The 'kind' field must be 'availability' or 'latency'. Got {kind!r}.",
            {"field": "kind"},
        ) from None
    if not 0.0 < objective < 1.0:
        raise InvalidInput(
            f"The 'objective' field is a share strictly between 0 and 1 (e.g. 0.999 for "
            f"99.9%). Got {objective}.",
            {"field": "objective"},
        )
    if window_days not in WINDOW_DAYS:
        raise InvalidInput(
            f"The 'window_days' field must be 28 or 30. Got {window_days}.",
            {"field": "window_days"},
        )
    if parsed == SloKind.LATENCY and (latency_threshold_ms is None or latency_threshold_ms <= 0):
        raise InvalidInput(
            "A latency SLO needs 'latency_threshold_ms' > 0: the bound a good request is "
            "answered within.",
            {"field": "latency_threshold_ms"},
        )
    if parsed == SloKind.AVAILABILITY and latency_threshold_ms is not None:
        raise InvalidInput(
            "An availability SLO takes no 'latency_threshold_ms'; leave it out, or use "
            "kind 'latency'.",
            {"field": "latency_threshold_ms"},
        )
    return parsed


@dataclass(frozen=True)
class SloStatus:
    """An SLO at one moment: its window's counts, the budget left, each rule's burn rates."""

    slo: Slo
    at: datetime
    window: Counts
    budget_remaining: float
    rules: tuple[RuleResult, ...]

    @property
    def firing(self) -> RuleResult | None:
        """The most severe rule that fires (pages before tickets), if any."""
        return next((r for r in self.rules if r.firing), None)

    @property
    def firing_rules(self) -> tuple[str, ...]:
        """The names (`rule_name`) of every rule that fires, most severe first."""
        return tuple(rule_name(r.rule) for r in self.rules if r.firing)


def status_of(slo: Slo, at: datetime, counts: Mapping[timedelta, Counts]) -> SloStatus:
    """Budget and burn rates from counts per window (``counts`` must hold the SLO's window
    ``timedelta(days=slo.window_days)`` and every rule window)."""
    window = counts[timedelta(days=slo.window_days)]
    return SloStatus(
        slo=slo,
        at=at,
        window=window,
        budget_remaining=budget_remaining(window, slo.objective),
        rules=tuple(evaluate_rules(counts, slo.objective)),
    )
