"""The portfolio: tiles and a page of models with their morning facts (the dashboard's home)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from keel.api.deps import Reader, get_backend
from keel.api.routers import API_PREFIX
from keel.schemas.portfolio import PortfolioOut, PortfolioRowOut, TilesOut
from keel.services.backend import Backend
from keel.services.portfolio import SORTS, PortfolioQuery, PortfolioService

router = APIRouter(prefix=API_PREFIX, tags=["portfolio"])


def get_portfolio(backend: Annotated[Backend, Depends(get_backend)]) -> PortfolioService:
    return backend.portfolio


PortfolioDep = Annotated[PortfolioService, Depends(get_portfolio)]


@router.get("/portfolio", summary="The portfolio: tiles and one page of models")
def portfolio(
    service: PortfolioDep,
    _: Reader,
    team: str | None = None,
    tier: Annotated[str | None, Query(description="A risk tier.")] = None,
    status: Annotated[str | None, Query(description="Models having a version in it.")] = None,
    sort: Annotated[str | None, Query(description=f"One of {', '.join(SORTS)}.")] = None,
    order: Annotated[str | None, Query(description="asc or desc.")] = None,
    page: Annotated[str | None, Query(description="1 for the first page.")] = None,
    per_page: Annotated[str | None, Query(description="1 to 1000; 50 unless given.")] = None,
) -> PortfolioOut:
    # Parameters arrive as text and are checked by the service, so the API and the dashboard
    # refuse the same input with the same message.
    query = PortfolioQuery.parse(
        team=team, tier=tier, status=status, sort=sort, order=order, page=page, per_page=per_page
    )
    found = service.page(query)
    return PortfolioOut(
        total=found.total,
        page=query.page,
        per_page=query.per_page,
        pages=found.pages,
        rows=[PortfolioRowOut.model_validate(r) for r in found.rows],
        tiles=TilesOut.model_validate(found.tiles),
    )
