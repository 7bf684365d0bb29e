"""The portfolio: every model's morning facts on one page, and the tiles above them.

A page of rows is built from batch reads (one statement per kind of fact for all the models of
the page: production version, rollout, incidents, newest candidate's gates, monitoring checks,
SLO budgets, value models) plus one allocation of the month's costs, so its statement count does
not grow with the number of rows. Portfolio-wide tiles come from the same services the API uses:
costs and the month-end forecast, DORA (last 30 days) and maturity.

Scoring maturity reads every version of every model (`MaturityScoring` has no batch form yet), and
the month-end forecast re-allocates eight weeks of bills day by day, so these tiles (with DORA) are
kept for `SLOW_TILES_TTL` and shown with the time they were computed; the month's spend so far is
always fresh.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import Connection

from keel.domain.costs import Budget, BudgetScope, Forecast
from keel.domain.deployments import Deployment, Strategy
from keel.domain.governance import EVIDENCE_GATES, Gate, GateOutcome
from keel.domain.lifecycle import VersionStatus
from keel.domain.monitoring import Check, Status
from keel.domain.registry import RiskTier
from keel.errors import InvalidInput
from keel.services.costs import CostService
from keel.services.costs import budgets as budget_rules
from keel.services.delivery import Delivery
from keel.services.maturity import MaturityScoring
from keel.services.value import Value
from keel.store.sql.portfolio import (
    CheckStatus,
    ModelLine,
    PortfolioFilter,
    SqlPortfolioStore,
    Upcoming,
)

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 1000
SLOW_TILES_TTL = timedelta(minutes=10)
DORA_DAYS = 30
SORTS = ("name", "team", "owner", "risk_tier", "production", "incidents", "versions")

# A verdict is a word; the first check in alert decides it, in this order.
_ALERT_WORDS = (
    (Check.PERFORMANCE, "degraded"),
    (Check.FAIRNESS, "unfair"),
    (Check.DRIFT, "drifting"),
    (Check.QUALITY, "bad data"),
    (Check.OPERATIONS, "failing SLO"),
)


_E = TypeVar("_E", RiskTier, VersionStatus)


@dataclass(frozen=True)
class PortfolioQuery:
    team: str | None = None
    risk_tier: RiskTier | None = None
    status: VersionStatus | None = None
    sort: str = "name"
    descending: bool = False
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(
        cls,
        *,
        team: str | None = None,
        tier: str | None = None,
        status: str | None = None,
        sort: str | None = None,
        order: str | None = None,
        page: str | None = None,
        per_page: str | None = None,
    ) -> PortfolioQuery:
        """Check query parameters as a browser or a script sends them (text); bad ones raise
        `InvalidInput` naming the parameter and what it accepts."""
        return cls(
            team=(team or "").strip() or None,
            risk_tier=_choice(tier, RiskTier, "tier"),
            status=_choice(status, VersionStatus, "status"),
            sort=_sort(sort),
            descending=_order(order),
            page=_positive(page, "page", 1, None),
            per_page=_positive(per_page, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE),
        )


def _choice(raw: str | None, kind: type[_E], name: str) -> _E | None:
    text = (raw or "").strip().lower()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        allowed = [str(e) for e in kind]
        raise InvalidInput(
            f"The '{name}' parameter must be one of {', '.join(allowed)}. Got {raw!r} instead.",
            {"field": name, "allowed": allowed},
        ) from None


def _sort(raw: str | None) -> str:
    text = (raw or "name").strip()
    if text not in SORTS:
        raise InvalidInput(
            f"The 'sort' parameter must be one of {', '.join(SORTS)}. Got {raw!r} instead.",
            {"field": "sort", "allowed": list(SORTS)},
        )
    return text


def _order(raw: str | None) -> bool:
    text = (raw or "asc").strip().lower()
    if text not in ("asc", "desc"):
        raise InvalidInput(
            f"The 'order' parameter must be asc or desc. Got {raw!r} instead.",
            {"field": "order", "allowed": ["asc", "desc"]},
        )
    return text == "desc"


def _positive(raw: str | None, name: str, default: int, most: int | None) -> int:
    text = (raw or "").strip()
    if not text:
        return default
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1 or (most is not None and number > most):
        bound = f"from 1 to {most}" if most is not None else "a whole number >= 1"
        raise InvalidInput(
            f"The '{name}' parameter must be {bound}. Got {raw!r} instead.",
            {"field": name},
        )
    return number


@dataclass(frozen=True)
class Health:
    verdict: str  # healthy | watch | degraded | unfair | drifting | bad data | failing SLO | ...
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Rollout:
    deployment_id: int
    strategy: Strategy
    state: str
    candidate: int
    traffic: float | None  # the candidate's share of live traffic, when it has one


@dataclass(frozen=True)
class CandidateGates:
    version: int
    status: VersionStatus
    verdict: str  # not run | pending | failed | error | awaiting sign-off | passed | approved
    gates: Mapping[str, str]


@dataclass(frozen=True)
class PortfolioRow:
    model: str
    team: str
    owner: str
    risk_tier: str
    latest_version: int
    production_version: int | None
    rollout: Rollout | None
    health: Health
    open_incidents: Mapping[str, int]  # severity -> count
    cost: Decimal
    budget: Decimal | None
    value: float | None
    roi: float | None
    value_note: str
    candidate: CandidateGates | None

    @property
    def open_incident_count(self) -> int:
        return sum(self.open_incidents.values())


@dataclass(frozen=True)
class Spend:
    month: str
    currency: str
    spent: Decimal
    budget: Decimal | None  # the portfolio budget, when an admin set one
    forecast: Forecast


@dataclass(frozen=True)
class Dora:
    days: int
    deployments: int
    deployments_per_week: float
    frequency: str
    lead_time_hours: float | None
    change_failure_rate: float | None
    recovery_hours: float | None


@dataclass(frozen=True)
class Maturity:
    levels: Mapping[int, int]  # Google MLOps level -> models at it
    computed_at: datetime


@dataclass(frozen=True)
class Tiles:
    in_production: int
    incidents_by_severity: Mapping[str, int]
    candidates_waiting: int
    spend: Spend
    dora: Dora
    maturity: Maturity


@dataclass(frozen=True)
class PortfolioPage:
    query: PortfolioQuery
    total: int
    rows: tuple[PortfolioRow, ...]
    tiles: Tiles
    teams: tuple[str, ...]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))


@dataclass(frozen=True)
class _Facts:
    production: Mapping[int, int]
    rollouts: Mapping[int, Deployment]
    incidents: Mapping[int, Mapping[str, int]]
    upcoming: Mapping[int, Upcoming]
    checks: Mapping[int, list[CheckStatus]]
    slo_budgets: Mapping[int, list[tuple[str, float]]]


@dataclass(frozen=True)
class _SlowTiles:
    at: datetime
    spend: Spend
    dora: Dora
    maturity: Maturity


@dataclass
class PortfolioService:
    store: SqlPortfolioStore
    costs: CostService
    value: Value
    delivery: Delivery
    maturity: MaturityScoring
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _slow: _SlowTiles | None = field(default=None, init=False, repr=False)

    def forget_slow_tiles(self) -> None:
        """Recompute the forecast, DORA and maturity tiles at the next page (tests, the bench)."""
        self._slow = None

    def page(self, query: PortfolioQuery) -> PortfolioPage:
        """The tiles and one page of rows (reading is open to every viewer, like the models)."""
        now = self.clock()
        month = f"{now.year:04d}-{now.month:02d}"
        spent, by_model = self.costs.month_cost_by_model(month)
        with self.store.reading() as conn:
            total, lines = self.store.models(
                PortfolioFilter(query.team, query.risk_tier, query.status),
                sort=query.sort,
                descending=query.descending,
                offset=(query.page - 1) * query.per_page,
                limit=query.per_page,
                conn=conn,
            )
            facts = self._facts([line.id for line in lines], conn)
            counts = (
                self.store.models_in_production(conn),
                self.store.open_incidents_by_severity(conn),
                self.store.candidates_waiting(conn),
            )
            teams = tuple(self.store.team_names(conn))
        rows = self._rows(lines, month, by_model, facts)
        slow = self._slow_tiles(month, now)
        tiles = Tiles(
            in_production=counts[0],
            incidents_by_severity=counts[1],
            candidates_waiting=counts[2],
            spend=dataclasses.replace(slow.spend, spent=spent),
            dora=slow.dora,
            maturity=slow.maturity,
        )
        return PortfolioPage(query, total, rows, tiles, teams)

    def _facts(self, ids: list[int], conn: Connection) -> _Facts:
        if not ids:
            return _Facts({}, {}, {}, {}, {}, {})
        return _Facts(
            production=self.store.production_versions(ids, conn),
            rollouts=self.store.rollouts(ids, conn),
            incidents=self.store.open_incidents(ids, conn),
            upcoming=self.store.upcoming(ids, conn),
            checks=self.store.latest_checks(ids, conn),
            slo_budgets=self.store.slo_budgets(ids, conn),
        )

    def _rows(
        self, lines: list[ModelLine], month: str, costs: Mapping[str, Decimal], facts: _Facts
    ) -> tuple[PortfolioRow, ...]:
        if not lines:
            return ()
        production, rollouts, incidents = facts.production, facts.rollouts, facts.incidents
        upcoming, checks, slo_budgets = facts.upcoming, facts.checks, facts.slo_budgets
        budgets = {
            b.target: b.amount_micros for b in self.costs.budgets() if b.scope == BudgetScope.MODEL
        }
        values = self.value.months_of(
            {line.name: line.latest_version for line in lines}, month, costs
        )
        rows = []
        for line in lines:
            roi = values.get(line.name)
            rows.append(
                PortfolioRow(
                    model=line.name,
                    team=line.team,
                    owner=line.owner,
                    risk_tier=line.risk_tier,
                    latest_version=line.latest_version,
                    production_version=production.get(line.id),
                    rollout=_rollout(rollouts.get(line.id)),
                    health=health(checks.get(line.id, []), slo_budgets.get(line.id, [])),
                    open_incidents=incidents.get(line.id, {}),
                    cost=costs.get(line.name, Decimal(0)),
                    budget=None
                    if line.name not in budgets
                    else Decimal(budgets[line.name]) / 1_000_000,
                    value=None if roi is None or roi.value is None else roi.value.value,
                    roi=None if roi is None else roi.roi,
                    value_note="no value model" if roi is None else roi.note,
                    candidate=_candidate(upcoming.get(line.id)),
                )
            )
        return tuple(rows)

    def _slow_tiles(self, month: str, now: datetime) -> _SlowTiles:
        """The month-end forecast, DORA and maturity: each reads far more than a page's rows,
        and each moves slowly, so they are kept for `SLOW_TILES_TTL`."""
        cached = self._slow
        if cached is not None and cached.spend.month == month and now - cached.at < SLOW_TILES_TTL:
            return cached
        self._slow = _SlowTiles(
            now, self._spend(month, Decimal(0), now), self._dora(now), self._maturity_levels(now)
        )
        return self._slow

    def _spend(self, month: str, spent: Decimal, now: datetime) -> Spend:
        budget = next((b for b in self.costs.budgets() if b.scope == BudgetScope.PORTFOLIO), None)
        # Without a portfolio budget the forecast is still wanted: judged against a zero budget
        # that is never shown (its "over budget" flag is ignored).
        judged = budget or Budget(0, BudgetScope.PORTFOLIO, "", 0, (), "")
        status = budget_rules.status(self.costs, judged, month, now.date())
        return Spend(
            month=month,
            currency=self.costs.settings()["currency"],
            spent=spent,
            budget=None if budget is None else status.amount,
            forecast=status.forecast,
        )

    def _dora(self, now: datetime) -> Dora:
        found = self.delivery.metrics(start=now - timedelta(days=DORA_DAYS), end=now)
        return Dora(
            days=DORA_DAYS,
            deployments=len(found.deployments),
            deployments_per_week=found.deployments_per_week,
            frequency=found.frequency,
            lead_time_hours=found.lead_time_hours,
            change_failure_rate=found.change_failure_rate,
            recovery_hours=found.recovery_hours,
        )

    def _maturity_levels(self, now: datetime) -> Maturity:
        """How many models sit at each Google MLOps level."""
        teams = [t.name for t in self.maturity.all_teams()]
        levels = Counter(
            self.maturity.score_model(m.name, now=now).google.level
            for team in teams
            for m in self.maturity.team_models(team)
        )
        return Maturity(dict(sorted(levels.items())), now)


def health(checks: list[CheckStatus], slo_budgets: list[tuple[str, float]]) -> Health:
    """One word for a model's health from its newest monitoring windows and SLO budgets.

    >>> health([], []).verdict
    'unmonitored'
    >>> health([], [("availability", -0.2)])
    Health(verdict='failing SLO', reasons=('SLO availability: error budget spent',))
    """
    reasons = [
        f"{c.check}: {c.status.value.replace('_', ' ')}"
        for c in checks
        if c.status in (Status.ALERT, Status.WARNING)
    ]
    reasons += [f"SLO {name}: error budget spent" for name, left in slo_budgets if left <= 0]
    alerting = {c.check for c in checks if c.status == Status.ALERT}
    if any(left <= 0 for _, left in slo_budgets):
        alerting.add(Check.OPERATIONS)
    for check, word in _ALERT_WORDS:
        if check in alerting:
            return Health(word, tuple(reasons))
    if not checks and not slo_budgets:
        return Health("unmonitored", ())
    if reasons:
        return Health("watch", tuple(reasons))
    return Health("healthy", ())


def _rollout(found: Deployment | None) -> Rollout | None:
    if found is None:
        return None
    traffic: float | None = None
    if found.strategy == Strategy.CANARY and found.step < len(found.plan.steps):
        traffic = found.plan.steps[found.step].weight
    elif found.strategy == Strategy.SHADOW:
        traffic = 0.0
    return Rollout(found.id, found.strategy, str(found.state), found.candidate, traffic)


def _candidate(found: Upcoming | None) -> CandidateGates | None:
    if found is None:
        return None
    outcomes = {GateOutcome(o) for o in found.gates.values()}
    if found.status == VersionStatus.APPROVED:
        verdict = "approved"
    elif not found.gates:
        verdict = "not run"
    elif GateOutcome.FAILED in outcomes:
        verdict = "failed"
    elif GateOutcome.ERROR in outcomes:
        verdict = "error"
    elif any(found.gates.get(str(g)) == GateOutcome.PENDING for g in EVIDENCE_GATES):
        verdict = "pending"
    elif found.gates.get(str(Gate.SIGNOFF)) == GateOutcome.PASSED:
        verdict = "passed"
    else:  # every evidence gate the run recorded passed: a candidate waits for its sign-off
        verdict = "awaiting sign-off"
    return CandidateGates(found.version, found.status, verdict, dict(found.gates))
