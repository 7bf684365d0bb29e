"""The monthly executive report: one month of the portfolio, from Keel's records.

Production is what the promotion history says was in production at the end of the month (a
rollback counts: it moves production too); the risk tier is the model's tier now. Costs and
budgets come from a `CostFigures` source; without one the report says the cost is unknown.
Top actions are ordered by urgency: open P1/P2 incidents, budgets over their limit, negative
ROI, compliance gaps of production models, then the next maturity step of production models.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from keel.domain.delivery import DoraMetrics
from keel.domain.incidents import Incident, ResponseTimes, response_times
from keel.domain.registry import Model, Team
from keel.domain.value import month_bounds
from keel.errors import KeelError
from keel.services.compliance import ComplianceDocuments, Gap
from keel.services.delivery import Delivery
from keel.services.incidents import Incidents
from keel.services.maturity import MaturityScore, MaturityScoring
from keel.services.registry import Registry
from keel.services.value import CostFigures, MonthRoi, Value
from keel.store.sql.incidents import MAX_LIST

MAX_ACTIONS = 10


@dataclass(frozen=True)
class ProductionModel:
    model: str
    team: str
    risk_tier: str
    version: int


@dataclass(frozen=True)
class IncidentSummary:
    opened: int
    by_severity: Mapping[str, int]
    times: ResponseTimes
    open_at_month_end: int


@dataclass(frozen=True)
class CostSummary:
    total: Decimal | None
    budgets: tuple[Mapping[str, Any], ...]
    note: str


@dataclass(frozen=True)
class ModelGaps:
    model: str
    version: int
    gaps: tuple[Gap, ...]


@dataclass(frozen=True)
class MonthReport:
    month: str
    generated_at: datetime
    production: tuple[ProductionModel, ...]
    incidents: IncidentSummary
    costs: CostSummary
    value: tuple[MonthRoi, ...]
    dora: DoraMetrics
    dora_by_team: tuple[DoraMetrics, ...]
    maturity: tuple[MaturityScore, ...]
    compliance: tuple[ModelGaps, ...]
    actions: tuple[str, ...]

    @property
    def production_by_tier(self) -> dict[str, int]:
        return dict(sorted(Counter(p.risk_tier for p in self.production).items()))

    def maturity_distribution(self, scale: str) -> dict[int, int]:
        levels = Counter(getattr(s, scale).level for s in self.maturity)
        return dict(sorted(levels.items()))


def plain(value: Any) -> Any:
    """A budget row (whatever the cost source returns) as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):
        return plain(value.model_dump())
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class ExecutiveReports:
    """Builds the report of a month."""

    def __init__(
        self,
        registry: Registry,
        incidents: Incidents,
        value: Value,
        delivery: Delivery,
        maturity: MaturityScoring,
        compliance: ComplianceDocuments,
        costs: CostFigures | None = None,
    ) -> None:
        self.registry = registry
        self.incidents = incidents
        self.value = value
        self.delivery = delivery
        self.maturity = maturity
        self.compliance = compliance
        self.costs = costs

    def month(self, month: str) -> MonthReport:
        """Everything the issue's executive report lists, for ``month`` (YYYY-MM)."""
        start, end = month_bounds(month)
        teams = self._teams()
        models = [m for t in teams for m in self.maturity.team_models(t.name)]
        production = self._production(models, end)
        incidents = self._incidents(start, end)
        value = tuple(roi for m in models if (roi := self._roi(m.name, month)) is not None)
        costs = self._costs(month)
        dora = self.delivery.metrics(start=start, end=end)
        by_team = tuple(self.delivery.metrics(team=t.name, start=start, end=end) for t in teams)
        now = datetime.now(UTC)
        live = {p.model for p in production}
        maturity = tuple(self.maturity.score_model(m.name, now=now) for m in models)
        compliance = tuple(
            ModelGaps(p.model, p.version, doc.gaps)
            for p in production
            if (doc := self.compliance.technical_documentation(p.model, p.version)).gaps
        )
        actions = _actions(incidents, costs, value, compliance, maturity, live)
        summary = IncidentSummary(
            opened=len(incidents),
            by_severity=dict(sorted(Counter(str(i.severity) for i in incidents).items())),
            times=response_times(incidents),
            open_at_month_end=sum(
                1 for i in incidents if i.resolved_at is None or i.resolved_at >= end
            ),
        )
        return MonthReport(
            month=month,
            generated_at=now,
            production=production,
            incidents=summary,
            costs=costs,
            value=value,
            dora=dora,
            dora_by_team=by_team,
            maturity=maturity,
            compliance=compliance,
            actions=actions,
        )

    def _teams(self) -> list[Team]:
        return sorted(self.maturity.all_teams(), key=lambda t: t.name)

    def _production(self, models: Sequence[Model], end: datetime) -> tuple[ProductionModel, ...]:
        found = []
        for m in models:
            history = self.delivery.history(model=m.name)
            moves = [(d.at, d.version) for d in history.deployments] + [
                (r.at, r.to_version) for r in history.rollbacks
            ]
            before = [move for move in moves if move[0] < end]
            if before:
                version = max(before)[1]
                found.append(ProductionModel(m.name, m.team, str(m.risk_tier), version))
        return tuple(found)

    def _incidents(self, start: datetime, end: datetime) -> list[Incident]:
        every = self.incidents.list(limit=MAX_LIST)
        return [i for i in every if start <= i.opened_at < end]

    def _roi(self, model: str, month: str) -> MonthRoi | None:
        try:
            return self.value.month(model, month)
        except KeelError:  # no value model: the model is listed among the actions instead
            return None

    def _costs(self, month: str) -> CostSummary:
        if self.costs is None:
            return CostSummary(None, (), "cost unknown: no cost source is connected")
        budgets = tuple(plain(b) for b in self.costs.budget_status(month))
        return CostSummary(self.costs.month_cost(month), budgets, "")


def _actions(
    incidents: Sequence[Incident],
    costs: CostSummary,
    value: Sequence[MonthRoi],
    compliance: Sequence[ModelGaps],
    maturity: Sequence[MaturityScore],
    live: set[str],
) -> tuple[str, ...]:
    actions = [
        f"Resolve {i.severity} incident #{i.id} on {i.model}: {i.title}"
        for i in incidents
        if i.resolved_at is None and str(i.severity) in ("P1", "P2")
    ]
    for budget in costs.budgets:
        status = str(budget.get("status", budget.get("state", ""))).lower()
        if status in ("over", "exceeded", "over_budget"):
            shown = ", ".join(f"{k} {v}" for k, v in budget.items() if k != "status")
            actions.append(f"Bring spend back under budget: {shown}")
    actions += [
        f"{r.model} returned {r.roi:.0%} in {r.month}: review its cost or its value model"
        for r in value
        if r.roi is not None and r.roi < 0
    ]
    priced = {r.model for r in value}
    actions += [
        f"Set a value model for {model} (keel value set {model}), so its ROI can be reported"
        for model in sorted(live - priced)
    ]
    actions += [
        f"Close {len(g.gaps)} compliance gap(s) of {g.model} v{g.version}: {g.gaps[0].fix}"
        for g in compliance
    ]
    for score in maturity:
        if score.subject in live and score.google.next_needs:
            criterion = next(
                r for r in score.results if r.criterion.id == score.google.next_needs[0]
            )
            actions.append(
                f"Raise {score.subject} to Google level {score.google.level + 1}: "
                f"{criterion.criterion.next_step}"
            )
    return tuple(actions[:MAX_ACTIONS])
