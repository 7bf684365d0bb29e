"""The portfolio (home page): tiles, then every model's morning facts, filtered, sorted and
paginated through GET parameters. The rows come from `PortfolioService`, as `GET
/api/v1/portfolio` does."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from keel.domain.lifecycle import VersionStatus
from keel.domain.registry import RiskTier
from keel.errors import InvalidInput
from keel.services.backend import Backend
from keel.services.portfolio import SORTS, PortfolioPage, PortfolioQuery
from keel.web.problem import problem_page
from keel.web.rendering import NO_STORE, templates
from keel.web.session import Reader, get_backend

router = APIRouter(include_in_schema=False)

COLUMNS = (
    ("name", "Model"),
    ("team", "Team"),
    ("owner", "Owner"),
    ("risk_tier", "Risk tier"),
    ("production", "In production"),
    (None, "Health"),
    ("incidents", "Open incidents"),
    (None, "Cost this month"),
    (None, "Value and ROI"),
    ("versions", "Newest candidate"),
)


def _link(query: PortfolioQuery, **changes: object) -> str:
    """The URL of the portfolio with ``query`` changed by ``changes`` (defaults left out)."""
    params: dict[str, object] = {
        "team": query.team,
        "tier": query.risk_tier,
        "status": query.status,
        "sort": query.sort,
        "order": "desc" if query.descending else "asc",
        "page": query.page,
        "per_page": query.per_page,
    }
    params.update(changes)
    defaults = {"sort": "name", "order": "asc", "page": 1, "per_page": 50}
    kept = {k: str(v) for k, v in params.items() if v is not None and defaults.get(k) != v}
    return "/" + ("?" + urlencode(kept) if kept else "")


def _sort_link(query: PortfolioQuery, column: str) -> str:
    descending = query.sort == column and not query.descending
    return _link(query, sort=column, order="desc" if descending else "asc", page=1)


@router.get("/", response_class=HTMLResponse)
def portfolio(
    request: Request,
    principal: Reader,
    backend: Annotated[Backend, Depends(get_backend)],
    team: str | None = None,
    tier: str | None = None,
    status: str | None = None,
    sort: str | None = None,
    order: str | None = None,
    page: str | None = None,
    per_page: str | None = None,
) -> HTMLResponse:
    try:
        query = PortfolioQuery.parse(
            team=team,
            tier=tier,
            status=status,
            sort=sort,
            order=order,
            page=page,
            per_page=per_page,
        )
    except InvalidInput as error:
        return problem_page(request, principal.name, error)
    found: PortfolioPage = backend.portfolio.page(query)
    context = {
        "principal": principal.name,
        "found": found,
        "query": query,
        "columns": COLUMNS,
        "sorts": SORTS,
        "tiers": [str(t) for t in RiskTier],
        "statuses": [str(s) for s in VersionStatus],
        "link": lambda **changes: _link(query, **changes),
        "sort_link": lambda column: _sort_link(query, column),
    }
    response: HTMLResponse = templates.TemplateResponse(
        request, "portfolio.html", context, headers=NO_STORE
    )
    return response
