"""Wire models for costs and budgets. Money travels as decimal strings, never floats."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field

from keel.schemas.base import WireIn, WireOut


class CostImportOut(WireOut):
    id: int
    sha256: str
    filename: str
    format: str
    rows: int
    effective_cost: Decimal
    first_day: date | None
    last_day: date | None
    imported_by: str
    replayed: bool = Field(description="True when this file was imported before: nothing added.")


class AllocationOut(WireOut):
    model: str | None
    team: str | None
    pool: str
    source: str = Field(description="direct (tags), split (a pool's rule) or unallocated")
    amount: Decimal
    reason: str = ""


class MeteredOut(WireOut):
    kind: str
    amount: Decimal


class MonthCostOut(WireOut):
    month: str
    currency: str
    model: str | None
    team: str | None
    total: Decimal = Field(description="Bills allocated to the scope plus Keel's metering.")
    bills_total: Decimal
    bills_allocated: Decimal
    bills_unallocated: Decimal
    metered_total: Decimal
    allocations: list[AllocationOut]
    metered: list[MeteredOut]


class CostSettingsIn(WireIn):
    model_tag: str | None = None
    team_tag: str | None = None
    pool_tag: str | None = None
    currency: str | None = None
    vcpu_hour: Decimal | None = None
    gpu_hour: Decimal | None = None
    gb_month: Decimal | None = None
    per_thousand_predictions: Decimal | None = None


class SplitRuleIn(WireIn):
    rule: str | None = Field(
        description="predictions, compute_seconds or even; null leaves the pool unallocated."
    )


class UnitCostOut(WireOut):
    model: str
    version: int | None
    day: date
    predictions: int
    cost_per_thousand_predictions: Decimal | None


class TrainingRunCostOut(WireOut):
    model: str
    day: date
    vcpu_hours: Decimal
    cost: Decimal


class BudgetIn(WireIn):
    scope: str = Field(description="model, team or portfolio")
    target: str | None = Field(default=None, description="The model or team; none for portfolio.")
    amount: Decimal = Field(description="Per month, in the server's currency.")
    thresholds: list[int] | None = Field(
        default=None, description="Percentages; default 50/80/100."
    )


class BudgetOut(WireOut):
    id: int
    scope: str
    target: str
    amount: Decimal
    thresholds: list[int]
    created_by: str


class ForecastOut(WireOut):
    method: str
    point: Decimal
    low: Decimal
    high: Decimal
    backtest_mape: float | None = Field(description="Percent error on the held-out last 7 days.")
    history_days: int


class BudgetStatusOut(WireOut):
    budget: BudgetOut
    month: str
    spent: Decimal
    forecast: ForecastOut
    thresholds_crossed: list[int]
    forecast_over_budget: bool
    alerts: list[str]


class BudgetAlertOut(WireOut):
    budget_id: int
    month: str
    signal: str
    event_type: str
    incident_id: int | None


class WasteFindingOut(WireOut):
    kind: str
    subject: str
    detail: str
    monthly_cost: Decimal
    fix: str


class GcIn(WireIn):
    dry_run: bool = True
    retention_days: int = Field(default=7, ge=0, le=3650)


class GcBlobOut(WireOut):
    sha256: str
    size: int


class GcOut(WireOut):
    dry_run: bool
    retention_days: int
    deleted: list[GcBlobOut] = Field(description="Deleted, or with dry_run what would be.")
    bytes: int
    kept_recent: int = Field(description="Unreferenced blobs younger than the retention period.")
