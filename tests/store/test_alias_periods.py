"""Alias history under concurrent moves: every period starts before it ends, and periods follow
one another without overlap, in the order the moves committed.

Real threads against SQLite and a real PostgreSQL. The time of a move is taken once the model's
row is locked; taken before the lock, a move that waited on another one stamped an earlier
time than the move that made it wait, and its period "ended before it started".
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select

from keel.domain.registry import AliasAssignment, Artifact, ArtifactFlavor, Model, VersionDraft
from keel.errors import Conflict
from keel.store.sql import SqlRegistryStore
from keel.store.sql.governance import NewPromotion, SqlGovernanceStore
from keel.store.sql.tables import alias_assignments

ARTIFACT = Artifact(sha256="b" * 64, size=10, flavor=ArtifactFlavor.SKLEARN, filename="m.joblib")
THREADS = 4
MOVES = 5


def _model_with_versions(store: SqlRegistryStore, count: int) -> None:
    store.create_team("risk", "", "admin")
    store.create_model(Model(name="churn", team="risk", owner="ana"), "ana")
    for _ in range(count):
        store.create_version("churn", ARTIFACT, VersionDraft(), "ana")


def _race(work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(thread_number)`` in THREADS threads released together; their errors."""
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            start.wait()
            work(number)
        except BaseException as exc:  # reported by the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _assert_periods_follow_each_other(engine: Engine, history: list[AliasAssignment]) -> None:
    with engine.connect() as conn:
        committed = list(conn.execute(select(alias_assignments.c.id).order_by("id")).scalars())
    assert len(history) == len(committed) == THREADS * MOVES
    oldest_first = list(reversed(history))  # alias_history is newest first
    for period in oldest_first:
        assert period.cleared_at is None or period.set_at <= period.cleared_at, period
    for before, after in itertools.pairwise(oldest_first):
        assert before.cleared_at is not None
        assert before.cleared_at <= after.set_at, (before, after)
    assert [p.cleared_at is None for p in oldest_first].count(True) == 1


def test_concurrent_alias_moves_record_ordered_periods(engine: Engine) -> None:
    store = SqlRegistryStore(engine)
    _model_with_versions(store, THREADS)

    def move(number: int) -> None:
        for _ in range(MOVES):  # a move to the version already holding it records nothing
            store.set_alias("churn", "champion", number + 1, f"user{number}")

    assert _race(move) == []
    oldest_first = list(reversed(store.alias_history("churn", "champion")))
    assert THREADS <= len(oldest_first) <= THREADS * MOVES
    for period in oldest_first:
        assert period.cleared_at is None or period.set_at <= period.cleared_at, period
    for before, after in itertools.pairwise(oldest_first):
        assert before.cleared_at is not None
        assert before.cleared_at <= after.set_at, (before, after)
    assert [p.cleared_at for p in oldest_first].count(None) == 1


def test_concurrent_promotions_record_ordered_production_periods(engine: Engine) -> None:
    registry = SqlRegistryStore(engine)
    governance = SqlGovernanceStore(engine)
    _model_with_versions(registry, THREADS * MOVES)

    def promote(number: int) -> None:
        for step in range(MOVES):
            version = number * MOVES + step + 1
            governance.promote(
                "churn",
                version,
                NewPromotion(
                    actor=f"user{number}",
                    break_glass=False,
                    justification="",
                    overridden=(),
                    policy_tier="unassessed",
                    policy_version=1,
                ),
                expect=governance.state_token("churn", version),
            )

    assert _race(promote) == []
    history = registry.alias_history("churn", "production")
    _assert_periods_follow_each_other(engine, history)
    promotions = governance.promotions("churn")
    assert len(promotions) == THREADS * MOVES
    # Each promotion retired the version the one committed before it had put in production.
    for before, after in itertools.pairwise(promotions):
        assert after.previous_version == before.version
        assert before.promoted_at <= after.promoted_at


def test_a_refused_promotion_leaves_the_history_alone(engine: Engine) -> None:
    registry = SqlRegistryStore(engine)
    governance = SqlGovernanceStore(engine)
    _model_with_versions(registry, 1)
    note = NewPromotion("ana", False, "", (), "unassessed", 1)
    governance.promote("churn", 1, note, expect=governance.state_token("churn", 1))
    with pytest.raises(Conflict, match="already in production"):
        governance.promote("churn", 1, note, expect=governance.state_token("churn", 1))
    assert [a.version for a in registry.alias_history("churn", "production")] == [1]
