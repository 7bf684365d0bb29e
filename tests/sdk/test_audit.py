"""The audit trail from Python: who did what, filtered and paged; a chain that shows tampering."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from keel.domain.permissions import Role
from keel.errors import InvalidInput
from keel.sdk import Client
from keel.services.backend import Backend


@pytest.fixture
def ana(keel: Client, server_transport: httpx.BaseTransport, tmp_path: Path) -> str:
    """A contributor of team risk registers model churn and its first version."""
    keel.create_team("risk")
    keel.create_user("ana")
    keel.grant("ana", Role.CONTRIBUTOR, "risk")
    token = keel.create_token(principal="ana").token
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(b"weights")
    with Client(url="http://testserver", token=token, transport=server_transport) as client:
        client.create_model("churn", team="risk", owner="ana")
        client.register_version("churn", artifact, capture_git=False)
    return "ana"


def tamper(backend: Backend, statement: str) -> None:
    with backend.engine.begin() as conn:
        conn.execute(sa.text(statement))


def test_registering_a_model_and_a_version_is_recorded_with_the_actor(
    keel: Client, ana: str
) -> None:
    events = list(keel.audit_log(actor=ana))
    assert [(e.action, e.subject_type, e.subject_id) for e in events] == [
        ("model.create", "model", "churn"),
        ("artifact.scan", "artifact", hashlib.sha256(b"weights").hexdigest()),
        ("version.register", "model_version", "churn/1"),
    ]
    assert events[2].details["size"] == len(b"weights")
    assert events[2].prev_hash == events[1].hash  # nothing happened in between


def test_the_trail_starts_with_the_first_admin_and_records_every_change(
    keel: Client, ana: str
) -> None:
    actions = [(e.actor, e.action) for e in keel.audit_log()]
    assert actions[:3] == [
        ("keel-system", "principal.create"),
        ("keel-system", "role.grant"),
        ("keel-system", "token.create"),
    ]
    assert actions[3:] == [
        ("admin", "team.create"),
        ("admin", "principal.create"),
        ("admin", "role.grant"),
        ("admin", "token.create"),
        ("ana", "model.create"),
        ("ana", "artifact.scan"),
        ("ana", "version.register"),
    ]
    seqs = [e.seq for e in keel.audit_log()]
    assert seqs == list(range(1, len(actions) + 1))


def test_audit_filters(keel: Client, ana: str) -> None:
    assert [e.actor for e in keel.audit_log(action="model.create")] == ["ana"]
    assert [e.action for e in keel.audit_log(subject_type="principal", subject_id="ana")] == [
        "principal.create",
        "role.grant",
    ]
    assert list(keel.audit_log(actor="nobody")) == []
    assert len(list(keel.audit_log(since=datetime.now(UTC) - timedelta(minutes=5)))) == 10
    assert list(keel.audit_log(since=datetime.now(UTC) + timedelta(minutes=5))) == []


def test_since_in_another_zone_or_naive_means_the_same_moment(keel: Client, ana: str) -> None:
    last = list(keel.audit_log())[-1]
    plus_two = timezone(timedelta(hours=2))
    assert list(keel.audit_log(since=last.at.astimezone(plus_two))) == [last]
    assert list(keel.audit_log(since=last.at.replace(tzinfo=None))) == [last]  # naive: UTC


def test_audit_log_follows_cursors_page_by_page(keel: Client, ana: str) -> None:
    everything = list(keel.audit_log())
    assert list(keel.audit_log(limit=2)) == everything
    assert [e.seq for e in itertools.islice(keel.audit_log(limit=1), 3)] == [1, 2, 3]


def test_head_and_verify_an_intact_chain(keel: Client, ana: str) -> None:
    head = keel.audit_head()
    last = list(keel.audit_log())[-1]
    assert (head.seq, head.hash, head.anchor) == (last.seq, last.hash, f"{last.seq}:{last.hash}")

    result = keel.audit_verify()
    assert (result.intact, result.checked, result.head_seq, result.head_hash) == (
        True,
        head.seq,
        head.seq,
        head.hash,
    )
    assert keel.audit_verify(anchor=head.anchor).intact
    keel.create_team("growth")
    assert keel.audit_verify(anchor=head.anchor).intact  # later events keep an anchor valid


def test_an_edited_event_breaks_the_chain_at_that_event(
    keel: Client, ana: str, keel_backend: Backend
) -> None:
    tamper(keel_backend, "UPDATE audit_events SET actor = 'admin' WHERE seq = 8")
    result = keel.audit_verify()
    assert (result.intact, result.broken_seq, result.checked) == (False, 8, 7)
    assert "edited" in result.reason


def test_a_deleted_last_event_is_noticed(keel: Client, ana: str, keel_backend: Backend) -> None:
    head = keel.audit_head()
    tamper(keel_backend, f"DELETE FROM audit_events WHERE seq = {head.seq}")
    result = keel.audit_verify()
    assert (result.intact, result.broken_seq) == (False, head.seq)
    assert "deleted" in result.reason


def test_an_anchor_that_is_not_seq_colon_hash_is_refused(keel: Client, ana: str) -> None:
    with pytest.raises(InvalidInput, match="SEQ:HASH"):
        keel.audit_verify(anchor="yesterday")
    wrong = keel.audit_verify(anchor="2:" + "0" * 64)
    assert (wrong.intact, wrong.broken_seq) == (False, 2)


def test_a_checkpoint_catches_forged_events_appended_after_it(
    keel: Client, ana: str, keel_backend: Backend
) -> None:
    head = keel.audit_head()
    checkpoint = keel.audit_checkpoint()
    assert (checkpoint.seq, checkpoint.hash) == (head.seq, head.hash)
    assert len(checkpoint.signature) == 64 and checkpoint.key_id
    result = keel.audit_verify()
    assert (result.intact, result.checkpoint_seq, result.signed) == (True, head.seq, head.seq)
    # A forger with SQL access appends a copy of the newest event after the checkpoint.
    tamper(
        keel_backend,
        "INSERT INTO audit_events (seq, at, actor, action, subject_type, subject_id, details, "
        "prev_hash, hash, signature) SELECT seq + 1, at, actor, action, subject_type, subject_id, "
        f"details, hash, hash, signature FROM audit_events WHERE seq = {head.seq}",
    )
    result = keel.audit_verify()
    assert (result.intact, result.broken_seq) == (False, head.seq + 1)
