"""The whole portfolio's spend of a period at once: by model, by team, unallocated, and the cost
per 1,000 predictions of each model.

Each figure is the same sum `CostService.period_micros` makes for one model or team (allocated
bills plus Keel's metering), computed for every model and team from one reading of the period,
so a page or report of N models costs a fixed number of queries, not N.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from keel.domain.costs import AllocationSource
from keel.services.costs.metering import predictions_per_day
from keel.services.costs.service import CostService


@dataclass(frozen=True)
class PortfolioSpend:
    start: date
    end: date  # exclusive
    total: int  # micros: everything, unallocated included
    unallocated: int
    by_model: dict[str, int]
    by_team: dict[str, int]  # a model's spend counts toward its team, plus team-tagged bills
    predictions: dict[str, int]

    def per_thousand_predictions(self, model: str) -> Decimal | None:
        """The model's spend per 1,000 of its predictions in the period (None without any)."""
        served = self.predictions.get(model, 0)
        if served == 0:
            return None
        total = Decimal(self.by_model.get(model, 0)) / 1_000_000
        return (total * 1000 / served).quantize(Decimal("0.000001"))


def portfolio_spend(costs: CostService, start: date, end: date) -> PortfolioSpend:
    """Spend of start <= day < end for every model and team."""
    by_model: dict[str, int] = defaultdict(int)
    by_team: dict[str, int] = defaultdict(int)
    total = unallocated = 0
    for a in costs.allocations(start, end):
        total += a.micros
        if a.source == AllocationSource.UNALLOCATED:
            unallocated += a.micros
        if a.model is not None:
            by_model[a.model] += a.micros
        if a.team is not None:
            by_team[a.team] += a.micros
    for m in costs.metered(start, end):
        total += m.micros
        by_model[m.model] += m.micros
        by_team[m.team] += m.micros
    predictions: dict[str, int] = defaultdict(int)
    for (model, _, _), n in predictions_per_day(costs.store, start, end).items():
        predictions[model] += n
    return PortfolioSpend(
        start, end, total, unallocated, dict(by_model), dict(by_team), dict(predictions)
    )
