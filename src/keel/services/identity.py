"""Who is calling: users and service accounts, their roles, their tokens, and the first admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, PrincipalKind, Role, authorize
from keel.domain.tokens import TokenInfo, hint, new_token, token_digest
from keel.errors import InvalidInput, PermissionDenied, Unauthenticated
from keel.store.sql.identity import SqlIdentityStore

BOOTSTRAP_ADMIN = "admin"
# Recorded as the actor of what Keel does by itself (the first admin, at first start).
SYSTEM = Principal("keel-system", PrincipalKind.SERVICE)


class Identity:
    def __init__(self, store: SqlIdentityStore) -> None:
        self.store = store

    def authenticate(self, token: str | None) -> Principal:
        """The principal behind a bearer token; `Unauthenticated` for anything else."""
        if not token:
            raise Unauthenticated(
                "This needs an API token: send 'Authorization: Bearer <token>' "
                "(keel tokens create; the first admin token is in <data dir>/admin-token)."
            )
        principal, _ = self.store.authenticate(token_digest(token))
        return principal

    def create_principal(self, by: Principal, name: str, kind: PrincipalKind) -> Principal:
        authorize(by, Permission.ADMIN)
        return self.store.create_principal(check_name(name, "name"), kind, by.name)

    def list_principals(self, by: Principal) -> list[Principal]:
        authorize(by, Permission.ADMIN)
        return self.store.list_principals()

    def grant(self, by: Principal, name: str, role: Role, team: str | None) -> Principal:
        authorize(by, Permission.ADMIN)
        return self.store.grant(name, role, team, by.name)

    def create_token(
        self,
        by: Principal,
        *,
        principal: str | None = None,
        name: str = "default",
        expires_in_days: int | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token for ``principal`` (default: the caller). Returned once, never again."""
        owner = principal or by.name
        if owner != by.name:
            authorize(by, Permission.ADMIN)
        if expires_in_days is not None and expires_in_days <= 0:
            raise InvalidInput(
                f"expires_in_days must be > 0. Got {expires_in_days} instead.",
                {"field": "expires_in_days"},
            )
        expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        token, digest = new_token()
        info = self.store.create_token(owner, name, digest, hint(token), expires, by.name)
        return token, info

    def list_tokens(self, by: Principal, principal: str | None = None) -> list[TokenInfo]:
        """Admins see every token (or one principal's); others see their own."""
        if by.is_admin:
            return self.store.list_tokens(principal)
        if principal not in (None, by.name):
            authorize(by, Permission.ADMIN)
        return self.store.list_tokens(by.name)

    def revoke_token(self, by: Principal, token_id: int) -> TokenInfo:
        info = self.store.get_token(token_id)
        if info.principal != by.name and not by.is_admin:
            raise PermissionDenied(
                "Only the token's owner or an admin may revoke it.", {"token": token_id}
            )
        return self.store.revoke_token(token_id, by.name)

    def bootstrap_admin(self) -> str | None:
        """On an empty store: create the first admin and return its token (else None)."""
        if self.store.count_principals() > 0:
            return None
        self.store.create_principal(BOOTSTRAP_ADMIN, PrincipalKind.USER, SYSTEM.name)
        self.store.grant(BOOTSTRAP_ADMIN, Role.ADMIN, None, SYSTEM.name)
        token, digest = new_token()
        self.store.create_token(
            BOOTSTRAP_ADMIN, "bootstrap", digest, hint(token), None, SYSTEM.name
        )
        return token
