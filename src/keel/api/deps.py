"""Dependencies shared by the routers: the backend, the registry and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from keel.domain.permissions import Permission
from keel.services.backend import Backend
from keel.services.registry import Registry


@dataclass(frozen=True)
class Caller:
    name: str


def get_backend(request: Request) -> Backend:
    backend = request.app.state.backend
    assert isinstance(backend, Backend)
    return backend


def get_registry(backend: Annotated[Backend, Depends(get_backend)]) -> Registry:
    return backend.registry


class Requires:
    """Declares the permission a route needs; the route-table test fails on routes without one.

    Until identity and tokens land, every caller is allowed and is named by the optional
    ``X-Keel-Actor`` header (recorded in alias history and version ``created_by``).
    """

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(
        self, x_keel_actor: Annotated[str | None, Header(max_length=256)] = None
    ) -> Caller:
        return Caller(name=(x_keel_actor or "").strip() or "anonymous")


def requires(permission: Permission) -> Requires:
    return Requires(permission)


RegistryDep = Annotated[Registry, Depends(get_registry)]
Reader = Annotated[Caller, Depends(requires(Permission.READ))]
Writer = Annotated[Caller, Depends(requires(Permission.WRITE))]
Admin = Annotated[Caller, Depends(requires(Permission.ADMIN))]
Public = Annotated[Caller, Depends(requires(Permission.PUBLIC))]
