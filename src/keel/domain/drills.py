"""Incident drills: rehearse the incident path on synthetic trouble, and measure the response.

A drill picks a scenario (what goes wrong), makes up telemetry showing it, and lets the model's
real monitors, alert rules, incident opening, notifications and playbooks handle it, apart from
everything real (the namespace is described in `keel.services.drills`). Its report says how
long each stage took, what the playbooks did or would have done, and what failed.

This module holds the rules, with no I/O: the scenarios and the checks that see them, which
drills may act for real, and the report's times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from keel.domain.monitoring import Check
from keel.errors import InvalidInput

PRODUCTION = "production"
DRILL_EVENT_MARK = "drill"
# "Incident response rehearsed in the last 90 days" (the maturity criterion).
REHEARSAL_DAYS = 90
MIN_SCHEDULE_DAYS = 1
MAX_SCHEDULE_DAYS = 366


class Scenario(StrEnum):
    """What goes wrong in a drill."""

    DRIFT = "drift"
    PERFORMANCE = "performance"
    LATENCY = "latency"
    ERRORS = "errors"
    BAD_DEPLOY = "bad-deploy"


# The monitor checks that would see each scenario.
CHECKS: Mapping[Scenario, tuple[Check, ...]] = {
    Scenario.DRIFT: (Check.DRIFT,),
    Scenario.PERFORMANCE: (Check.PERFORMANCE,),
    Scenario.LATENCY: (Check.OPERATIONS,),
    Scenario.ERRORS: (Check.OPERATIONS,),
    # A broken new version: it errors, slows down and predicts badly at once.
    Scenario.BAD_DEPLOY: (Check.OPERATIONS, Check.PERFORMANCE),
}


class DrillStatus(StrEnum):
    RUNNING = "running"
    PAGED = "paged"  # a drill incident is open, waiting for a person
    ACKNOWLEDGED = "acknowledged"
    FINISHED = "finished"  # the drill incident was resolved
    NOT_DETECTED = "not_detected"  # nothing opened an incident: the drill's main finding


def parse_scenario(value: str, field_name: str = "scenario") -> Scenario:
    """A scenario as people type it, or an error naming the option and the choices.

    >>> parse_scenario("Bad-Deploy")
    <Scenario.BAD_DEPLOY: 'bad-deploy'>
    """
    try:
        return Scenario(str(value).strip().lower())
    except ValueError:
        raise InvalidInput(
            f"The '{field_name}' option must be one of {', '.join(Scenario)}. Got {value!r}.",
            {"field": field_name},
        ) from None


def check_live(live: bool, alias: str) -> None:
    """Refuse a live drill on production: its playbook actions would change what is served.

    >>> check_live(True, "staging")
    >>> check_live(True, "production")
    Traceback (most recent call last):
    ...
    keel.errors.InvalidInput: The 'live' option cannot be used on the production alias: ...
    """
    if live and alias == PRODUCTION:
        raise InvalidInput(
            "The 'live' option cannot be used on the production alias: a live drill runs its "
            "playbook actions for real, and on production they would change what customers are "
            "served. Drop --live (playbook actions are then dry runs), or drill a non-production "
            "alias with --alias.",
            {"field": "live", "alias": alias},
        )


def drill_event(event: str) -> str:
    """The event name a receiver gets for a drill: ``.drill`` after the event's family, so a
    subscription to ``incident.*`` still receives it, and tells it apart.

    >>> drill_event("incident.triggered"), drill_event("incident.page")
    ('incident.drill.triggered', 'incident.drill.page')
    """
    family, _, rest = event.partition(".")
    return f"{family}.{DRILL_EVENT_MARK}.{rest}" if rest else f"{family}.{DRILL_EVENT_MARK}"


def check_schedule_days(days: int) -> int:
    if not isinstance(days, int) or not MIN_SCHEDULE_DAYS <= days <= MAX_SCHEDULE_DAYS:
        raise InvalidInput(
            f"The 'every_days' field must be a whole number of days from {MIN_SCHEDULE_DAYS} to "
            f"{MAX_SCHEDULE_DAYS}. Got {days!r}.",
            {"field": "every_days"},
        )
    return days


@dataclass(frozen=True)
class PlaybookStep:
    """One playbook action in a drill: what ran (``outcome``) and what it would have done."""

    playbook: str
    action: str
    outcome: str  # dry_run | done | failed | not_matched
    would: str


@dataclass(frozen=True)
class Drill:
    """One drill and its report; times are measured on the drill service's clock."""

    id: int
    model: str
    scenario: Scenario
    alias: str
    version: int | None
    live: bool
    status: DrillStatus
    requested_by: str
    scheduled: bool
    started_at: datetime
    detected_at: datetime | None = None
    paged_at: datetime | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    incident_id: int | None = None
    job_id: int | None = None
    rules_fired: tuple[str, ...] = ()
    points: tuple[Mapping[str, Any], ...] = ()
    steps: tuple[PlaybookStep, ...] = ()
    failures: tuple[str, ...] = ()
    deliveries: tuple[int, ...] = ()
    detection_wait_s: float | None = None
    notes: tuple[str, ...] = field(default=())

    def _since_start(self, moment: datetime | None) -> float | None:
        return None if moment is None else (moment - self.started_at).total_seconds()

    @property
    def time_to_detect_s(self) -> float | None:
        """From the synthetic trouble's start to the incident opening."""
        return self._since_start(self.detected_at)

    @property
    def time_to_page_s(self) -> float | None:
        """From the start to the first delivered drill notification."""
        return self._since_start(self.paged_at)

    @property
    def time_to_acknowledge_s(self) -> float | None:
        """From the start to a person acknowledging the drill incident."""
        return self._since_start(self.acknowledged_at)

    @property
    def time_to_resolve_s(self) -> float | None:
        """From the start to the drill incident's resolution."""
        return self._since_start(self.resolved_at)


@dataclass(frozen=True)
class DrillSchedule:
    """A drill of ``scenario`` run every ``every_days`` days (never live)."""

    id: int
    model: str
    scenario: Scenario
    alias: str
    every_days: int
    created_by: str
    created_at: datetime


def rehearsed(drills: Sequence[Drill], since: datetime) -> list[Drill]:
    """The drills since ``since`` that opened an incident a person then resolved.

    >>> rehearsed([], datetime(2026, 1, 1))
    []
    """
    return [
        d
        for d in drills
        if d.started_at >= since and d.incident_id is not None and d.resolved_at is not None
    ]
