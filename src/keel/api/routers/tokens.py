"""API tokens: created (shown once), listed (never shown again), revoked."""

from __future__ import annotations

from fastapi import APIRouter

from keel.api import convert
from keel.api.deps import Authenticated, IdentityDep
from keel.api.routers import API_PREFIX
from keel.schemas import TokenCreated, TokenIn, TokenOut
from keel.schemas.base import Id

router = APIRouter(prefix=f"{API_PREFIX}/tokens", tags=["identity"])


@router.post("", status_code=201, summary="Create a token (yours; admins may name a principal)")
def create_token(body: TokenIn, identity: IdentityDep, caller: Authenticated) -> TokenCreated:
    token, info = identity.create_token(
        caller, principal=body.principal, name=body.name, expires_in_days=body.expires_in_days
    )
    return TokenCreated(token=token, info=convert.token_out(info))


@router.get("", summary="List tokens (yours; admins see all, or one principal's)")
def list_tokens(
    identity: IdentityDep, caller: Authenticated, principal: str | None = None
) -> list[TokenOut]:
    return [convert.token_out(t) for t in identity.list_tokens(caller, principal)]


@router.delete("/{token_id}", summary="Revoke a token (its owner or an admin)")
def revoke_token(token_id: Id, identity: IdentityDep, caller: Authenticated) -> TokenOut:
    return convert.token_out(identity.revoke_token(caller, token_id))
