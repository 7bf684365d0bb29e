"""`keel whoami|users|tokens` as an admin sets a team up, and as its members then use Keel."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from keel.cli import registry
from keel.cli.main import app
from keel.config import ADMIN_TOKEN_FILE
from keel.sdk import Client

Keel = Callable[..., Result]
TOKEN = re.compile(r"keel_[A-Za-z0-9_-]{20,}")


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def failed(result: Result, code: int = 1) -> Result:
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def risk(keel_cli: Keel) -> str:
    ok(keel_cli("teams", "create", "risk"))
    return "risk"


def token_for(keel_cli: Keel, user: str) -> str:
    return ok(keel_cli("tokens", "create", "--user", user)).stdout.strip()


def test_whoami_shows_the_admin(keel_cli: Keel) -> None:
    me = json.loads(ok(keel_cli("whoami")).stdout)
    assert me == {"name": "admin", "kind": "user", "grants": [{"role": "admin", "team": None}]}


def test_users_create_with_a_role_then_list_and_grant(keel_cli: Keel, risk: str) -> None:
    ok(keel_cli("teams", "create", "growth"))
    created = json.loads(
        ok(keel_cli("users", "create", "ana", "--role", "contributor", "--team", risk)).stdout
    )
    assert created["grants"] == [{"role": "contributor", "team": "risk"}]
    service = json.loads(ok(keel_cli("users", "create", "ci", "--service")).stdout)
    assert (service["kind"], service["grants"]) == ("service", [])

    granted = json.loads(ok(keel_cli("users", "grant", "ana", "viewer", "--team", "growth")).stdout)
    assert granted["grants"][-1] == {"role": "viewer", "team": "growth"}
    ok(keel_cli("users", "grant", "ci", "admin"))

    listed = json.loads(ok(keel_cli("users", "list")).stdout)
    assert [(u["name"], u["kind"], len(u["grants"])) for u in listed] == [
        ("admin", "user", 1),
        ("ana", "user", 2),
        ("ci", "service", 1),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--team", "risk"], "--team needs --role"),
        (["--role", "viewer"], "needs a --team"),
        (["--role", "admin", "--team", "risk"], "admin is global"),
        (["--role", "owner", "--team", "risk"], "owner"),
    ],
)
def test_users_create_refuses_a_bad_role_before_creating_anyone(
    keel_cli: Keel, risk: str, args: list[str], message: str
) -> None:
    result = failed(keel_cli("users", "create", "ana", *args))
    assert message in result.stderr
    assert [u["name"] for u in json.loads(ok(keel_cli("users", "list")).stdout)] == ["admin"]


def test_users_create_says_when_the_grant_failed_after_creating(keel_cli: Keel) -> None:
    result = failed(keel_cli("users", "create", "ana", "--role", "viewer", "--team", "nope"))
    assert result.stderr.strip() == (
        "Error: Created 'ana', but could not grant it viewer: No team named 'nope'."
    )
    assert result.stdout == ""


def test_users_grant_errors_are_one_line(keel_cli: Keel, risk: str) -> None:
    result = failed(keel_cli("users", "grant", "nobody", "viewer", "--team", risk))
    assert result.stderr.strip() == "Error: No user or service account named 'nobody'."


def test_tokens_create_prints_the_token_alone_on_stdout(keel_cli: Keel) -> None:
    ok(keel_cli("users", "create", "ci", "--service"))
    result = ok(keel_cli("tokens", "create", "--user", "ci", "--name", "deploy"))

    token = result.stdout.strip()
    assert TOKEN.fullmatch(token)
    assert result.stdout == token + "\n"
    assert "Created token 2 ('deploy') for ci, no expiry" in result.stderr
    assert "only time it is shown" in result.stderr
    assert json.loads(ok(keel_cli("--token", token, "whoami")).stdout)["name"] == "ci"


def test_tokens_create_json_has_the_token_and_its_details(keel_cli: Keel) -> None:
    created = json.loads(
        ok(keel_cli("tokens", "create", "--name", "laptop", "--expires-in-days", "7", "--json"))
        .stdout
    )  # fmt: skip
    assert TOKEN.fullmatch(created["token"])
    info = created["info"]
    assert (info["principal"], info["name"], info["revoked_at"]) == ("admin", "laptop", None)
    assert info["expires_at"] is not None
    assert failed(keel_cli("tokens", "create", "--expires-in-days", "0"))


def test_tokens_list_shows_hints_never_tokens(keel_cli: Keel) -> None:
    ok(keel_cli("users", "create", "ana"))
    token = token_for(keel_cli, "ana")
    listed = ok(keel_cli("tokens", "list", "--user", "ana"))
    assert token not in listed.stdout
    rows = json.loads(listed.stdout)
    assert [(t["principal"], t["name"], t["hint"]) for t in rows] == [
        ("ana", "default", token[:9] + "…")
    ]
    assert "token" not in rows[0]
    assert len(json.loads(ok(keel_cli("tokens", "list")).stdout)) == 2  # the admin sees all


def test_a_revoked_token_stops_working(keel_cli: Keel) -> None:
    ok(keel_cli("users", "create", "ana"))
    token = token_for(keel_cli, "ana")
    token_id = json.loads(ok(keel_cli("tokens", "list", "--user", "ana")).stdout)[0]["id"]

    revoked = json.loads(ok(keel_cli("--token", token, "tokens", "revoke", str(token_id))).stdout)

    assert revoked["revoked_at"] is not None
    refused = failed(keel_cli("--token", token, "whoami"))
    assert refused.stderr.strip() == (
        "Error: The API token is not valid: it is unknown, expired or revoked."
    )
    assert token not in refused.output


def test_a_viewer_may_list_but_not_create_models(keel_cli: Keel, risk: str) -> None:
    ok(keel_cli("users", "create", "vic", "--role", "viewer", "--team", risk))
    viewer = token_for(keel_cli, "vic")
    assert json.loads(ok(keel_cli("--token", viewer, "models", "list")).stdout) == []
    refused = failed(
        keel_cli("--token", viewer, "models", "create", "fraud", "--team", risk, "--owner", "vic")
    )
    assert refused.stderr.startswith("Error: 'vic' may not write")
    assert "contributor" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert failed(keel_cli("--token", viewer, "users", "list")).stderr.startswith("Error: ")


def test_a_contributor_registers_only_in_their_own_team(
    keel_cli: Keel, risk: str, tmp_path: Path
) -> None:
    ok(keel_cli("teams", "create", "growth"))
    ok(keel_cli("models", "create", "churn", "--team", risk, "--owner", "ana"))
    ok(keel_cli("models", "create", "upsell", "--team", "growth", "--owner", "bob"))
    ok(keel_cli("users", "create", "ana", "--role", "contributor", "--team", risk))
    ana = token_for(keel_cli, "ana")
    model_file = tmp_path / "model.bin"
    model_file.write_bytes(b"weights")

    ok(keel_cli("--token", ana, "versions", "register", "churn", str(model_file)))
    refused = failed(keel_cli("--token", ana, "versions", "register", "upsell", str(model_file)))

    assert "'ana' may not write in team 'growth'" in refused.stderr
    assert json.loads(ok(keel_cli("versions", "list", "upsell")).stdout) == []


def test_with_no_token_the_cli_uses_the_admin_token_file_of_keel_home(
    server_transport: httpx.BaseTransport,
    admin_token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ADMIN_TOKEN_FILE).write_text(admin_token + "\n")
    monkeypatch.setenv("KEEL_HOME", str(home))
    monkeypatch.delenv("KEEL_TOKEN", raising=False)

    def connect(url: str | None, token: str | None) -> Client:
        # The real factory's behaviour, with the in-process server behind the given URL.
        return Client(url=url, token=token, transport=server_transport)

    monkeypatch.setattr(registry, "client_factory", connect)
    runner = CliRunner()

    local = runner.invoke(app, ["--url", "http://127.0.0.1:8420", "whoami"])
    assert local.exit_code == 0, local.output
    assert json.loads(local.stdout)["name"] == "admin"
    remote = runner.invoke(app, ["--url", "http://keel.internal:8420", "whoami"])
    assert remote.exit_code == 1
    assert "This needs an API token" in remote.stderr
