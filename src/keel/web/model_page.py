"""A model's page: its versions, aliases, lineage, card, deployment, charts over time,
incidents and compliance documents; every fact read through the services the API uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from keel.domain.registry import ModelVersion
from keel.errors import InvalidInput, NotFound
from keel.services.backend import Backend
from keel.services.compliance import MEDIA_TYPES, document_headers
from keel.web.charts import chart_scripts
from keel.web.model_charts import cost_chart, money_chart, monitoring_charts
from keel.web.problem import problem_page
from keel.web.rendering import NO_STORE, templates
from keel.web.session import Reader, get_backend

router = APIRouter(include_in_schema=False)

VERSIONS_SHOWN = 100
INCIDENTS_SHOWN = 50
CHART_DAYS = 30
DEPLOYMENTS_SHOWN = 5
MONTHS_SHOWN = 3


def last_months(now: datetime, count: int) -> list[str]:
    """The ``count`` months up to ``now``'s, oldest first, as YYYY-MM.

    >>> last_months(datetime(2026, 2, 10), 3)
    ['2025-12', '2026-01', '2026-02']
    """
    year, month = now.year, now.month
    found = []
    for _ in range(count):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return found[::-1]


def parse_version(raw: str) -> int:
    """A version number from a URL; `InvalidInput` naming it otherwise."""
    if not raw.isdigit() or not 1 <= int(raw) < 2**63:
        raise InvalidInput(
            f"The version in the address must be a whole number >= 1. Got {raw!r} instead.",
            {"field": "version"},
        )
    return int(raw)


def _card_version(versions: tuple[ModelVersion, ...]) -> ModelVersion | None:
    """The version whose card the page shows: production's, else the newest."""
    return next((v for v in versions if "production" in v.aliases), None) or (
        versions[0] if versions else None
    )


def _money(backend: Backend, model: str, now: datetime) -> object:
    months = last_months(now, MONTHS_SHOWN)
    if backend.value.store.value_model(model) is not None:
        return money_chart(model, backend.value.series(model, months))
    costs = [(m, float(backend.costs.month_cost(m, model=model))) for m in months]
    return cost_chart(model, costs)


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(
    request: Request,
    name: str,
    principal: Reader,
    backend: Annotated[Backend, Depends(get_backend)],
) -> HTMLResponse:
    try:
        owner = backend.registry.get_model(name)
    except (InvalidInput, NotFound) as error:
        return problem_page(request, principal.name, error)
    now = datetime.now(UTC)
    versions = backend.registry.list_versions(owner.name, limit=VERSIONS_SHOWN)
    deployments = backend.deployments.list(owner.name)[:DEPLOYMENTS_SHOWN]
    points = backend.monitoring.series(owner.name, since=now - timedelta(days=CHART_DAYS))
    context = {
        "principal": principal.name,
        "model": owner,
        "versions": versions.items,
        "more_versions": versions.next_cursor is not None,
        "aliases": backend.registry.alias_history(owner.name),
        "card_version": _card_version(versions.items),
        "deployments": deployments,
        "serving": backend.deployments.serving_plan(owner.name),
        "charts": monitoring_charts(owner.name, points),
        "chart_days": CHART_DAYS,
        "money": _money(backend, owner.name, now),
        "incidents": backend.incidents.list(model=owner.name, limit=INCIDENTS_SHOWN),
        "formats": sorted(MEDIA_TYPES),
        "chart_scripts": chart_scripts,
    }
    response: HTMLResponse = templates.TemplateResponse(
        request, "model.html", context, headers=NO_STORE
    )
    return response


@router.get("/models/{name}/documents")
def model_document(
    request: Request,
    name: str,
    principal: Reader,
    backend: Annotated[Backend, Depends(get_backend)],
    version: str | None = None,
    format: str = "html",
) -> Response:
    """The compliance document the API's ``/documents`` route exports, for a signed-in browser
    (the API takes a bearer token, which a link cannot send)."""
    try:
        number = None if not version else parse_version(version)
        if format not in MEDIA_TYPES:
            raise InvalidInput(
                f"The 'format' parameter must be one of {', '.join(sorted(MEDIA_TYPES))}. "
                f"Got {format!r} instead.",
                {"field": "format"},
            )
        document = backend.compliance.technical_documentation(name, number)
    except (InvalidInput, NotFound) as error:
        return problem_page(request, principal.name, error)
    body = backend.compliance.render(document, format)
    filename = f"{document.model}-v{document.version}-technical-documentation.{format}"
    return Response(
        content=body,
        media_type=MEDIA_TYPES[format],
        headers={
            **NO_STORE,
            **document_headers(format),
            "Content-Disposition": f'inline; filename="{filename}"',
        },
    )
