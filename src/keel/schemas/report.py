"""Wire model of the monthly executive report (its JSON form)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from keel.schemas.base import WireOut
from keel.schemas.delivery import DoraOut
from keel.schemas.value import MonthRoiOut


class ProductionModelOut(WireOut):
    model: str
    team: str
    risk_tier: str
    version: int


class IncidentSummaryOut(WireOut):
    opened: int
    by_severity: dict[str, int]
    mtta_seconds: float | None
    mttr_seconds: float | None
    open_at_month_end: int


class CostSummaryOut(WireOut):
    total: str | None = Field(description="Decimal string; None when the cost is unknown.")
    budgets: list[dict[str, Any]] = Field(description="As the cost source reports them.")
    note: str


class ModelLevelOut(WireOut):
    model: str
    google: int
    microsoft: int


class MaturitySummaryOut(WireOut):
    google: dict[str, int] = Field(description="Models per Google level.")
    microsoft: dict[str, int] = Field(description="Models per Microsoft level.")
    models: list[ModelLevelOut]


class ComplianceGapOut(WireOut):
    model: str
    version: int
    key: str
    missing: str
    fix: str


class ReportOut(WireOut):
    month: str
    generated_at: datetime
    production: list[ProductionModelOut]
    production_by_tier: dict[str, int]
    incidents: IncidentSummaryOut
    costs: CostSummaryOut
    value: list[MonthRoiOut]
    dora: DoraOut
    dora_by_team: list[DoraOut]
    maturity: MaturitySummaryOut
    compliance_gaps: list[ComplianceGapOut]
    actions: list[str]
