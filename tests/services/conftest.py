"""The services' shared fixture: a migrated, empty backend on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.config import Settings
from keel.services.backend import Backend


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A backend over a fresh data directory, on each metadata database; closed afterwards."""
    url = None
    if request.param == "postgres":
        url = str(request.getfixturevalue("postgres_database_url"))
    opened = Backend.open(Settings.load(data_dir=tmp_path / "keel", database_url=url, env={}))
    opened.migrate()
    yield opened
    opened.close()
