"""The role rule, as a table: who may do what, in which team."""

from __future__ import annotations

import pytest

from keel.domain.permissions import Grant, Permission, Principal, Role, allows, authorize
from keel.errors import PermissionDenied

P = Permission
VIEWER = Principal("v", grants=(Grant(Role.VIEWER, "risk"),))
CONTRIBUTOR = Principal("c", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
APPROVER = Principal("a", grants=(Grant(Role.APPROVER, "risk"), Grant(Role.VIEWER, "growth")))
ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
PREDICTOR = Principal("app", grants=(Grant(Role.PREDICTOR, "risk"),))
NOBODY = Principal("n")

CASES = [
    # principal, permission, team, allowed
    (NOBODY, P.AUTHENTICATED, None, True),
    (NOBODY, P.READ, None, False),
    (VIEWER, P.READ, "growth", True),  # reading is organisation-wide for role holders
    (VIEWER, P.WRITE, "risk", False),
    (CONTRIBUTOR, P.WRITE, "risk", True),
    (CONTRIBUTOR, P.WRITE, "growth", False),
    (CONTRIBUTOR, P.APPROVE, "risk", False),
    (APPROVER, P.APPROVE, "risk", True),
    (APPROVER, P.APPROVE, "growth", False),  # approvers approve only within their teams
    (APPROVER, P.WRITE, "growth", False),
    (APPROVER, P.ADMIN, None, False),
    (ADMIN, P.APPROVE, "anything", True),
    (ADMIN, P.ADMIN, None, True),
    # Predicting: a predictor (an application's service account) predicts in its team and does
    # nothing else; contributors and approvers predict too, viewers do not.
    (PREDICTOR, P.PREDICT, "risk", True),
    (PREDICTOR, P.PREDICT, "growth", False),
    (PREDICTOR, P.READ, None, False),
    (PREDICTOR, P.WRITE, "risk", False),
    (VIEWER, P.PREDICT, "risk", False),
    (CONTRIBUTOR, P.PREDICT, "risk", True),
    (APPROVER, P.PREDICT, "risk", True),
    (ADMIN, P.PREDICT, "anything", True),
]


@pytest.mark.parametrize(("principal", "permission", "team", "allowed"), CASES)
def test_role_table(
    principal: Principal, permission: Permission, team: str | None, allowed: bool
) -> None:
    assert allows(principal, permission, team) is allowed


def test_denial_names_the_role_and_team_needed() -> None:
    with pytest.raises(PermissionDenied) as caught:
        authorize(CONTRIBUTOR, P.WRITE, "growth")
    assert "'c' may not write in team 'growth'" in caught.value.message
    assert "'contributor' role" in caught.value.message


def test_a_denied_prediction_names_the_predictor_role() -> None:
    with pytest.raises(PermissionDenied) as caught:
        authorize(VIEWER, P.PREDICT, "risk")
    assert "'predictor' role" in caught.value.message
