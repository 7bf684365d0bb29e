"""Wire models of the portfolio: the tiles and one page of models with their morning facts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import ConfigDict, Field

from keel.schemas.base import WireOut


class _Read(WireOut):
    model_config = ConfigDict(extra="ignore", from_attributes=True)


class HealthOut(_Read):
    verdict: str = Field(
        description="healthy, watch, degraded, unfair, drifting, bad data, failing SLO or "
        "unmonitored."
    )
    reasons: list[str]


class RolloutOut(_Read):
    deployment_id: int
    strategy: str
    state: str
    candidate: int
    traffic: float | None = Field(description="The candidate's share of live traffic.")


class CandidateGatesOut(_Read):
    version: int
    status: str
    verdict: str = Field(
        description="not run, pending, failed, error, awaiting sign-off, passed or approved."
    )
    gates: dict[str, str]


class PortfolioRowOut(_Read):
    model: str
    team: str
    owner: str
    risk_tier: str
    latest_version: int
    production_version: int | None
    rollout: RolloutOut | None
    health: HealthOut
    open_incidents: dict[str, int] = Field(description="Open incidents by severity.")
    cost: Decimal = Field(description="Cost this month (allocated bills and Keel's metering).")
    budget: Decimal | None = Field(description="The model's monthly budget, if one is set.")
    value: float | None
    roi: float | None
    value_note: str
    candidate: CandidateGatesOut | None


class ForecastOut(_Read):
    method: str
    point: Decimal
    low: Decimal
    high: Decimal
    backtest_mape: float | None
    history_days: int


class SpendOut(_Read):
    month: str
    currency: str
    spent: Decimal
    budget: Decimal | None
    forecast: ForecastOut


class DoraTileOut(_Read):
    days: int
    deployments: int
    deployments_per_week: float
    frequency: str
    lead_time_hours: float | None
    change_failure_rate: float | None
    recovery_hours: float | None


class MaturityTileOut(_Read):
    levels: dict[int, int] = Field(description="Google MLOps level -> number of models.")
    computed_at: datetime


class TilesOut(_Read):
    in_production: int
    incidents_by_severity: dict[str, int]
    candidates_waiting: int
    spend: SpendOut
    dora: DoraTileOut
    maturity: MaturityTileOut


class PortfolioOut(WireOut):
    total: int = Field(description="Models matching the filters.")
    page: int
    per_page: int
    pages: int
    rows: list[PortfolioRowOut]
    tiles: TilesOut
