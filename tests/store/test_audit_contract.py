"""The audit chain on every backend: one event per change, in the change's transaction, and
tampering through raw SQL is caught and located."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text

from keel.domain.audit import GENESIS, event_hash, verify_chain
from keel.domain.permissions import PrincipalKind, Role
from keel.domain.registry import Model
from keel.domain.tokens import hint, new_token
from keel.errors import Conflict, Unauthenticated
from keel.store.sql import SqlRegistryStore
from keel.store.sql.audit import SqlAuditLog
from keel.store.sql.identity import SqlIdentityStore


def _verify(log: SqlAuditLog, anchor: tuple[int, str] | None = None) -> tuple[bool, int | None]:
    result = verify_chain(log.walk(), expected_head=log.head(), anchor=anchor)
    return result.intact, result.broken_seq


@pytest.fixture
def log(engine: Engine) -> SqlAuditLog:
    return SqlAuditLog(engine)


def _populate(store: SqlRegistryStore, n_models: int = 4) -> None:
    store.create_team("risk", "", "ana")
    for i in range(n_models):
        store.create_model(Model(name=f"m{i}", team="risk", owner="ana"), "bob")


def test_each_change_appends_one_event_and_a_refused_change_none(
    store: SqlRegistryStore, log: SqlAuditLog
) -> None:
    _populate(store, 2)
    with pytest.raises(Conflict):
        store.create_model(Model(name="m0", team="risk", owner="x"), "eve")
    events = list(log.walk())
    assert [(e.seq, e.action, e.actor, e.subject_id) for e in events] == [
        (1, "team.create", "ana", "risk"),
        (2, "model.create", "bob", "m0"),
        (3, "model.create", "bob", "m1"),
    ]
    assert events[0].prev_hash == GENESIS
    assert events[1].prev_hash == events[0].hash
    assert log.head() == (3, events[-1].hash)
    assert _verify(log) == (True, None)


def test_an_edited_row_is_named(store: SqlRegistryStore, log: SqlAuditLog, engine: Engine) -> None:
    _populate(store)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    assert _verify(log) == (False, 3)


def test_a_deleted_row_is_named(store: SqlRegistryStore, log: SqlAuditLog, engine: Engine) -> None:
    _populate(store)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    assert _verify(log) == (False, 2)


def test_a_deleted_tail_is_caught_by_the_head(
    store: SqlRegistryStore, log: SqlAuditLog, engine: Engine
) -> None:
    _populate(store)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 5"))
    intact, broken = _verify(log)
    assert (intact, broken) == (False, 5)


def test_reordered_rows_are_caught(
    store: SqlRegistryStore, log: SqlAuditLog, engine: Engine
) -> None:
    _populate(store)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET seq = 1000 WHERE seq = 2"))
        conn.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = 1000"))
    assert _verify(log) == (False, 2)


def test_a_rewritten_chain_is_caught_by_an_anchor(
    store: SqlRegistryStore, log: SqlAuditLog, engine: Engine
) -> None:
    _populate(store)
    anchor = log.head()
    # A thorough forger edits event 2, recomputes every hash after it and the head.
    events = list(log.walk())
    prev = events[0].hash
    with engine.begin() as conn:
        for event in events[1:]:
            actor = "mallory" if event.seq == 2 else event.actor
            digest = event_hash(
                prev,
                seq=event.seq,
                at=event.at,
                actor=actor,
                action=event.action,
                subject_type=event.subject_type,
                subject_id=event.subject_id,
                details=event.details,
            )
            conn.execute(
                text(
                    "UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"
                ),
                {"a": actor, "p": prev, "h": digest, "s": event.seq},
            )
            prev = digest
        conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    assert _verify(log) == (True, None)  # the chain alone cannot tell
    assert _verify(log, anchor) == (False, anchor[0])


def test_concurrent_writers_never_fork_the_chain(store: SqlRegistryStore, log: SqlAuditLog) -> None:
    store.create_team("risk", "", "ana")
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(8):
                store.create_model(Model(name=f"w{worker}-{i}", team="risk", owner="x"), "ana")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [e.seq for e in log.walk()] == list(range(1, 34))
    assert _verify(log) == (True, None)


def test_tokens_are_kept_as_digests_and_refused_when_expired_or_revoked(
    engine: Engine, log: SqlAuditLog
) -> None:
    from datetime import UTC, datetime, timedelta

    identity = SqlIdentityStore(engine)
    identity.create_principal("ana", PrincipalKind.USER, "root")
    token, digest = new_token()
    info = identity.create_token("ana", "laptop", digest, hint(token), None, "root")
    principal, used = identity.authenticate(digest)
    assert principal.name == "ana" and used.id == info.id
    assert identity.list_tokens("ana")[0].last_used_at is not None
    with engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(text("SELECT * FROM api_tokens"))]
    assert token not in repr(stored) and digest in repr(stored)
    old, old_digest = new_token()
    identity.create_token(
        "ana", "old", old_digest, hint(old), datetime.now(UTC) - timedelta(seconds=1), "root"
    )
    with pytest.raises(Unauthenticated):
        identity.authenticate(old_digest)
    identity.revoke_token(info.id, "root")
    with pytest.raises(Unauthenticated):
        identity.authenticate(digest)
    with pytest.raises(Unauthenticated):
        identity.authenticate("0" * 64)
    actions = [e.action for e in log.walk()]
    assert actions == ["principal.create", "token.create", "token.create", "token.revoke"]
    assert all(token not in repr(e.details) and digest not in repr(e.details) for e in log.walk())


def test_admin_is_global_and_other_roles_need_a_team(engine: Engine) -> None:
    from keel.errors import InvalidInput

    identity = SqlIdentityStore(engine)
    identity.create_principal("ana", PrincipalKind.USER, "root")
    with pytest.raises(InvalidInput, match="admin role is global"):
        identity.grant("ana", Role.ADMIN, "risk", "root")
    with pytest.raises(InvalidInput, match="needs a team"):
        identity.grant("ana", Role.VIEWER, None, "root")
    assert identity.grant("ana", Role.ADMIN, None, "root").is_admin
