"""The audit trail's promise, checked as an operator would: a real `keel up`, the `keel` command,
and the `sqlite3` tool editing the database behind the server's back. `keel audit verify` must
notice an edited event, a deleted last event, and (given an anchor taken earlier) a chain
rewritten with freshly computed hashes."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.running_keel import Server, keel_up

from keel.config import ADMIN_TOKEN_FILE
from keel.domain.audit import event_hash


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

    # Consistent again: without an anchor nothing looks wrong. That is what anchors are for.
    assert server.keel("audit", "verify").returncode == 0
    result = server.keel("audit", "verify", "--anchor", anchor)
    assert result.returncode != 0
    assert "seq 4" in result.stdout
    assert "rewritten" in result.stdout
