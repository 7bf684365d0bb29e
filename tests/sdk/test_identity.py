"""Users, roles and tokens from Python: who may do what, and tokens that stop working."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from keel.domain.permissions import PrincipalKind, Role
from keel.domain.tokens import hint, new_token
from keel.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from keel.schemas import GrantSpec, TokenCreated
from keel.sdk import Client
from keel.services.backend import Backend

Connect = Callable[[str], Client]


@pytest.fixture
def connect(server_transport: httpx.BaseTransport) -> Iterator[Connect]:
    """A client holding ``token``, against the same in-process server; closed afterwards."""
    opened: list[Client] = []

    def open_client(token: str) -> Client:
        client = Client(url="http://testserver", token=token, transport=server_transport)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture
def teams(keel: Client) -> None:
    keel.create_team("risk")
    keel.create_team("growth")
    keel.create_model("churn", team="risk", owner="ana")
    keel.create_model("upsell", team="growth", owner="bob")


def member(keel: Client, name: str, role: Role, team: str | None) -> str:
    """A new user holding ``role`` in ``team``, and a token for it."""
    keel.create_user(name)
    keel.grant(name, role, team)
    return keel.create_token("test", principal=name).token


def test_whoami_names_the_first_admin(keel: Client) -> None:
    me = keel.whoami()
    assert (me.name, me.kind, me.grants) == (
        "admin",
        PrincipalKind.USER,
        [GrantSpec(role=Role.ADMIN)],
    )


def test_create_users_and_grant_roles(keel: Client, teams: None) -> None:
    ana = keel.create_user("ana")
    ci = keel.create_user("ci-pipeline", kind="service")
    assert (ana.kind, ana.grants) == (PrincipalKind.USER, [])
    assert ci.kind == PrincipalKind.SERVICE

    keel.grant("ana", "contributor", "risk")
    granted = keel.grant("ana", Role.VIEWER, team="growth")

    assert granted.grants == [
        GrantSpec(role=Role.CONTRIBUTOR, team="risk"),
        GrantSpec(role=Role.VIEWER, team="growth"),
    ]
    assert [u.name for u in keel.list_users()] == ["admin", "ana", "ci-pipeline"]
    with pytest.raises(Conflict):
        keel.create_user("ana")
    with pytest.raises(NotFound):
        keel.grant("nobody", "viewer", "risk")


def test_role_and_team_rules_are_checked(keel: Client, teams: None) -> None:
    keel.create_user("ana")
    with pytest.raises(InvalidInput, match="role"):
        keel.grant("ana", "owner", "risk")  # checked before anything is sent
    with pytest.raises(InvalidInput, match="global"):
        keel.grant("ana", "admin", "risk")
    with pytest.raises(InvalidInput, match="needs a team"):
        keel.grant("ana", "viewer")
    with pytest.raises(InvalidInput, match="kind"):
        keel.create_user("bob", kind="robot")


def test_a_viewer_may_read_but_not_create_a_model(
    keel: Client, teams: None, connect: Connect
) -> None:
    viewer = connect(member(keel, "vic", Role.VIEWER, "risk"))
    assert [m.name for m in viewer.list_models()] == ["churn", "upsell"]
    with pytest.raises(PermissionDenied, match="contributor"):
        viewer.create_model("fraud", team="risk", owner="vic")
    assert [m.name for m in keel.list_models()] == ["churn", "upsell"]


def test_a_contributor_registers_versions_only_for_their_teams_models(
    keel: Client, teams: None, connect: Connect, tmp_path: Path
) -> None:
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    ana = connect(member(keel, "ana", Role.CONTRIBUTOR, "risk"))

    assert ana.register_version("churn", artifact, capture_git=False).created_by == "ana"
    with pytest.raises(PermissionDenied, match="growth"):
        ana.register_version("upsell", artifact, capture_git=False)
    assert list(keel.list_versions("upsell")) == []


def test_non_admins_may_not_manage_users_or_read_the_audit_trail(
    keel: Client, teams: None, connect: Connect
) -> None:
    ana = connect(member(keel, "ana", Role.APPROVER, "risk"))
    assert ana.whoami().name == "ana"
    with pytest.raises(PermissionDenied):
        ana.create_user("mallory")
    with pytest.raises(PermissionDenied):
        ana.grant("ana", "admin")
    with pytest.raises(PermissionDenied):
        ana.list_users()
    with pytest.raises(PermissionDenied):
        next(ana.audit_log())
    with pytest.raises(PermissionDenied):
        ana.audit_verify()


def test_a_new_token_works_and_is_shown_only_once(keel: Client, connect: Connect) -> None:
    keel.create_user("ci", kind="service")
    created = keel.create_token("deploy", principal="ci", expires_in_days=30)

    assert isinstance(created, TokenCreated)
    assert created.token.startswith("keel_")
    assert (created.info.principal, created.info.name) == ("ci", "deploy")
    assert created.info.expires_at is not None
    assert timedelta(days=29) < created.info.expires_at - datetime.now(UTC) <= timedelta(days=30)
    assert created.token not in repr(created)
    assert created.token not in str(created)
    assert created.model_dump()["token"] == created.token  # what --json prints, on purpose

    assert connect(created.token).whoami().name == "ci"
    listed = keel.list_tokens("ci")
    assert [(t.id, t.name, t.hint) for t in listed] == [
        (created.info.id, "deploy", created.token[:9] + "…")
    ]
    assert created.token not in "".join(t.model_dump_json() for t in keel.list_tokens())


def test_everyone_lists_and_creates_only_their_own_tokens(keel: Client, connect: Connect) -> None:
    keel.create_user("ana")
    ana = connect(keel.create_token(principal="ana").token)
    ana.create_token("laptop")
    assert [t.name for t in ana.list_tokens()] == ["default", "laptop"]
    with pytest.raises(PermissionDenied):
        ana.list_tokens("admin")
    with pytest.raises(PermissionDenied):
        ana.create_token(principal="admin")
    admin_token = keel.list_tokens("admin")[0]
    with pytest.raises(PermissionDenied):
        ana.revoke_token(admin_token.id)


def test_a_revoked_token_is_refused(keel: Client, connect: Connect) -> None:
    keel.create_user("ana")
    created = keel.create_token(principal="ana")
    ana = connect(created.token)
    assert ana.whoami().name == "ana"

    revoked = ana.revoke_token(created.info.id)  # an owner may revoke their own

    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated) as refused:
        ana.whoami()
    assert created.token not in str(refused.value)
    assert keel.revoke_token(created.info.id).revoked_at == revoked.revoked_at  # idempotent


def test_an_expired_token_is_refused(keel: Client, keel_backend: Backend, connect: Connect) -> None:
    keel.create_user("ana")
    token, digest = new_token()
    keel_backend.identity.store.create_token(
        "ana", "old", digest, hint(token), datetime.now(UTC) - timedelta(seconds=1), "admin"
    )
    with pytest.raises(Unauthenticated, match="expired"):
        connect(token).whoami()


def test_unknown_or_missing_tokens_are_refused(connect: Connect) -> None:
    with pytest.raises(Unauthenticated):
        connect("keel_not-a-real-token").whoami()
    with pytest.raises(Unauthenticated, match="admin-token"):
        list(connect("").list_teams())  # "" sends no token at all


def test_token_arguments_are_checked_before_sending(keel: Client) -> None:
    with pytest.raises(InvalidInput, match="expires_in_days"):
        keel.create_token(expires_in_days=0)
    with pytest.raises(InvalidInput, match="name"):
        keel.create_token("")
