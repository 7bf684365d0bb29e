"""The audit trail's promise, checked as an operator would: a real `keel up`, the `keel` command,
and the `sqlite3` tool editing the database behind the server's back. `keel audit verify` must
notice an edited event, a deleted last event, a chain rewritten with freshly computed hashes,
and, against the latest signed checkpoint, every tampering pattern of `tests/audit_forgery.py`."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from tests.audit_forgery import SIX_PATTERNS, Tampering, truncate_to_before
from tests.running_keel import KEEL, Server, keel_up

from keel.config import ADMIN_TOKEN_FILE
from keel.domain.audit import event_hash
from keel.store.audit_checkpoints import create_key


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with keel_up(tmp_path) as running:
        yield running


def register_a_model(server: Server) -> None:
    model_file = server.workdir / "model.bin"
    model_file.write_bytes(b"weights of a very small model")
    server.ok("teams", "create", "risk")
    server.ok("models", "create", "churn", "--team", "risk", "--owner", "ana")
    server.ok("versions", "register", "churn", str(model_file), "--metric", "auc=0.91")


def test_an_edited_audit_row_is_caught_by_keel_audit_verify(server: Server) -> None:
    token = (server.data_dir / ADMIN_TOKEN_FILE).read_text().strip()
    assert token.startswith("keel_")
    assert json.loads(server.ok("whoami"))["name"] == "admin"  # found through KEEL_HOME
    register_a_model(server)
    actions = [(e["actor"], e["action"]) for e in json.loads(server.ok("audit", "log"))]
    assert actions[-4:] == [
        ("admin", "team.create"),
        ("admin", "model.create"),
        ("admin", "artifact.scan"),
        ("admin", "version.register"),
    ]

    intact = server.keel("audit", "verify")
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert intact.stdout.startswith("intact: 7 events, head 7:")

    server.sqlite3("""UPDATE audit_events SET details = '{"tampered": true}' WHERE seq = 3""")

    tampered = server.keel("audit", "verify")
    assert tampered.returncode != 0
    assert "seq 3" in tampered.stdout
    assert "edited" in tampered.stdout
    assert token not in tampered.stdout + tampered.stderr


def test_a_deleted_last_row_is_caught(server: Server) -> None:
    server.ok("teams", "create", "risk")
    assert server.keel("audit", "verify").returncode == 0

    server.sqlite3("DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)")

    result = server.keel("audit", "verify")
    assert result.returncode != 0
    assert "seq 4" in result.stdout
    assert "deleted" in result.stdout


def rewrite_chain(database: Path, from_seq: int, details: dict[str, object]) -> None:
    """What a careful forger does: edit one event, then recompute every hash from there on,
    the head included, so the chain is consistent again."""
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute(
            "UPDATE audit_events SET details = ? WHERE seq = ?", (json.dumps(details), from_seq)
        )
        rows = db.execute(
            "SELECT seq, at, actor, action, subject_type, subject_id, details, prev_hash "
            "FROM audit_events WHERE seq >= ? ORDER BY seq",
            (from_seq,),
        ).fetchall()
        prev_hash = rows[0][7]
        for seq, at, actor, action, subject_type, subject_id, raw, _ in rows:
            digest = event_hash(
                prev_hash,
                seq=seq,
                at=datetime.fromisoformat(at).replace(tzinfo=UTC),
                actor=actor,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                details=json.loads(raw),
            )
            db.execute(
                "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?",
                (prev_hash, digest, seq),
            )
            prev_hash = digest
        db.execute("UPDATE audit_head SET hash = ?", (prev_hash,))


def test_a_rewritten_chain_is_caught_against_an_earlier_anchor(server: Server) -> None:
    server.ok("teams", "create", "risk")
    anchor = server.ok("audit", "head").strip()
    assert anchor.startswith("4:")
    server.ok("teams", "create", "growth")

    rewrite_chain(server.database, 4, {"description": "nothing to see"})

    # Consistent again as a chain, but the forger has no audit key to sign event 4 with.
    alone = server.keel("audit", "verify")
    assert alone.returncode == 1
    assert "seq 4" in alone.stdout and "(forged)" in alone.stdout
    result = server.keel("audit", "verify", "--anchor", anchor)
    assert result.returncode != 0
    assert "seq 4" in result.stdout
    assert "rewritten" in result.stdout


def checkpoint(server: Server) -> dict[str, object]:
    taken: dict[str, object] = json.loads(server.ok("audit", "checkpoint", "--json"))
    return taken


def tamper(server: Server, pattern: Tampering) -> tuple[int, str]:
    engine = create_engine(f"sqlite:///{server.database}")
    try:
        return pattern(engine)
    finally:
        engine.dispose()


def checkpoint_file(server: Server) -> Path:
    return server.data_dir / "audit-checkpoints" / "audit-checkpoints.jsonl"


def test_a_checkpoint_is_signed_and_kept_outside_the_database(server: Server) -> None:
    register_a_model(server)
    assert server.ok("audit", "checkpoint").startswith("checkpoint at event 7:")
    kept = json.loads(checkpoint_file(server).read_text().splitlines()[-1])
    assert kept["seq"] == 7 and len(kept["signature"]) == 64
    intact = server.ok("audit", "verify")
    assert intact.startswith("intact: 7 events, head 7:")
    assert "signed checkpoint at event 7" in intact
    key = (server.data_dir / "audit-key").read_text().strip()
    assert len(key) == 64 and os.stat(server.data_dir / "audit-key").st_mode & 0o777 == 0o600
    assert key not in server.ok("audit", "log", "--json") + checkpoint_file(server).read_text()


PATTERNS = {**SIX_PATTERNS, "truncate after a checkpoint": truncate_to_before(6)}


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_every_tampering_pattern_is_caught_against_the_latest_checkpoint(
    server: Server, pattern: str
) -> None:
    register_a_model(server)
    assert checkpoint(server)["seq"] == 7
    if pattern == "truncate after a checkpoint":
        server.ok("teams", "create", "growth")  # event 8, after the checkpoint

    broken_seq, kind = tamper(server, PATTERNS[pattern])

    result = server.keel("audit", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"NOT intact ({kind})" in result.stdout
    assert f"breaks at seq {broken_seq}:" in result.stdout
    verdict = json.loads(server.keel("audit", "verify", "--json").stdout)
    assert (verdict["broken_seq"], verdict["kind"], verdict["checkpoint_seq"]) == (
        broken_seq,
        kind,
        7,
    )


def test_a_hand_edited_checkpoint_file_is_caught(server: Server) -> None:
    register_a_model(server)
    checkpoint(server)
    lines = checkpoint_file(server).read_text().splitlines()
    newest = json.loads(lines[-1])
    # Backdating the newest checkpoint to event 5 would hide deleting events 6 and 7.
    lines[-1] = json.dumps({**newest, "seq": 5, "hash": "0" * 64})
    checkpoint_file(server).write_text("\n".join(lines) + "\n")

    result = server.keel("audit", "verify")
    assert result.returncode == 1
    assert "NOT intact (bad-checkpoint)" in result.stdout
    assert "bad signature" in result.stdout and "checkpoint file was edited" in result.stdout
    refused = server.keel("audit", "checkpoint")
    assert refused.returncode == 1
    assert "No checkpoint written" in refused.stdout + refused.stderr


def test_another_audit_key_is_named_not_mistaken_for_tampering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with keel_up(tmp_path) as first:
        register_a_model(first)
        checkpoint(first)
    other = tmp_path / "other-audit-key"
    create_key(other)
    monkeypatch.setenv("KEEL_AUDIT_KEY_FILE", str(other))
    with keel_up(tmp_path) as second:  # the same data directory, another key
        result = second.keel("audit", "verify")
    assert result.returncode == 1
    assert "NOT intact (wrong-key)" in result.stdout
    assert "KEEL_AUDIT_KEY_FILE" in result.stdout
    assert other.read_text().strip() not in result.stdout + "".join(second.log)


@pytest.mark.parametrize("content", [None, "0123"])
def test_keel_up_refuses_a_missing_or_bad_key_file_in_one_line(
    tmp_path: Path, content: str | None
) -> None:
    key_file = tmp_path / "audit-key"
    if content is not None:
        key_file.write_text(content)
    env = {**os.environ, "KEEL_AUDIT_KEY_FILE": str(key_file)}
    started = subprocess.run(
        [str(KEEL), "up", "--data-dir", str(tmp_path / "data"), "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 1
    said = started.stdout + started.stderr
    assert f"The audit key file {key_file}" in said.replace("\n", "")
    assert "KEEL_AUDIT_KEY_FILE" in said
    assert "Traceback" not in said
