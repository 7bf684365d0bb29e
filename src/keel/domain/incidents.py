"""Incidents: what an alert opens, who owns it, and the path it takes to resolution.

An incident is keyed by what raised it (rule + model + version): while one with a key is open
(triggered or acknowledged), further alerts with that key land on its timeline instead of opening
another. Its lifecycle is triggered -> acknowledged -> resolved (a triggered incident may also be
resolved directly); a trigger after the resolution opens a new incident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from keel.errors import IllegalTransition, InvalidInput

MAX_TITLE = 300
MAX_COMMENT = 10_000
MAX_POSTMORTEM = 200_000


class Severity(StrEnum):
    """P1 (page now, production is broken) to P5 (informational)."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"
    P5 = "P5"


class IncidentStatus(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


OPEN_STATUSES = frozenset({IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED})

_MOVES: Mapping[IncidentStatus, frozenset[IncidentStatus]] = {
    IncidentStatus.TRIGGERED: frozenset({IncidentStatus.ACKNOWLEDGED, IncidentStatus.RESOLVED}),
    IncidentStatus.ACKNOWLEDGED: frozenset({IncidentStatus.RESOLVED}),
    IncidentStatus.RESOLVED: frozenset(),
}


def check_transition(current: IncidentStatus, target: IncidentStatus) -> None:
    """Refuse a status change the lifecycle does not allow, naming the allowed ones.

    >>> check_transition(IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED)
    >>> check_transition(IncidentStatus.RESOLVED, IncidentStatus.ACKNOWLEDGED)
    Traceback (most recent call last):
    ...
    keel.errors.IllegalTransition: An incident that is resolved cannot become acknowledged; ...
    """
    allowed = _MOVES[current]
    if target in allowed:
        return
    options = ", ".join(sorted(allowed)) or "nothing (a new alert opens a new incident)"
    raise IllegalTransition(
        f"An incident that is {current} cannot become {target}; from {current} it can become: "
        f"{options}.",
        {"status": str(current), "target": str(target), "allowed": sorted(allowed)},
    )


class TimelineKind(StrEnum):
    ALERT = "alert"
    STATUS = "status"
    COMMENT = "comment"
    ACTION = "action"
    NOTIFICATION = "notification"
    POSTMORTEM = "postmortem"


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to an incident, by whom and when.

    ``kind`` is one of `TimelineKind`: alert | status | comment | action | notification |
    postmortem.
    """

    at: datetime
    actor: str
    kind: str
    message: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class Incident:
    id: int
    key: str
    model: str
    version: int | None
    rule_id: int | None
    title: str
    severity: Severity
    status: IncidentStatus
    labels: Mapping[str, str]
    check: str | None
    column: str | None
    assignee: str | None
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    postmortem: str
    timeline: tuple[TimelineEntry, ...] = ()
    # Set on an incident a drill opened (keel.services.drills); real queries leave it out.
    drill_id: int | None = None

    @property
    def is_drill(self) -> bool:
        return self.drill_id is not None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def incident_key(rule_id: int, model: str, version: int | None) -> str:
    """The dedupe key of alerts a rule raises on one model version.

    >>> incident_key(3, "churn", 2), incident_key(3, "churn", None)
    ('3:churn:2', '3:churn:None')
    """
    return f"{rule_id}:{model}:{version}"


def check_text(value: str, field: str, limit: int, *, required: bool = True) -> str:
    """``value`` stripped; refused when empty (if required) or longer than ``limit``."""
    if not isinstance(value, str):
        raise InvalidInput(f"The '{field}' field must be text.", {"field": field})
    text = value.strip()
    if required and not text:
        raise InvalidInput(f"The '{field}' field must not be empty.", {"field": field})
    if len(text) > limit:
        raise InvalidInput(
            f"The '{field}' field is {len(text)} characters long; the limit is {limit}.",
            {"field": field},
        )
    return text


def check_labels(labels: Mapping[str, str] | None, field: str = "labels") -> dict[str, str]:
    """Labels as a plain dict of short text keys and values."""
    clean: dict[str, str] = {}
    for key, value in (labels or {}).items():
        if not isinstance(key, str) or not key or len(key) > 64:
            raise InvalidInput(
                f"The '{field}' field has a key {key!r}: keys must be text of 1-64 characters.",
                {"field": f"{field}.{key}"},
            )
        if not isinstance(value, str) or len(value) > 256:
            raise InvalidInput(
                f"The '{field}.{key}' label must be text of at most 256 characters.",
                {"field": f"{field}.{key}"},
            )
        clean[key] = value
    return clean


@dataclass(frozen=True)
class ResponseTimes:
    """Mean time to acknowledge and to resolve (seconds) over a set of incidents.

    MTTA counts incidents that were acknowledged; MTTR counts resolved ones, from opening to
    resolution. None when there is nothing to average.
    """

    incidents: int
    open: int
    acknowledged: int
    resolved: int
    mtta_seconds: float | None
    mttr_seconds: float | None


def response_times(incidents: Sequence[Incident]) -> ResponseTimes:
    """MTTA and MTTR of ``incidents``.

    >>> from datetime import UTC, timedelta
    >>> t0 = datetime(2026, 3, 1, tzinfo=UTC)
    >>> def mk(ack: int | None, res: int | None) -> Incident:
    ...     return Incident(1, "k", "m", 1, None, "t", Severity.P3, IncidentStatus.RESOLVED, {},
    ...         None, None, None, t0,
    ...         None if ack is None else t0 + timedelta(seconds=ack),
    ...         None if res is None else t0 + timedelta(seconds=res), "")
    >>> r = response_times([mk(60, 600), mk(None, 300)])
    >>> r.mtta_seconds, r.mttr_seconds
    (60.0, 450.0)
    """
    acks = [
        (i.acknowledged_at - i.opened_at).total_seconds()
        for i in incidents
        if i.acknowledged_at is not None
    ]
    fixes = [
        (i.resolved_at - i.opened_at).total_seconds()
        for i in incidents
        if i.resolved_at is not None
    ]
    return ResponseTimes(
        incidents=len(incidents),
        open=sum(1 for i in incidents if i.is_open),
        acknowledged=len(acks),
        resolved=len(fixes),
        mtta_seconds=sum(acks) / len(acks) if acks else None,
        mttr_seconds=sum(fixes) / len(fixes) if fixes else None,
    )
