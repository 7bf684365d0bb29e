"""Registered models: create, find, read and edit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from keel.api import convert
from keel.api.deps import Reader, RegistryDep, Writer
from keel.api.routers import API_PREFIX
from keel.domain.lifecycle import VersionStatus
from keel.domain.registry import ModelQuery
from keel.schemas import ModelIn, ModelOut, ModelPatch, Page

router = APIRouter(prefix=f"{API_PREFIX}/models", tags=["models"])


@router.post("", status_code=201, summary="Register a model")
def create_model(body: ModelIn, registry: RegistryDep, caller: Writer) -> ModelOut:
    return convert.model_out(registry.create_model(caller, convert.model_in(body)))


@router.get("", summary="List models, filtered and paginated by cursor")
def list_models(
    registry: RegistryDep,
    _: Reader,
    team: str | None = None,
    tag: str | None = None,
    status: Annotated[
        VersionStatus | None, Query(description="Models having a version in this status.")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=256, description="Text in name, description or use case.")
    ] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[ModelOut]:
    page = registry.list_models(
        ModelQuery(team=team, tag=tag, status=status, text=q), cursor=cursor, limit=limit
    )
    return Page[ModelOut](
        items=[convert.model_out(m) for m in page.items], next_cursor=page.next_cursor
    )


@router.get("/{name}", summary="Show a model")
def get_model(name: str, registry: RegistryDep, _: Reader) -> ModelOut:
    return convert.model_out(registry.get_model(name))


@router.patch("/{name}", summary="Change a model's team, owner, description, use case or tags")
def update_model(name: str, body: ModelPatch, registry: RegistryDep, caller: Writer) -> ModelOut:
    return convert.model_out(registry.update_model(caller, name, convert.model_changes(body)))
