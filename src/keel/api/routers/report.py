"""The monthly executive report, as JSON, Markdown or one offline HTML page."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from keel.api.deps import Reader, get_backend
from keel.api.routers import API_PREFIX
from keel.api.routers.delivery import dora_out
from keel.api.routers.value import month_out
from keel.schemas.report import (
    ComplianceGapOut,
    CostSummaryOut,
    IncidentSummaryOut,
    MaturitySummaryOut,
    ModelLevelOut,
    ProductionModelOut,
    ReportOut,
)
from keel.services.backend import Backend
from keel.services.report import ExecutiveReports, MonthReport
from keel.services.report_render import render_html, render_markdown

router = APIRouter(prefix=API_PREFIX, tags=["report"])


def get_reports(backend: Annotated[Backend, Depends(get_backend)]) -> ExecutiveReports:
    return backend.reports


ReportsDep = Annotated[ExecutiveReports, Depends(get_reports)]


def report_out(r: MonthReport) -> ReportOut:
    times = r.incidents.times
    return ReportOut(
        month=r.month,
        generated_at=r.generated_at,
        production=[
            ProductionModelOut(model=p.model, team=p.team, risk_tier=p.risk_tier, version=p.version)
            for p in r.production
        ],
        production_by_tier=r.production_by_tier,
        incidents=IncidentSummaryOut(
            opened=r.incidents.opened,
            by_severity=dict(r.incidents.by_severity),
            mtta_seconds=times.mtta_seconds,
            mttr_seconds=times.mttr_seconds,
            open_at_month_end=r.incidents.open_at_month_end,
        ),
        costs=CostSummaryOut(
            total=None if r.costs.total is None else str(r.costs.total),
            budgets=[dict(b) for b in r.costs.budgets],
            note=r.costs.note,
        ),
        value=[month_out(v) for v in r.value],
        dora=dora_out(r.dora),
        dora_by_team=[dora_out(m) for m in r.dora_by_team],
        maturity=MaturitySummaryOut(
            google={str(k): v for k, v in r.maturity_distribution("google").items()},
            microsoft={str(k): v for k, v in r.maturity_distribution("microsoft").items()},
            models=[
                ModelLevelOut(model=s.subject, google=s.google.level, microsoft=s.microsoft.level)
                for s in r.maturity
            ],
        ),
        compliance_gaps=[
            ComplianceGapOut(
                model=g.model, version=g.version, key=gap.key, missing=gap.missing, fix=gap.fix
            )
            for g in r.compliance
            for gap in g.gaps
        ],
        actions=list(r.actions),
    )


@router.get(
    "/report",
    summary="The executive report of a month (JSON, Markdown, or offline HTML)",
    response_model=ReportOut,
    responses={200: {"content": {"text/markdown": {}, "text/html": {}}}},
)
def report(
    reports: ReportsDep,
    _: Reader,
    month: Annotated[str, Query(max_length=7, description="The month, YYYY-MM.")],
    format: Annotated[Literal["json", "md", "html"], Query()] = "json",
) -> ReportOut | Response:
    built = reports.month(month)
    if format == "md":
        return Response(render_markdown(built), media_type="text/markdown; charset=utf-8")
    if format == "html":
        return Response(render_html(built), media_type="text/html; charset=utf-8")
    return report_out(built)
