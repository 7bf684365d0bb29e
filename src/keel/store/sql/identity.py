"""Principals, their role grants and their API tokens, over SQLAlchemy Core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from keel.domain.permissions import Grant, Principal, PrincipalKind, Role
from keel.domain.tokens import TokenInfo, digests_match
from keel.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import api_tokens, principals, role_grants, teams

LAST_USED_RESOLUTION = timedelta(minutes=1)
_REFUSED = "The API token is not valid: it is unknown, expired or revoked."


def _now() -> datetime:
    return datetime.now(UTC)


class SqlIdentityStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def count_principals(self) -> int:
        with read_transaction(self._engine) as conn:
            return int(conn.execute(select(func.count()).select_from(principals)).scalar_one())

    # -- principals ----------------------------------------------------------------------------

    def _principal_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(principals).where(principals.c.name == name)).first()
        if row is None:
            raise NotFound(f"No user or service account named {name!r}.", {"principal": name})
        return row

    def _principal(self, conn: Connection, row: Any) -> Principal:
        grants = conn.execute(
            select(role_grants.c.role, teams.c.name)
            .select_from(role_grants.outerjoin(teams, teams.c.id == role_grants.c.team_id))
            .where(role_grants.c.principal_id == row.id)
            .order_by(role_grants.c.id)
        ).all()
        return Principal(
            name=row.name,
            kind=PrincipalKind(row.kind),
            grants=tuple(Grant(Role(g.role), g.name) for g in grants),
        )

    def create_principal(self, name: str, kind: PrincipalKind, actor: str) -> Principal:
        try:
            with write_transaction(self._engine) as conn:
                if conn.execute(select(principals.c.id).where(principals.c.name == name)).first():
                    raise Conflict(f"A principal named {name!r} already exists.", {"name": name})
                conn.execute(
                    principals.insert().values(
                        name=name, kind=str(kind), created_at=_now(), created_by=actor
                    )
                )
                audit.append(
                    conn,
                    actor=actor,
                    action="principal.create",
                    subject_type="principal",
                    subject_id=name,
                    details={"kind": str(kind)},
                )
                return self._principal(conn, self._principal_row(conn, name))
        except IntegrityError:
            raise Conflict(f"A principal named {name!r} already exists.", {"name": name}) from None

    def get_principal(self, name: str) -> Principal:
        with read_transaction(self._engine) as conn:
            return self._principal(conn, self._principal_row(conn, name))

    def list_principals(self) -> list[Principal]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(select(principals).order_by(principals.c.name)).all()
            return [self._principal(conn, r) for r in rows]

    def grant(self, name: str, role: Role, team: str | None, actor: str) -> Principal:
        if (role == Role.ADMIN) != (team is None):
            raise InvalidInput(
                "The admin role is global (give no team); every other role needs a team.",
                {"field": "team"},
            )
        with write_transaction(self._engine) as conn:
            row = self._principal_row(conn, name)
            team_id = None
            if team is not None:
                team_id = conn.execute(select(teams.c.id).where(teams.c.name == team)).scalar()
                if team_id is None:
                    raise InvalidInput(f"No team named {team!r}.", {"field": "team"})
            exists = conn.execute(
                select(role_grants.c.id).where(
                    role_grants.c.principal_id == row.id,
                    role_grants.c.role == str(role),
                    role_grants.c.team_id.is_(None)
                    if team_id is None
                    else role_grants.c.team_id == team_id,
                )
            ).first()
            if not exists:
                conn.execute(
                    role_grants.insert().values(
                        principal_id=row.id,
                        team_id=team_id,
                        role=str(role),
                        granted_by=actor,
                        granted_at=_now(),
                    )
                )
                audit.append(
                    conn,
                    actor=actor,
                    action="role.grant",
                    subject_type="principal",
                    subject_id=name,
                    details={"role": str(role), "team": team},
                )
            return self._principal(conn, row)

    # -- tokens --------------------------------------------------------------------------------

    @staticmethod
    def _token(row: Any, principal: str) -> TokenInfo:
        return TokenInfo(
            id=row.id,
            principal=principal,
            name=row.name,
            hint=row.hint,
            created_at=codec.utc(row.created_at),
            expires_at=codec.utc(row.expires_at) if row.expires_at else None,
            revoked_at=codec.utc(row.revoked_at) if row.revoked_at else None,
            last_used_at=codec.utc(row.last_used_at) if row.last_used_at else None,
        )

    def create_token(
        self,
        principal: str,
        name: str,
        digest: str,
        hint: str,
        expires_at: datetime | None,
        actor: str,
    ) -> TokenInfo:
        with write_transaction(self._engine) as conn:
            row = self._principal_row(conn, principal)
            token_id = conn.execute(
                api_tokens.insert()
                .values(
                    principal_id=row.id,
                    name=name,
                    digest=digest,
                    hint=hint,
                    created_at=_now(),
                    expires_at=expires_at,
                )
                .returning(api_tokens.c.id)
            ).scalar_one()
            audit.append(
                conn,
                actor=actor,
                action="token.create",
                subject_type="token",
                subject_id=str(token_id),
                details={
                    "principal": principal,
                    "name": name,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
            created = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).one()
            return self._token(created, principal)

    def list_tokens(self, principal: str | None) -> list[TokenInfo]:
        stmt = (
            select(api_tokens, principals.c.name.label("principal_name"))
            .join(principals, principals.c.id == api_tokens.c.principal_id)
            .order_by(api_tokens.c.id)
        )
        if principal is not None:
            stmt = stmt.where(principals.c.name == principal)
        with read_transaction(self._engine) as conn:
            return [self._token(r, r.principal_name) for r in conn.execute(stmt)]

    def get_token(self, token_id: int) -> TokenInfo:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(api_tokens, principals.c.name.label("principal_name"))
                .join(principals, principals.c.id == api_tokens.c.principal_id)
                .where(api_tokens.c.id == token_id)
            ).first()
        if row is None:
            raise NotFound(f"No token with id {token_id}.", {"token": token_id})
        return self._token(row, row.principal_name)

    def revoke_token(self, token_id: int, actor: str) -> TokenInfo:
        with write_transaction(self._engine) as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
            if row is None:
                raise NotFound(f"No token with id {token_id}.", {"token": token_id})
            if row.revoked_at is None:
                conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.id == token_id)
                    .values(revoked_at=_now(), revoked_by=actor)
                )
                audit.append(
                    conn,
                    actor=actor,
                    action="token.revoke",
                    subject_type="token",
                    subject_id=str(token_id),
                    details={"name": row.name},
                )
        return self.get_token(token_id)

    def authenticate(self, digest: str) -> tuple[Principal, TokenInfo]:
        """The principal a token digest belongs to, if the token is usable now."""
        moment = _now()
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(api_tokens, principals.c.name.label("principal_name"))
                .join(principals, principals.c.id == api_tokens.c.principal_id)
                .where(api_tokens.c.digest == digest)
            ).first()
            if row is None or not digests_match(digest, row.digest):
                raise Unauthenticated(_REFUSED)
            info = self._token(row, row.principal_name)
            if not info.usable_at(moment):
                raise Unauthenticated(_REFUSED)
            principal = self._principal(conn, self._principal_row(conn, row.principal_name))
        # Recorded to the minute: a write per request would queue every reader behind
        # SQLite's single writer.
        if info.last_used_at is None or moment - info.last_used_at > LAST_USED_RESOLUTION:
            with write_transaction(self._engine) as conn:
                conn.execute(
                    update(api_tokens).where(api_tokens.c.id == info.id).values(last_used_at=moment)
                )
        return principal, info
