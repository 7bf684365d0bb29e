"""What ``/metrics`` reports about each model at one scrape: the newest monitor verdict per
check, the newest drift share, open incidents by severity and each SLO's remaining budget.

Every field is a small value read from the metadata store; label values are bounded by what the
store holds (models, their versions, the five checks, the five severities, SLO names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from keel.domain.monitoring import Status

# A check's newest verdict as a number Prometheus can compare and alert on; the order is
# `keel.domain.monitoring.worst`'s (alert > warning > no data > ok).
STATUS_CODES: dict[Status, int] = {
    Status.OK: 0,
    Status.NO_DATA: 1,
    Status.WARNING: 2,
    Status.ALERT: 3,
}


@dataclass(frozen=True)
class CheckVerdict:
    """The worst status of a check's newest judged window for one model version."""

    model: str
    version: int
    check: str
    status: Status
    window_end: datetime


@dataclass(frozen=True)
class DriftShare:
    """The share of a version's columns that drifted in its newest drift window."""

    model: str
    version: int
    share: float
    window_end: datetime


@dataclass(frozen=True)
class SloBudget:
    """An SLO's error budget left as of its last evaluation (1.0 untouched, < 0 overspent)."""

    model: str
    slo: str
    kind: str
    objective: float
    budget_remaining: float
    evaluated_at: datetime


@dataclass(frozen=True)
class ModelMetrics:
    """Everything one scrape reads from the store."""

    models: list[tuple[str, str]] = field(default_factory=list)  # (model, team)
    verdicts: list[CheckVerdict] = field(default_factory=list)
    drift: list[DriftShare] = field(default_factory=list)
    open_incidents: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, sev)
    slo_budgets: list[SloBudget] = field(default_factory=list)
