"""Dependencies shared by the routers: the backend, its services, and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from keel.domain.permissions import Permission, Principal, authorize
from keel.services.audit import AuditTrail
from keel.services.backend import Backend
from keel.services.identity import Identity
from keel.services.registry import Registry

ANONYMOUS = Principal("anonymous")
_bearer = HTTPBearer(auto_error=False, description="An API token from `keel tokens create`.")


def get_backend(request: Request) -> Backend:
    backend = request.app.state.backend
    assert isinstance(backend, Backend)
    return backend


def get_registry(backend: Annotated[Backend, Depends(get_backend)]) -> Registry:
    return backend.registry


def get_identity(backend: Annotated[Backend, Depends(get_backend)]) -> Identity:
    return backend.identity


def get_audit(backend: Annotated[Backend, Depends(get_backend)]) -> AuditTrail:
    return backend.audit


class Requires:
    """Declares the permission a route needs, and enforces it: 401 without a valid token, 403
    without the role. The route-table test fails on any route that declares none.

    Team-scoped permissions (write, approve) are checked here as "in some team"; the service
    checks again against the model's own team.
    """

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(
        self,
        backend: Annotated[Backend, Depends(get_backend)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if self.permission == Permission.PUBLIC:
            return ANONYMOUS
        principal = backend.identity.authenticate(credentials.credentials if credentials else None)
        authorize(principal, self.permission)
        return principal


def requires(permission: Permission) -> Requires:
    return Requires(permission)


RegistryDep = Annotated[Registry, Depends(get_registry)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
AuditDep = Annotated[AuditTrail, Depends(get_audit)]
Public = Annotated[Principal, Depends(requires(Permission.PUBLIC))]
Authenticated = Annotated[Principal, Depends(requires(Permission.AUTHENTICATED))]
Reader = Annotated[Principal, Depends(requires(Permission.READ))]
Writer = Annotated[Principal, Depends(requires(Permission.WRITE))]
Approver = Annotated[Principal, Depends(requires(Permission.APPROVE))]
Admin = Annotated[Principal, Depends(requires(Permission.ADMIN))]
