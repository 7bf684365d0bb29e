"""API tokens: created (shown once), listed (never shown again), revoked."""

from __future__ import annotations

from fastapi import APIRouter

from keel.api.deps import Authenticated, IdentityDep
from keel.api.routers import API_PREFIX
from keel.domain.tokens import TokenInfo
from keel.schemas import TokenCreated, TokenIn, TokenOut

router = APIRouter(prefix=f"{API_PREFIX}/tokens", tags=["identity"])


def token_out(info: TokenInfo) -> TokenOut:
    return TokenOut(
        id=info.id,
        principal=info.principal,
        name=info.name,
        hint=info.hint,
        created_at=info.created_at,
        expires_at=info.expires_at,
        revoked_at=info.revoked_at,
        last_used_at=info.last_used_at,
    )


@router.post("", status_code=201, summary="Create a token (yours; admins may name a principal)")
def create_token(body: TokenIn, identity: IdentityDep, caller: Authenticated) -> TokenCreated:
    token, info = identity.create_token(
        caller, principal=body.principal, name=body.name, expires_in_days=body.expires_in_days
    )
    return TokenCreated(token=token, info=token_out(info))


@router.get("", summary="List tokens (yours; admins see all, or one principal's)")
def list_tokens(
    identity: IdentityDep, caller: Authenticated, principal: str | None = None
) -> list[TokenOut]:
    return [token_out(t) for t in identity.list_tokens(caller, principal)]


@router.delete("/{token_id}", summary="Revoke a token (its owner or an admin)")
def revoke_token(token_id: int, identity: IdentityDep, caller: Authenticated) -> TokenOut:
    return token_out(identity.revoke_token(caller, token_id))
