"""`keel db upgrade` against a real PostgreSQL, as a platform team runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from keel.store import migrate


@pytest.mark.postgres
def test_db_upgrade_migrates_postgresql_and_is_idempotent(
    postgres_database_url: str, tmp_path: Path
) -> None:
    keel = Path(sys.executable).parent / "keel"
    # Without KEEL_HOME, so a local data dir would land in the cwd, where the test looks for it.
    env = {k: v for k, v in os.environ.items() if k != "KEEL_HOME"}
    env |= {"KEEL_DATABASE_URL": postgres_database_url, "NO_COLOR": "1"}
    first = subprocess.run(
        [str(keel), "db", "upgrade"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    assert f"to {migrate.head_revision()}" in first.stderr
    password = postgres_database_url.split(":")[2].split("@")[0]
    assert password not in first.stderr + first.stdout
    engine = create_engine(postgres_database_url)
    tables = set(inspect(engine).get_table_names())
    assert {"teams", "models", "model_versions", "alias_assignments"} <= tables
    engine.dispose()
    again = subprocess.run(
        [str(keel), "db", "upgrade"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert again.returncode == 0 and "Already at the newest schema" in again.stderr
    assert not (tmp_path / ".keel").exists()  # a PostgreSQL setup writes no local data dir
