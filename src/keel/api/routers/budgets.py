"""Budgets per model, team or portfolio: set them, read their status and forecast, check them."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from keel.api.deps import Approver, Reader, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.costs import Budget, BudgetStatus, micros_to_decimal
from keel.schemas.base import Id
from keel.schemas.costs import BudgetAlertOut, BudgetIn, BudgetOut, BudgetStatusOut, ForecastOut
from keel.services.backend import Backend
from keel.services.costs import CostService

router = APIRouter(prefix=API_PREFIX, tags=["budgets"])
Month = Annotated[str, Query(description="YYYY-MM", pattern=r"^\d{4}-\d{2}$")]
AsOf = Annotated[
    date | None, Query(description="The day to judge the month at (default: today, UTC).")
]


def get_costs(backend: Annotated[Backend, Depends(get_backend)]) -> CostService:
    return backend.costs


CostsDep = Annotated[CostService, Depends(get_costs)]


def budget_out(b: Budget) -> BudgetOut:
    return BudgetOut(
        id=b.id,
        scope=str(b.scope),
        target=b.target,
        amount=micros_to_decimal(b.amount_micros),
        thresholds=list(b.thresholds),
        created_by=b.created_by,
    )


def status_out(s: BudgetStatus) -> BudgetStatusOut:
    f = s.forecast
    return BudgetStatusOut(
        budget=budget_out(s.budget),
        month=s.month,
        spent=s.spent,
        forecast=ForecastOut(
            method=f.method,
            point=f.point,
            low=f.low,
            high=f.high,
            backtest_mape=f.backtest_mape,
            history_days=f.history_days,
        ),
        thresholds_crossed=list(s.thresholds_crossed),
        forecast_over_budget=s.forecast_over_budget,
        alerts=list(s.alerts),
    )


@router.get("/budgets", summary="Every budget")
def list_budgets(costs: CostsDep, _: Reader) -> list[BudgetOut]:
    return [budget_out(b) for b in costs.budgets()]


@router.put(
    "/budgets",
    summary="Set a monthly budget (a model's or team's: its team's approvers; portfolio: admins)",
)
def put_budget(body: BudgetIn, costs: CostsDep, caller: Approver) -> BudgetOut:
    return budget_out(
        costs.set_budget(caller, body.scope, body.target, body.amount, body.thresholds)
    )


@router.delete("/budgets/{budget_id}", summary="Delete a budget")
def delete_budget(budget_id: Id, costs: CostsDep, caller: Approver) -> BudgetOut:
    return budget_out(costs.delete_budget(caller, budget_id))


@router.get("/budgets/status", summary="Spend, month-end forecast and thresholds of each budget")
def budget_status(
    costs: CostsDep, _: Reader, month: Month, as_of: AsOf = None
) -> list[BudgetStatusOut]:
    return [status_out(s) for s in costs.budget_status(month, as_of=as_of)]


@router.post(
    "/budgets/check",
    summary="Raise the month's new budget alerts: an incident and a budget.* webhook, once each",
)
def check_budgets(
    costs: CostsDep, _: Approver, month: Month, as_of: AsOf = None
) -> list[BudgetAlertOut]:
    return [
        BudgetAlertOut(
            budget_id=a.budget.id,
            month=a.month,
            signal=a.signal,
            event_type=a.event_type,
            incident_id=a.incident_id,
        )
        for a in costs.check_budgets(month, as_of=as_of)
    ]
