"""A migrated metadata database per test, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from keel.store import migrate
from keel.store.sql import SqlRegistryStore, make_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keel.db'}"
    else:
        url = str(request.getfixturevalue("postgres_database_url"))
    created = make_engine(url)
    migrate.upgrade(created)
    yield created
    created.dispose()


@pytest.fixture
def store(engine: Engine) -> SqlRegistryStore:
    return SqlRegistryStore(engine)
