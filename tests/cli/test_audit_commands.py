"""`keel audit log|head|verify` as an admin checks who did what, and that nobody rewrote it."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import Result

from keel.services.backend import Backend

Keel = Callable[..., Result]
ANCHOR = re.compile(r"(\d+):([0-9a-f]{64})")


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def churn(keel_cli: Keel, tmp_path: Path) -> str:
    """Ana, a contributor of risk, registers churn and its first version: events 4 to 10
    (the artifact's security scan is one of them)."""
    ok(keel_cli("teams", "create", "risk"))
    ok(keel_cli("users", "create", "ana", "--role", "contributor", "--team", "risk"))
    ana = ok(keel_cli("tokens", "create", "--user", "ana")).stdout.strip()
    ok(keel_cli("--token", ana, "models", "create", "churn", "--team", "risk", "--owner", "ana"))
    model_file = tmp_path / "model.bin"
    model_file.write_bytes(b"weights")
    ok(keel_cli("--token", ana, "versions", "register", "churn", str(model_file)))
    return "churn"


def tamper(backend: Backend, statement: str) -> None:
    with backend.engine.begin() as conn:
        conn.execute(sa.text(statement))


def test_audit_log_shows_who_registered_what(keel_cli: Keel, churn: str) -> None:
    events = json.loads(ok(keel_cli("audit", "log", "--actor", "ana")).stdout)
    assert [(e["action"], e["subject_type"], e["subject_id"]) for e in events] == [
        ("model.create", "model", "churn"),
        ("artifact.scan", "artifact", hashlib.sha256(b"weights").hexdigest()),
        ("version.register", "model_version", "churn/1"),
    ]


def test_audit_log_filters(keel_cli: Keel, churn: str) -> None:
    def actions(*args: str) -> list[str]:
        return [e["action"] for e in json.loads(ok(keel_cli("audit", "log", *args)).stdout)]

    assert actions("--action", "model.create") == ["model.create"]
    assert actions("--subject", "principal:ana") == ["principal.create", "role.grant"]
    assert actions("--subject", "model_version") == ["version.register"]
    assert len(actions("--since", "2000-01-01")) == 10
    assert actions("--since", "2999-01-01T00:00:00+02:00") == []


def test_audit_log_limit_says_when_there_is_more(keel_cli: Keel, churn: str) -> None:
    result = ok(keel_cli("audit", "log", "--limit", "2"))
    assert [e["seq"] for e in json.loads(result.stdout)] == [1, 2]
    assert "Showing the first 2 matching events" in result.stderr
    everything = ok(keel_cli("audit", "log", "--limit", "10"))
    assert len(json.loads(everything.stdout)) == 10
    assert everything.stderr == ""


def test_audit_log_refuses_a_since_that_is_not_a_moment(keel_cli: Keel) -> None:
    result = keel_cli("audit", "log", "--since", "last tuesday")
    assert result.exit_code == 1
    assert "ISO 8601" in result.stderr


def test_audit_head_prints_the_anchor_alone(keel_cli: Keel, churn: str) -> None:
    head = ok(keel_cli("audit", "head")).stdout
    match = ANCHOR.fullmatch(head.strip())
    assert match is not None and head.endswith("\n")
    assert match.group(1) == "10"
    as_json = json.loads(ok(keel_cli("audit", "head", "--json")).stdout)
    assert as_json["anchor"] == head.strip()


def test_audit_verify_an_intact_trail(keel_cli: Keel, churn: str) -> None:
    anchor = ok(keel_cli("audit", "head")).stdout.strip()
    result = ok(keel_cli("audit", "verify"))
    assert result.stdout == f"intact: 10 events, head {anchor}\n"
    assert ok(keel_cli("audit", "verify", "--anchor", anchor)).stdout.startswith("intact: ")
    as_json = json.loads(ok(keel_cli("audit", "verify", "--json")).stdout)
    assert (as_json["intact"], as_json["checked"], as_json["broken_seq"]) == (True, 10, None)


def test_audit_verify_names_the_edited_event_and_exits_1(
    keel_cli: Keel, churn: str, keel_backend: Backend
) -> None:
    tamper(keel_backend, """UPDATE audit_events SET details = '{"tampered": true}' WHERE seq = 3""")
    result = keel_cli("audit", "verify")
    assert result.exit_code == 1
    assert result.stdout == (
        "NOT intact (edited): the audit trail breaks at seq 3: its content no longer matches its "
        "hash "
        "(edited); the 2 events before it check out\n"
    )
    as_json = json.loads(keel_cli("audit", "verify", "--json").stdout)
    assert (as_json["intact"], as_json["broken_seq"], as_json["kind"]) == (False, 3, "edited")


def test_audit_verify_notices_a_deleted_last_event(
    keel_cli: Keel, churn: str, keel_backend: Backend
) -> None:
    tamper(keel_backend, "DELETE FROM audit_events WHERE seq = 10")
    result = keel_cli("audit", "verify")
    assert result.exit_code == 1
    assert "breaks at seq 10" in result.stdout
    assert "deleted" in result.stdout


def test_audit_verify_refuses_a_malformed_anchor(keel_cli: Keel, churn: str) -> None:
    result = keel_cli("audit", "verify", "--anchor", "9")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: An anchor is SEQ:HASH")
    assert result.stdout == ""


def test_only_admins_read_the_audit_trail(keel_cli: Keel, churn: str) -> None:
    ok(keel_cli("users", "create", "vic"))
    vic = ok(keel_cli("tokens", "create", "--user", "vic")).stdout.strip()
    for command in (["log"], ["head"], ["verify"], ["checkpoint"]):
        result = keel_cli("--token", vic, "audit", *command)
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: 'vic' may not admin")


def test_audit_checkpoint_signs_the_head_and_verify_checks_against_it(
    keel_cli: Keel, churn: str, keel_backend: Backend
) -> None:
    anchor = ok(keel_cli("audit", "head")).stdout.strip()
    printed = ok(keel_cli("audit", "checkpoint")).stdout
    assert re.fullmatch(rf"checkpoint at event {anchor} \(\d{{4}}-.* UTC\), signed\n", printed)
    taken = json.loads(ok(keel_cli("audit", "checkpoint", "--json")).stdout)
    assert (taken["seq"], len(taken["signature"])) == (10, 64)
    assert ok(keel_cli("audit", "verify")).stdout.startswith(
        f"intact: 10 events, head {anchor}, signed checkpoint at event 10 ("
    )
    tamper(keel_backend, "DELETE FROM audit_events WHERE seq >= 9")
    tamper(
        keel_backend,
        "UPDATE audit_head SET seq = 8, hash = (SELECT hash FROM audit_events WHERE seq = 8)",
    )
    result = keel_cli("audit", "verify")
    assert result.exit_code == 1
    assert result.stdout.startswith("NOT intact (truncated): the audit trail breaks at seq 9: ")
    refused = keel_cli("audit", "checkpoint")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "Error: No checkpoint written: the audit trail breaks at seq 9"
    )
