"""DORA delivery metrics per model, team or portfolio (see `keel.domain.delivery` for the rules).

Serving's rollouts join through a `CanarySource` (`RolloutCanaries` reads Keel's deployments):
an aborted canary, or a blue-green aborted after its switch, served live traffic, so it counts as
a deployment and a failure. A rollout that finished promoted its version, and that promotion is
already counted: it is not reported again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from keel.domain.delivery import (
    DEFAULT_FAILURE_DAYS,
    CanaryOutcome,
    DeliveryHistory,
    DoraMetrics,
    dora_metrics,
)
from keel.domain.deployments import DeploymentState, Strategy
from keel.domain.names import check_name
from keel.errors import InvalidInput, NotFound
from keel.services.deployments import Deployments
from keel.services.registry import Registry
from keel.store.sql.delivery import SqlDeliveryStore

DEFAULT_PERIOD = timedelta(days=90)
MAX_PERIOD = timedelta(days=3 * 366)
MAX_FAILURE_DAYS = 90


class CanarySource(Protocol):
    """Finished canaries of the scope (serving provides this)."""

    def finished_canaries(
        self, *, model: str | None, team: str | None
    ) -> Sequence[CanaryOutcome]: ...


class RolloutCanaries:
    """The `CanarySource` of Keel's own deployments: the aborted rollouts that reached users."""

    def __init__(self, deployments: Deployments, registry: Registry) -> None:
        self.deployments = deployments
        self.registry = registry

    def finished_canaries(self, *, model: str | None, team: str | None) -> Sequence[CanaryOutcome]:
        found = []
        for rollout in self.deployments.list(model):
            if rollout.state != DeploymentState.ABORTED:
                continue
            if rollout.strategy == Strategy.CANARY:
                started = rollout.created_at
            elif rollout.strategy == Strategy.BLUE_GREEN and rollout.switched_at is not None:
                started = rollout.switched_at
            else:  # a shadow, or a blue-green aborted before any user reached green
                continue
            try:
                owner = self.registry.get_model(rollout.model)
                version = self.registry.get_version(rollout.model, rollout.candidate)
            except NotFound:  # deleted since: nothing to attribute it to
                continue
            if team is not None and owner.team != team:
                continue
            found.append(
                CanaryOutcome(
                    rollout.id,
                    rollout.model,
                    owner.team,
                    rollout.candidate,
                    rollout.updated_at,
                    version.created_at,
                    completed=False,
                    started_at=started,
                )
            )
        return found


def check_period(
    start: datetime | None, end: datetime | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """[start, end), defaulting to the 90 days up to now; refuses naive, reversed or long ones."""
    for field, moment in (("start", start), ("end", end)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(
                f"{field} must carry a time zone, for example 2026-11-01T00:00:00Z.",
                {"field": field},
            )
    end = end or now or datetime.now(UTC)
    start = start or end - DEFAULT_PERIOD
    if not start < end <= start + MAX_PERIOD:
        raise InvalidInput(
            "The period must run forwards (start before end) and span at most three years. "
            f"Got {start.isoformat()} to {end.isoformat()}.",
            {"field": "start", "start": start.isoformat(), "end": end.isoformat()},
        )
    return start, end


class Delivery:
    """How fast and how safely models reach production, from Keel's own records."""

    def __init__(
        self,
        store: SqlDeliveryStore,
        registry: Registry,
        canaries: CanarySource | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.canaries = canaries

    def history(self, *, model: str | None = None, team: str | None = None) -> DeliveryHistory:
        """The records of the model, the team, or (neither) the portfolio."""
        if model is not None and team is not None:
            raise InvalidInput(
                "Ask for one model or one team, not both (or neither, for the portfolio).",
                {"field": "team"},
            )
        if model is not None:
            model = self.registry.get_model(check_name(model, "model")).name
        if team is not None:
            team = self.registry.store.get_team(check_name(team, "team")).name
        found = self.store.history(model=model, team=team)
        if self.canaries is None:
            return found
        return DeliveryHistory(
            found.deployments,
            found.rollbacks,
            found.incidents,
            tuple(self.canaries.finished_canaries(model=model, team=team)),
        )

    def metrics(
        self,
        *,
        model: str | None = None,
        team: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        failure_days: int = DEFAULT_FAILURE_DAYS,
    ) -> DoraMetrics:
        """The five DORA metrics over [start, end) (default: the last 90 days)."""
        if not 1 <= failure_days <= MAX_FAILURE_DAYS:
            raise InvalidInput(
                f"failure_days is how long after a deployment a failure counts against it: "
                f"1 to {MAX_FAILURE_DAYS}. Got {failure_days}.",
                {"field": "failure_days"},
            )
        start, end = check_period(start, end)
        history = self.history(model=model, team=team)
        scope = f"model {model}" if model else f"team {team}" if team else "portfolio"
        return dora_metrics(scope, history, start, end, failure_days=failure_days)

    def metrics_by_team(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        failure_days: int = DEFAULT_FAILURE_DAYS,
    ) -> list[DoraMetrics]:
        """`metrics` of every team that deployed, by team name, from one reading of the records
        (a failure belongs to a deployment, so each team's records are its models')."""
        start, end = check_period(start, end)
        history = self.history()
        team_of = {d.model: d.team for d in history.deployments}
        team_of |= {c.model: c.team for c in history.canaries}
        out = []
        for team in sorted(set(team_of.values())):
            mine = {m for m, t in team_of.items() if t == team}
            scoped = DeliveryHistory(
                tuple(d for d in history.deployments if d.model in mine),
                tuple(r for r in history.rollbacks if r.model in mine),
                tuple(i for i in history.incidents if i.model in mine),
                tuple(c for c in history.canaries if c.model in mine),
            )
            out.append(dora_metrics(f"team {team}", scoped, start, end, failure_days=failure_days))
        return out
