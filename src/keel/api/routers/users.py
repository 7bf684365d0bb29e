"""Users and service accounts, and the roles they hold per team."""

from __future__ import annotations

from fastapi import APIRouter

from keel.api import convert
from keel.api.deps import Admin, Authenticated, IdentityDep
from keel.api.routers import API_PREFIX
from keel.schemas import GrantIn, PrincipalIn, PrincipalOut

router = APIRouter(prefix=f"{API_PREFIX}/users", tags=["identity"])


@router.post("", status_code=201, summary="Create a user or service account")
def create_user(body: PrincipalIn, identity: IdentityDep, caller: Admin) -> PrincipalOut:
    return convert.principal_out(identity.create_principal(caller, body.name, body.kind))


@router.get("", summary="List users and service accounts with their roles")
def list_users(identity: IdentityDep, caller: Admin) -> list[PrincipalOut]:
    return [convert.principal_out(p) for p in identity.list_principals(caller)]


@router.get("/me", summary="Who the presented token belongs to, and its roles")
def whoami(caller: Authenticated) -> PrincipalOut:
    return convert.principal_out(caller)


@router.post("/{name}/roles", summary="Grant a role in a team (admin is global: no team)")
def grant_role(name: str, body: GrantIn, identity: IdentityDep, caller: Admin) -> PrincipalOut:
    return convert.principal_out(identity.grant(caller, name, body.role, body.team))
