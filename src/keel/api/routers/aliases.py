"""Aliases (champion, challenger, ...) and the full history of which version held each."""

from __future__ import annotations

from fastapi import APIRouter, Response

from keel.api import convert
from keel.api.deps import Reader, RegistryDep, Writer
from keel.api.routers import API_PREFIX
from keel.schemas import AliasIn, AliasOut

router = APIRouter(prefix=API_PREFIX + "/models/{name}/aliases", tags=["aliases"])


@router.get("", summary="The aliases a model has now")
def current_aliases(name: str, registry: RegistryDep, _: Reader) -> list[AliasOut]:
    return [convert.alias_out(a) for a in registry.current_aliases(name)]


@router.get("/history", summary="Every period of every alias (or one), newest first")
def alias_history(
    name: str, registry: RegistryDep, _: Reader, alias: str | None = None
) -> list[AliasOut]:
    return [convert.alias_out(a) for a in registry.alias_history(name, alias)]


@router.put("/{alias}", summary="Point an alias at a version")
def set_alias(
    name: str, alias: str, body: AliasIn, registry: RegistryDep, caller: Writer
) -> AliasOut:
    return convert.alias_out(registry.set_alias(caller, name, alias, body.version))


@router.delete("/{alias}", status_code=204, summary="Remove an alias (its history is kept)")
def delete_alias(name: str, alias: str, registry: RegistryDep, caller: Writer) -> Response:
    registry.delete_alias(caller, name, alias)
    return Response(status_code=204)
