"""Costs and value: a month's spend by model and team against budgets with the month-end
forecast band, unallocated spend, cost per 1,000 predictions, value and ROI, and waste
findings; from the costs and value services, each read once for the whole portfolio."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import plotly.graph_objects as go
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from keel.domain.costs import BudgetStatus, micros_to_decimal, parse_month
from keel.errors import InvalidInput
from keel.services.backend import Backend
from keel.services.costs.portfolio import portfolio_spend
from keel.services.costs.waste import find_waste
from keel.web.charts import chart, chart_scripts
from keel.web.flash import render
from keel.web.session import Reader, get_backend

router = APIRouter(include_in_schema=False)

BackendDep = Annotated[Backend, Depends(get_backend)]


def _budget_chart(statuses: list[BudgetStatus], currency: str) -> Markup:
    names = [s.budget.name for s in statuses]
    figure = go.Figure()
    figure.add_bar(x=names, y=[float(s.spent) for s in statuses], name="spent so far")
    figure.add_scatter(
        x=names,
        y=[float(s.forecast.point) for s in statuses],
        mode="markers",
        name="month-end forecast (band: low to high)",
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [float(s.forecast.high - s.forecast.point) for s in statuses],
            "arrayminus": [float(s.forecast.point - s.forecast.low) for s in statuses],
        },
    )
    figure.add_scatter(
        x=names,
        y=[float(s.amount) for s in statuses],
        mode="markers",
        marker={"symbol": "line-ew-open", "size": 28},
        name="budget",
    )
    figure.update_layout(yaxis_title=currency, legend={"orientation": "h"})
    return chart(
        figure,
        label="Spend against budgets, with the month-end forecast",
        columns=["Budget", "Spent", "Forecast", "Forecast low", "Forecast high", "Budget"],
        rows=[
            [s.budget.name, s.spent, s.forecast.point, s.forecast.low, s.forecast.high, s.amount]
            for s in statuses
        ],
    )


@router.get("/costs", response_class=HTMLResponse)
def costs(
    request: Request,
    principal: Reader,
    backend: BackendDep,
    month: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    month = month.strip() or datetime.now(UTC).strftime("%Y-%m")
    context: dict[str, Any] = {"principal": principal.name, "month": month}
    try:
        start, end = parse_month(month)
    except InvalidInput as bad:
        context["error"] = bad.message
        return render(request, "costs.html", context, status=422)
    service = backend.costs
    spend = portfolio_spend(service, start, end)
    teams_of = {m.name: m.team for m in service.store.models()}
    model_costs = {m: micros_to_decimal(v) for m, v in spend.by_model.items()}
    values = {roi.model: roi for roi in backend.value.portfolio_month(month, model_costs)}
    statuses = service.budget_status(month)
    retention: dict[str, int | None] = dict(backend.telemetry.store.retention_by_model())
    waste = find_waste(service, backend.engine, backend.registry.artifacts, retention)
    models = sorted(set(teams_of) & (set(spend.by_model) | set(values)) or set(spend.by_model))
    context |= {
        "currency": service.settings()["currency"],
        "total": micros_to_decimal(spend.total),
        "unallocated": micros_to_decimal(spend.unallocated),
        "teams": sorted(
            ((team, micros_to_decimal(m)) for team, m in spend.by_team.items()),
            key=lambda row: (-row[1], row[0]),
        ),
        "models": [
            {
                "name": name,
                "team": teams_of.get(name, ""),
                "spent": micros_to_decimal(spend.by_model.get(name, 0)),
                "predictions": spend.predictions.get(name, 0),
                "per_thousand": spend.per_thousand_predictions(name),
                "roi": values.get(name),
            }
            for name in models
        ],
        "budgets": statuses,
        "budget_chart": _budget_chart(statuses, service.settings()["currency"])
        if statuses
        else None,
        "chart_scripts": chart_scripts() if statuses else None,
        "waste": waste,
        "waste_total": sum((f.monthly_cost for f in waste), Decimal(0)),
    }
    return render(request, "costs.html", context)
