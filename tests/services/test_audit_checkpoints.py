"""Signed events and signed checkpoints, on SQLite and PostgreSQL: every tampering pattern an
attacker with database write access (but not the audit key) can try is caught against the latest
checkpoint, named by its first bad event and its kind."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import update
from tests.audit_forgery import SIX_PATTERNS, truncate_to_before

from keel.config import Settings
from keel.domain.audit import verify_chain
from keel.domain.audit_checkpoints import AuditKey
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model
from keel.errors import Conflict, PermissionDenied
from keel.services.backend import Backend
from keel.store.audit_checkpoints import AuditKeyUnusable, create_key, read_key
from keel.store.sql.tables import audit_events
from keel.worker.audit import checkpoint_job

ROOT = Principal("root", grants=(Grant(Role.ADMIN),))
DANA = Principal("dana", grants=(Grant(Role.CONTRIBUTOR, "risk"),))


def populate(backend: Backend, models: int = 4) -> None:
    backend.registry.create_team(ROOT, "risk")
    for i in range(models):
        backend.registry.create_model(ROOT, Model(name=f"m{i}", team="risk", owner="ana"))


@pytest.mark.parametrize("pattern", list(SIX_PATTERNS))
def test_each_tampering_pattern_is_caught_against_the_latest_checkpoint(
    empty_backend: Backend, pattern: str
) -> None:
    populate(empty_backend)
    assert empty_backend.audit.checkpoint(ROOT).seq == 5
    assert empty_backend.audit.verify(ROOT).intact

    broken_seq, kind = SIX_PATTERNS[pattern](empty_backend.engine)

    result = empty_backend.audit.verify(ROOT)
    assert (result.intact, result.broken_seq, result.kind) == (False, broken_seq, kind)
    assert kind in result.reason
    assert result.checkpoint_seq == 5


def test_truncation_after_a_checkpoint_is_caught(empty_backend: Backend) -> None:
    populate(empty_backend)
    assert empty_backend.audit.checkpoint(ROOT).seq == 5
    empty_backend.registry.create_model(ROOT, Model(name="later", team="risk", owner="ana"))

    assert truncate_to_before(4)(empty_backend.engine) == (4, "truncated")

    result = empty_backend.audit.verify(ROOT)
    assert (result.intact, result.broken_seq, result.kind) == (False, 4, "truncated")
    assert "saw event 5" in result.reason and "events 4 to 5 were deleted" in result.reason


def test_events_after_the_checkpoint_must_chain_from_it_and_be_signed(
    empty_backend: Backend,
) -> None:
    populate(empty_backend)
    empty_backend.audit.checkpoint(ROOT)
    empty_backend.registry.create_model(ROOT, Model(name="later", team="risk", owner="ana"))
    result = empty_backend.audit.verify(ROOT)
    assert (result.intact, result.checked, result.signed, result.checkpoint_seq) == (
        True,
        6,
        6,
        5,
    )
    # A forger strips the newest event's signature rather than copying one.
    with empty_backend.engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 6).values(signature=None))
    result = empty_backend.audit.verify(ROOT)
    assert (result.broken_seq, result.kind) == (6, "forged")
    assert "no signature" in result.reason


def test_events_from_before_signing_are_legacy_not_tampering(empty_backend: Backend) -> None:
    populate(empty_backend, models=2)
    # What a database upgraded from an older Keel holds: events without signatures.
    with empty_backend.engine.begin() as conn:
        conn.execute(update(audit_events).values(signature=None))
    empty_backend.registry.create_model(ROOT, Model(name="signed", team="risk", owner="ana"))
    checkpoint = empty_backend.audit.checkpoint(ROOT)
    assert (checkpoint.seq, checkpoint.unsigned_until) == (4, 3)

    result = empty_backend.audit.verify(ROOT)
    assert (result.intact, result.unsigned_legacy, result.signed) == (True, 3, 1)

    # ...but stripping a signed event's signature afterwards is not "legacy".
    with empty_backend.engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == 4).values(signature=None))
    result = empty_backend.audit.verify(ROOT)
    assert (result.intact, result.broken_seq, result.kind) == (False, 4, "forged")


def test_a_hand_edited_checkpoint_file_is_caught(empty_backend: Backend) -> None:
    populate(empty_backend)
    empty_backend.audit.checkpoint(ROOT)
    path = empty_backend.audit.checkpoints.path
    line = json.loads(path.read_text())
    # Lowering the checkpoint's seq would hide a truncation; the signature says no.
    path.write_text(json.dumps({**line, "seq": 2}) + "\n")

    result = empty_backend.audit.verify(ROOT)
    assert (result.intact, result.kind, result.broken_seq) == (False, "bad-checkpoint", None)
    assert "bad signature" in result.reason

    path.write_text('{"seq": 5, "hash": \n')
    result = empty_backend.audit.verify(ROOT)
    assert (result.intact, result.kind) == (False, "bad-checkpoint")
    assert "Line 1" in result.reason and "edited" in result.reason
    with pytest.raises(Conflict, match="No checkpoint written"):
        empty_backend.audit.checkpoint(ROOT)


def test_no_checkpoint_is_signed_over_a_tampered_chain(empty_backend: Backend) -> None:
    populate(empty_backend)
    empty_backend.audit.checkpoint(ROOT)
    SIX_PATTERNS["append forged events with recomputed hashes"](empty_backend.engine)
    before = empty_backend.audit.checkpoints.path.read_text()

    with pytest.raises(Conflict, match=r"breaks at seq 6 \(forged\)"):
        empty_backend.audit.checkpoint(ROOT)
    assert empty_backend.audit.checkpoints.path.read_text() == before


def test_only_admins_take_checkpoints(empty_backend: Backend) -> None:
    with pytest.raises(PermissionDenied):
        empty_backend.audit.checkpoint(DANA)
    assert not empty_backend.audit.checkpoints.path.exists()


def test_the_worker_checkpoints_when_the_head_moved_and_witnesses_get_a_webhook(
    empty_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    empty_backend.notifications.subscribe(
        ROOT, url="https://witness.example/keel", events=["audit.*"]
    )
    job = checkpoint_job(empty_backend.audit, every_minutes=15)
    assert job.every_seconds == 900
    job.run()
    job.run()  # nothing happened since: no second checkpoint
    subscribed = empty_backend.audit.log.head()[0]
    assert [c.seq for c in empty_backend.audit.checkpoints.read()] == [subscribed]
    populate(empty_backend, models=1)
    job.run()
    checkpoints = empty_backend.audit.checkpoints.read()
    assert [c.seq for c in checkpoints] == [subscribed, subscribed + 2]  # team, model
    sent = empty_backend.notifications.deliveries()
    assert [d.event_type for d in sent] == ["audit.checkpoint", "audit.checkpoint"]
    assert (
        sent[0].payload["seq"] == subscribed + 2
        and sent[0].payload["signature"] == checkpoints[1].signature
    )

    empty_backend.registry.create_model(ROOT, Model(name="after", team="risk", owner="ana"))
    newest = subscribed + 3
    with empty_backend.engine.begin() as conn:
        conn.execute(update(audit_events).where(audit_events.c.seq == newest).values(actor="eve"))
    with caplog.at_level(logging.ERROR, logger="keel.worker.audit"):
        job.run()
    assert "audit checkpoint refused" in caplog.text
    assert f"seq {newest} (edited)" in caplog.text
    assert len(empty_backend.audit.checkpoints.read()) == 2


def test_another_key_is_named_as_the_wrong_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "keel"
    first = Backend.open(Settings.load(data_dir=data_dir, env={}))
    first.migrate()
    populate(first)
    first.audit.checkpoint(ROOT)
    events = list(first.audit.log.walk())
    first.close()
    assert (data_dir / "audit-key").stat().st_mode & 0o777 == 0o600

    other = tmp_path / "other-key"
    create_key(other)
    second = Backend.open(Settings.load(data_dir=data_dir, env={"KEEL_AUDIT_KEY_FILE": str(other)}))
    try:
        result = second.audit.verify(ROOT)
    finally:
        second.close()
    assert (result.intact, result.kind) == (False, "wrong-key")
    assert "KEEL_AUDIT_KEY_FILE" in result.reason
    assert read_key(other).key_id in result.reason

    # Without any checkpoint, the first signature that fails says the key may be the wrong one.
    alone = verify_chain(events, key=read_key(other))
    assert (alone.broken_seq, alone.kind) == (1, "forged")
    assert "KEEL_AUDIT_KEY_FILE" in alone.reason


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "does not exist"), ("not hex at all", "at least 32 bytes"), ("ab" * 8, "at least")],
)
def test_a_missing_or_bad_key_file_is_a_clear_error(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    key_file = tmp_path / "audit-key"
    if content is not None:
        key_file.write_text(content)
    env = {"KEEL_AUDIT_KEY_FILE": str(key_file)}
    with pytest.raises(AuditKeyUnusable, match=problem) as raised:
        Backend.open(Settings.load(data_dir=tmp_path / "keel", env=env))
    assert str(key_file) in raised.value.message
    assert "KEEL_AUDIT_KEY_FILE" in raised.value.message
    assert not key_file.exists() or key_file.read_text() == content  # never replaced


def test_the_key_never_shows_in_its_repr() -> None:
    secret = bytes(range(32))
    assert secret.hex() not in repr(AuditKey(secret))
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AuditKey(b"short")
