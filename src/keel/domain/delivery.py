"""DORA delivery metrics from Keel's own records, bucketed by the Four Keys rules.

What counts (a model promotion is a deployment):

* **Deployment**: a promotion to ``production`` that is not a rollback, plus a canary that served
  live traffic and was aborted (`CanaryOutcome`, fed by ``DeliveryHistory.canaries``): its
  candidate reached users, so it is a deployment, and a failed one, from its start to its abort.
  A rollout that finishes does so by promoting, so its promotion already counts it; a source
  that reports finished rollouts without a promotion passes them as ``completed``.
* **Lead time for changes**: version registered -> its promotion; also git commit -> promotion
  when the lineage records the commit time.
* **Change failure**: a deployment followed within ``failure_days`` by a rollback away from that
  version, an aborted canary of it, or a P1/P2 incident on it.
* **Failed deployment recovery time**: from the failure's start (its incident's opening; the
  deployment itself when a rollback had no incident) to the first of the incident's resolution
  and the rollback. Failures not yet recovered are listed, not timed.
* **Deployment rework rate**: deployments made while an incident on the model was open, i.e.
  made to fix it, over all deployments.

Four Keys buckets (github.com/dora-team/fourkeys, METRICS.md), followed except where noted:

* Frequency: "Daily" when the median ISO week of the period has deployments on >= 3 days;
  "Weekly" when the median week has one; "Monthly" when the median calendar month has one;
  else "Yearly". Four Keys uses BigQuery's Sunday weeks and takes the monthly median over week
  rows; Keel uses ISO (Monday) weeks and medians over months. Four Keys always looks at the last
  three months; Keel looks at the period asked for (default: the last 90 days).
* Lead time and recovery time: median < 24 h "One day", < 168 h "One week", < 730 h "One month",
  < 6 x 730 h "Six months", else "One year". Four Keys ignores lead times <= 0 (automated
  pushes); Keel has none (a version always exists before its promotion).
* Change failure rate: <= 15% "0-15%", < 46% "16-45%", else "46-100%" (Four Keys says "46-60%"
  for anything above 45%).
* Rework rate has no Four Keys bucket (it is DORA's 2024 fifth metric); Keel shows the rate.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

FAILURE_SEVERITIES = frozenset({"P1", "P2"})
DEFAULT_FAILURE_DAYS = 7
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Deployment:
    """A promotion to production (``promotion_id``), or a completed canary (``canary_id``)."""

    model: str
    team: str
    version: int
    at: datetime
    registered_at: datetime
    promotion_id: int | None = None
    canary_id: int | None = None
    commit_at: datetime | None = None


@dataclass(frozen=True)
class Rollback:
    id: int
    model: str
    from_version: int
    to_version: int
    at: datetime
    incident_id: int | None


@dataclass(frozen=True)
class IncidentRecord:
    id: int
    model: str
    version: int | None
    severity: str
    opened_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class CanaryOutcome:
    """A finished rollout: ``completed`` is a deployment, else an abort (``at``: when it
    finished; ``started_at``: when its candidate first took live traffic)."""

    id: int
    model: str
    team: str
    version: int
    at: datetime
    registered_at: datetime
    completed: bool
    started_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryHistory:
    """Every record the metrics read, for the models in scope."""

    deployments: Sequence[Deployment]
    rollbacks: Sequence[Rollback]
    incidents: Sequence[IncidentRecord]
    canaries: Sequence[CanaryOutcome] = ()


@dataclass(frozen=True)
class Failure:
    """A failed deployment: what failed it, and when it recovered (None: not yet)."""

    deployment: Deployment
    cause: str
    started_at: datetime
    recovered_at: datetime | None
    incident_id: int | None = None
    rollback_id: int | None = None

    @property
    def recovery_hours(self) -> float | None:
        if self.recovered_at is None:
            return None
        return (self.recovered_at - self.started_at) / _HOUR


@dataclass(frozen=True)
class DoraMetrics:
    """The five metrics of one scope and period, with the events behind each number."""

    scope: str
    start: datetime
    end: datetime
    deployments: tuple[Deployment, ...]
    deployments_per_week: float
    frequency: str
    lead_time_hours: float | None
    lead_time: str | None
    commit_lead_time_hours: float | None
    failures: tuple[Failure, ...]
    change_failure_rate: float | None
    change_failure: str | None
    recovery_hours: float | None
    recovery: str | None
    rework: tuple[Deployment, ...] = field(default=())
    rework_rate: float | None = None


def time_bucket(hours: float | None) -> str | None:
    """The Four Keys bucket of a median lead or recovery time.

    >>> [time_bucket(h) for h in (3, 24, 200, 729.9, 4379, 4380)]
    ['One day', 'One week', 'One month', 'One month', 'Six months', 'One year']
    """
    if hours is None:
        return None
    for limit, name in ((24, "One day"), (168, "One week"), (730, "One month")):
        if hours < limit:
            return name
    return "Six months" if hours < 730 * 6 else "One year"


def failure_bucket(rate: float | None) -> str | None:
    """The Four Keys bucket of a change failure rate (see the module's docstring).

    >>> [failure_bucket(r) for r in (0.0, 0.15, 0.16, 0.45, 0.46, 1.0)]
    ['0-15%', '0-15%', '16-45%', '16-45%', '46-100%', '46-100%']
    """
    if rate is None:
        return None
    if rate <= 0.15:
        return "0-15%"
    return "16-45%" if rate < 0.46 else "46-100%"


def frequency_bucket(days: Sequence[date], start: date, end: date) -> str:
    """The Four Keys frequency of deployments on ``days`` over [start, end).

    >>> from datetime import date
    >>> frequency_bucket([date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)],
    ...                  date(2026, 11, 2), date(2026, 11, 9))
    'Daily'
    """
    deployed = set(days)
    weeks: dict[date, int] = {}
    months: dict[tuple[int, int], int] = {}
    day = start
    while day < end:
        week = day - timedelta(days=day.weekday())
        weeks.setdefault(week, 0)
        months.setdefault((day.year, day.month), 0)
        if day in deployed:
            weeks[week] += 1
            months[(day.year, day.month)] += 1
        day += timedelta(days=1)
    if not weeks:
        return "Yearly"
    if statistics.median(weeks.values()) >= 3:
        return "Daily"
    if statistics.median(1 if n else 0 for n in weeks.values()) >= 1:
        return "Weekly"
    if statistics.median(months.values()) >= 1:
        return "Monthly"
    return "Yearly"


def _day_after(end: datetime) -> date:
    # The first day not in [start, end): a period ending mid-day still counts that day.
    last = (end - timedelta(microseconds=1)).date()
    return last + timedelta(days=1)


def _median_hours(durations: Sequence[timedelta]) -> float | None:
    return statistics.median(d / _HOUR for d in durations) if durations else None


def _failure(deployment: Deployment, history: DeliveryHistory, window: timedelta) -> Failure | None:
    horizon = deployment.at + window
    rollback = next(
        (
            r
            for r in sorted(history.rollbacks, key=lambda r: r.at)
            if r.model == deployment.model
            and r.from_version == deployment.version
            and deployment.at <= r.at <= horizon
        ),
        None,
    )
    incident = next(
        (
            i
            for i in sorted(history.incidents, key=lambda i: i.opened_at)
            if i.model == deployment.model
            and i.version == deployment.version
            and i.severity in FAILURE_SEVERITIES
            and deployment.at <= i.opened_at <= horizon
        ),
        None,
    )
    aborted = next(
        (
            c
            for c in history.canaries
            if not c.completed
            and c.model == deployment.model
            and c.version == deployment.version
            and deployment.at <= c.at <= horizon
        ),
        None,
    )
    if incident is not None:
        ends = [
            t
            for t in (incident.resolved_at, None if rollback is None else rollback.at)
            if t is not None and t >= incident.opened_at
        ]
        return Failure(
            deployment,
            f"{incident.severity} incident",
            incident.opened_at,
            min(ends) if ends else None,
            incident_id=incident.id,
            rollback_id=rollback.id if rollback else None,
        )
    if rollback is not None:
        return Failure(deployment, "rollback", deployment.at, rollback.at, rollback_id=rollback.id)
    if aborted is not None:
        return Failure(deployment, "aborted canary", deployment.at, aborted.at)
    return None


def _reworks(deployment: Deployment, incidents: Sequence[IncidentRecord]) -> bool:
    return any(
        i.model == deployment.model
        and i.opened_at < deployment.at
        and (i.resolved_at is None or deployment.at <= i.resolved_at)
        for i in incidents
    )


def dora_metrics(
    scope: str,
    history: DeliveryHistory,
    start: datetime,
    end: datetime,
    *,
    failure_days: int = DEFAULT_FAILURE_DAYS,
) -> DoraMetrics:
    """The five DORA metrics of the deployments in [start, end) (see the module's docstring)."""
    completed = [
        Deployment(c.model, c.team, c.version, c.at, c.registered_at, canary_id=c.id)
        for c in history.canaries
        if c.completed
    ]
    window = timedelta(days=failure_days)
    promoted = [*history.deployments, *completed]
    # An aborted canary no deployment of its version covers is its own (failed) deployment.
    exposed = [
        Deployment(c.model, c.team, c.version, c.started_at, c.registered_at, canary_id=c.id)
        for c in history.canaries
        if not c.completed
        and c.started_at is not None
        and not any(
            d.model == c.model and d.version == c.version and d.at <= c.at <= d.at + window
            for d in promoted
        )
    ]
    deployments = tuple(
        sorted(
            (d for d in (*promoted, *exposed) if start <= d.at < end),
            key=lambda d: (d.at, d.model, d.version),
        )
    )
    failures = tuple(f for d in deployments if (f := _failure(d, history, window)) is not None)
    rework = tuple(d for d in deployments if _reworks(d, history.incidents))
    count = len(deployments)
    lead = _median_hours([d.at - d.registered_at for d in deployments])
    commit = _median_hours([d.at - d.commit_at for d in deployments if d.commit_at])
    recovered = [f.recovered_at - f.started_at for f in failures if f.recovered_at is not None]
    recovery = _median_hours(recovered)
    rate = len(failures) / count if count else None
    return DoraMetrics(
        scope=scope,
        start=start,
        end=end,
        deployments=deployments,
        deployments_per_week=count / ((end - start) / timedelta(weeks=1)),
        frequency=frequency_bucket(
            [d.at.date() for d in deployments], start.date(), _day_after(end)
        ),
        lead_time_hours=lead,
        lead_time=time_bucket(lead),
        commit_lead_time_hours=commit,
        failures=failures,
        change_failure_rate=rate,
        change_failure=failure_bucket(rate),
        recovery_hours=recovery,
        recovery=time_bucket(recovery),
        rework=rework,
        rework_rate=len(rework) / count if count else None,
    )
