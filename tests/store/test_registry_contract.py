"""The registry store contract: every backend (SQLite, PostgreSQL) passes the same checks."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from keel.domain.lifecycle import VersionStatus
from keel.domain.registry import (
    Artifact,
    ArtifactFlavor,
    DatasetFingerprint,
    Environment,
    Lineage,
    Model,
    ModelCard,
    ModelChanges,
    ModelQuery,
    VersionDraft,
)
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from keel.store.sql import SqlRegistryStore
from keel.store.sql.tables import model_versions, models

ARTIFACT = Artifact(sha256="a" * 64, size=10, flavor=ArtifactFlavor.SKLEARN, filename="m.joblib")


def _model(store: SqlRegistryStore, name: str = "churn", team: str = "risk", **kw: object) -> Model:
    with contextlib.suppress(Conflict):
        store.create_team(team, "", "admin")
    return store.create_model(Model(name=name, team=team, owner="ana", **kw), "ana")  # type: ignore[arg-type]


def _draft(**kw: object) -> VersionDraft:
    return VersionDraft(
        signature=Signature(
            (
                Column("age", ColumnType.INTEGER),
                Column("sex", ColumnType.CATEGORICAL, ColumnRole.PROTECTED_ATTRIBUTE),
                Column("y", ColumnType.BOOLEAN, ColumnRole.TARGET, nullable=False),
            )
        ),
        **kw,  # type: ignore[arg-type]
    )


def test_teams_are_unique_and_listed_in_pages(store: SqlRegistryStore) -> None:
    for name in ["c", "a", "b"]:
        store.create_team(name, f"team {name}", "admin")
    with pytest.raises(Conflict, match="'a' already exists"):
        store.create_team("a", "again", "admin")
    first = store.list_teams(cursor=None, limit=2)
    assert [t.name for t in first.items] == ["a", "b"]
    assert first.next_cursor is not None
    second = store.list_teams(cursor=first.next_cursor, limit=2)
    assert [t.name for t in second.items] == ["c"]
    assert second.next_cursor is None
    assert store.get_team("a").description == "team a"


def test_model_round_trip_and_duplicate_writes_nothing(
    store: SqlRegistryStore, engine: Engine
) -> None:
    created = _model(store, tags=("fraud", "eu", "fraud"), description="Scores churn")
    assert created.tags == ("fraud", "eu")
    assert created.latest_version == 0
    assert created.created_at is not None and created.created_at.tzinfo is not None
    with pytest.raises(Conflict, match="already exists"):
        _model(store)
    with pytest.raises(InvalidInput, match="'team' field names a team that does not exist"):
        store.create_model(Model(name="other", team="nobody", owner="x"), "ana")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(models)).scalar_one() == 1
    assert store.get_model("churn") == created


def test_unknown_model_is_not_found(store: SqlRegistryStore) -> None:
    with pytest.raises(NotFound, match="No model named 'ghost'"):
        store.get_model("ghost")
    with pytest.raises(NotFound):
        store.update_model("ghost", ModelChanges(owner="x"), "ana")
    with pytest.raises(NotFound):
        store.get_version("ghost", 1)


def test_update_model_changes_only_given_fields(store: SqlRegistryStore) -> None:
    _model(store, tags=("a",), description="old")
    store.create_team("payments", "", "admin")
    updated = store.update_model("churn", ModelChanges(team="payments", tags=("b", "c")), "ana")
    assert (updated.team, updated.tags, updated.description) == ("payments", ("b", "c"), "old")
    with pytest.raises(InvalidInput, match="team"):
        store.update_model("churn", ModelChanges(team="nobody"), "ana")


def test_list_models_filters_and_paginates(store: SqlRegistryStore) -> None:
    _model(store, "alpha", tags=("eu",), description="credit 100% scoring")
    _model(store, "beta", tags=("us",), use_case="churn")
    _model(store, "gamma", team="ops", tags=("eu",))
    _model(store, "delta", team="ops")
    store.create_version("beta", ARTIFACT, _draft(), "ana")

    def names(query: ModelQuery) -> list[str]:
        return [m.name for m in store.list_models(query, cursor=None, limit=50).items]

    assert names(ModelQuery()) == ["alpha", "beta", "delta", "gamma"]
    assert names(ModelQuery(team="ops")) == ["delta", "gamma"]
    assert names(ModelQuery(tag="eu")) == ["alpha", "gamma"]
    assert names(ModelQuery(status=VersionStatus.REGISTERED)) == ["beta"]
    assert names(ModelQuery(text="CHURN")) == ["beta"]
    assert names(ModelQuery(text="100%")) == ["alpha"]
    assert names(ModelQuery(text="0_")) == []  # '_' is literal, not a wildcard
    seen, cursor = [], None
    while True:
        page = store.list_models(ModelQuery(), cursor=cursor, limit=3)
        seen += [m.name for m in page.items]
        if not (cursor := page.next_cursor):
            break
    assert seen == ["alpha", "beta", "delta", "gamma"]
    with pytest.raises(InvalidInput, match="'cursor'"):
        store.list_models(ModelQuery(), cursor="not-a-cursor!", limit=3)


def test_version_keeps_everything_it_was_given(store: SqlRegistryStore) -> None:
    _model(store)
    draft = _draft(
        description="first",
        params={"C": 1.0, "solver": "lbfgs", "fit_intercept": True, "seed": None},
        metrics={"roc_auc": 0.91},
        lineage=Lineage(
            training_data=DatasetFingerprint("b" * 64, 569, (("age", "integer"), ("y", "boolean"))),
            git_commit="0123456789abcdef0123456789abcdef01234567",
            git_repo_url="https://example.org/repo.git",
            git_dirty=True,
        ),
        environment=Environment("3.11.7", {"scikit-learn": "1.9.1"}),
        card=ModelCard(intended_use="Retention offers", limitations="EU customers only"),
    )
    created = store.create_version("churn", ARTIFACT, draft, "ana")
    assert (created.version, created.status, created.created_by) == (1, "registered", "ana")
    fetched = store.get_version("churn", 1)
    assert fetched == created
    assert fetched.signature == draft.signature
    assert fetched.lineage == draft.lineage
    assert fetched.environment == draft.environment
    assert fetched.card == draft.card
    assert fetched.params == draft.params
    assert store.get_model("churn").latest_version == 1
    with pytest.raises(NotFound, match="has no version 2"):
        store.get_version("churn", 2)


def test_versions_are_numbered_without_gaps_under_concurrent_writers(
    store: SqlRegistryStore, engine: Engine
) -> None:
    _model(store)
    errors: list[BaseException] = []

    def register(n: int) -> None:
        try:
            for _ in range(n):
                store.create_version("churn", ARTIFACT, _draft(), "ana")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(5,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        numbers = sorted(conn.execute(select(model_versions.c.version)).scalars())
    assert numbers == list(range(1, 31))
    assert store.get_model("churn").latest_version == 30


def test_parent_version_must_exist(store: SqlRegistryStore) -> None:
    _model(store)
    with pytest.raises(InvalidInput, match="parent_version"):
        store.create_version("churn", ARTIFACT, _draft(lineage=Lineage(parent_version=1)), "ana")
    store.create_version("churn", ARTIFACT, _draft(), "ana")
    child = store.create_version("churn", ARTIFACT, _draft(lineage=Lineage(parent_version=1)), "a")
    assert child.lineage.parent_version == 1


def test_list_versions_newest_first_with_status_filter(store: SqlRegistryStore) -> None:
    _model(store)
    for _ in range(5):
        store.create_version("churn", ARTIFACT, _draft(), "ana")
    store.set_status("churn", 2, VersionStatus.CANDIDATE, "ana", "ready for review")
    page = store.list_versions("churn", status=None, cursor=None, limit=2)
    assert [v.version for v in page.items] == [5, 4]
    rest = store.list_versions("churn", status=None, cursor=page.next_cursor, limit=10)
    assert [v.version for v in rest.items] == [3, 2, 1]
    candidates = store.list_versions("churn", status=VersionStatus.CANDIDATE, cursor=None, limit=10)
    assert [v.version for v in candidates.items] == [2]


def test_lifecycle_refuses_illegal_moves(store: SqlRegistryStore) -> None:
    _model(store)
    store.create_version("churn", ARTIFACT, _draft(), "ana")
    with pytest.raises(IllegalTransition, match="from 'registered' to 'production'"):
        store.set_status("churn", 1, VersionStatus.PRODUCTION, "ana", "")
    assert store.get_version("churn", 1).status == VersionStatus.REGISTERED
    assert store.set_status("churn", 1, VersionStatus.ARCHIVED, "ana", "").status == "archived"
    with pytest.raises(IllegalTransition, match="'archived' is final"):
        store.set_status("churn", 1, VersionStatus.CANDIDATE, "ana", "")


def test_alias_history_records_every_period(store: SqlRegistryStore) -> None:
    _model(store)
    for _ in range(2):
        store.create_version("churn", ARTIFACT, _draft(), "ana")
    before = datetime.now(UTC)
    first = store.set_alias("churn", "champion", 1, "ana")
    assert store.set_alias("churn", "champion", 1, "bob") == first  # no new period
    store.set_alias("churn", "champion", 2, "bob")
    store.set_alias("churn", "challenger", 1, "bob")
    history = store.alias_history("churn", "champion")
    assert [(a.version, a.set_by, a.cleared_by) for a in history] == [
        (2, "bob", None),
        (1, "ana", "bob"),
    ]
    assert history[1].cleared_at is not None and history[1].cleared_at >= before
    assert history[1].cleared_at == history[0].set_at or history[1].cleared_at <= history[0].set_at
    assert [(a.alias, a.version) for a in store.current_aliases("churn")] == [
        ("challenger", 1),
        ("champion", 2),
    ]
    assert store.get_version("churn", 1).aliases == ("challenger",)
    removed = store.delete_alias("churn", "champion", "carol")
    assert (removed.version, removed.cleared_by) == (2, "carol")
    assert [a.alias for a in store.current_aliases("churn")] == ["challenger"]
    assert len(store.alias_history("churn", None)) == 3
    with pytest.raises(NotFound, match="no alias 'champion'"):
        store.delete_alias("churn", "champion", "carol")
    with pytest.raises(NotFound, match="no version 9"):
        store.set_alias("churn", "champion", 9, "carol")


def test_concurrent_alias_moves_leave_one_current_holder(store: SqlRegistryStore) -> None:
    _model(store)
    for _ in range(4):
        store.create_version("churn", ARTIFACT, _draft(), "ana")
    errors: list[BaseException] = []

    def move(version: int) -> None:
        try:
            for _ in range(5):
                store.set_alias("churn", "champion", version, f"user{version}")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(v,)) for v in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    open_periods = [a for a in store.alias_history("churn", "champion") if a.cleared_at is None]
    assert len(open_periods) == 1
    assert [a.version for a in store.current_aliases("churn")] == [open_periods[0].version]


def test_ping_reports_ready(store: SqlRegistryStore) -> None:
    store.ping()
