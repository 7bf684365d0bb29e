"""Who may do what: roles granted per team, the permissions routes declare, and the rule joining
them.

| role        | read all | write its team's models | approve in its team | manage teams, users |
|-------------|----------|-------------------------|---------------------|---------------------|
| viewer      | yes      |                         |                     |                     |
| contributor | yes      | yes                     |                     |                     |
| approver    | yes      | yes                     | yes                 |                     |
| admin       | yes      | every team              | every team          | yes (global role)   |

Prediction (the gateway's routes) needs ``predict`` in the model's team: contributors, approvers
and admins hold it, and so does ``predictor``, the role for the service accounts of applications
that call a model. A predictor reads nothing else and writes nothing, so an application's token
never carries write or approve rights. Viewers do not predict: a prediction costs compute and
writes telemetry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from keel.errors import PermissionDenied


class Permission(StrEnum):
    PUBLIC = "public"  # health, readiness and metrics only
    AUTHENTICATED = "authenticated"  # any valid token: one's own identity and tokens
    READ = "read"  # see models, versions, artifacts, aliases
    WRITE = "write"  # register models and versions, move aliases (in the model's team)
    APPROVE = "approve"  # sign off versions (in the model's team)
    ADMIN = "admin"  # manage teams, users, roles, others' tokens; read the audit trail
    PREDICT = "predict"  # call a deployed model through the gateway (in the model's team)


class Role(StrEnum):
    PREDICTOR = "predictor"  # prediction only: the service account of a calling application
    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    APPROVER = "approver"
    ADMIN = "admin"


class PrincipalKind(StrEnum):
    USER = "user"
    SERVICE = "service"


# A predictor ranks below a viewer: it reads nothing (see `_PREDICTORS` for what it may do).
_RANK = {Role.PREDICTOR: 0, Role.VIEWER: 1, Role.CONTRIBUTOR: 2, Role.APPROVER: 3, Role.ADMIN: 4}
_NEEDS = {
    Permission.READ: Role.VIEWER,
    Permission.WRITE: Role.CONTRIBUTOR,
    Permission.APPROVE: Role.APPROVER,
}
_PREDICTORS = frozenset({Role.PREDICTOR, Role.CONTRIBUTOR, Role.APPROVER, Role.ADMIN})


@dataclass(frozen=True)
class Grant:
    """``role`` in ``team``; admin is global and has ``team`` None."""

    role: Role
    team: str | None = None


@dataclass(frozen=True)
class Principal:
    name: str
    kind: PrincipalKind = PrincipalKind.USER
    grants: tuple[Grant, ...] = ()

    @property
    def is_admin(self) -> bool:
        return any(g.role == Role.ADMIN for g in self.grants)

    def role_in(self, team: str) -> Role | None:
        """The strongest role held in ``team`` (admin counts everywhere)."""
        roles = [g.role for g in self.grants if g.role == Role.ADMIN or g.team == team]
        return max(roles, key=_RANK.__getitem__, default=None)


def allows(principal: Principal, permission: Permission, team: str | None = None) -> bool:
    """Whether ``principal`` holds ``permission``, in ``team`` when it is team-scoped.

    Without ``team``, a team-scoped permission asks "in some team?" (used to turn away callers
    early); the service asks again with the model's team.

    >>> ana = Principal("ana", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
    >>> allows(ana, Permission.WRITE, "risk"), allows(ana, Permission.WRITE, "growth")
    (True, False)
    >>> allows(ana, Permission.READ, "growth"), allows(ana, Permission.ADMIN)
    (True, False)
    """
    if permission in (Permission.PUBLIC, Permission.AUTHENTICATED) or principal.is_admin:
        return True
    if permission == Permission.ADMIN:
        return False
    if permission == Permission.PREDICT:
        # Any grant in the team that predicts (a predictor who is also a viewer still may).
        return any(
            g.role in _PREDICTORS and (team is None or g.team == team) for g in principal.grants
        )
    needed = _RANK[_NEEDS[permission]]
    if permission == Permission.READ or team is None:
        return any(_RANK[g.role] >= needed for g in principal.grants)
    role = principal.role_in(team)
    return role is not None and _RANK[role] >= needed


def authorize(principal: Principal, permission: Permission, team: str | None = None) -> None:
    """Raise `PermissionDenied` naming what is missing unless `allows` says yes."""
    if allows(principal, permission, team):
        return
    where = f" in team {team!r}" if team else ""
    needed = {Permission.ADMIN: "admin", Permission.PREDICT: "predictor"}.get(permission) or (
        _NEEDS[permission].value
    )
    raise PermissionDenied(
        f"{principal.name!r} may not {permission.value}{where}: that needs the {needed!r} role"
        f"{where or ''}. Ask an admin for it (keel users grant).",
        {"permission": permission.value, "team": team, "needs": needed},
    )
