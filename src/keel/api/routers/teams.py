"""Teams own models; roles are granted per team."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from keel.api import convert
from keel.api.deps import Admin, Reader, RegistryDep
from keel.api.routers import API_PREFIX
from keel.schemas import Page, TeamIn, TeamOut

router = APIRouter(prefix=f"{API_PREFIX}/teams", tags=["teams"])


@router.post("", status_code=201, summary="Create a team")
def create_team(body: TeamIn, registry: RegistryDep, caller: Admin) -> TeamOut:
    return convert.team_out(registry.create_team(caller, body.name, body.description))


@router.get("", summary="List teams")
def list_teams(
    registry: RegistryDep,
    _: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[TeamOut]:
    page = registry.list_teams(cursor=cursor, limit=limit)
    return Page[TeamOut](
        items=[convert.team_out(t) for t in page.items], next_cursor=page.next_cursor
    )
