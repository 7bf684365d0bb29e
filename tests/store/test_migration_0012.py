"""Migration 0012: a command retraining job defined before admins alone could define one becomes
``unreviewed`` (it does not run until an admin sets it again); webhook jobs stay as they were."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from keel.store import migrate
from keel.store.sql import make_engine

NOW = "2026-11-01 00:00:00"


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_existing_command_jobs_become_unreviewed(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'keel.db'}"
        if database == "sqlite"
        else str(request.getfixturevalue("postgres_database_url"))
    )
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, "0010")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO teams (id, name, description, created_at) "
                    "VALUES (1, 'risk', '', :t)"
                ),
                {"t": NOW},
            )
            for model_id, name in ((1, "credit"), (2, "churn")):
                conn.execute(
                    text(
                        "INSERT INTO models (id, name, team_id, owner, description, use_case, "
                        "risk_tier, latest_version, created_at, updated_at) "
                        "VALUES (:id, :name, 1, 'ana', '', '', 'unassessed', 0, :t, :t)"
                    ),
                    {"id": model_id, "name": name, "t": NOW},
                )
            for model_id, kind, command in (
                (1, "command", '["sh", "-c", "env"]'),
                (2, "webhook", "[]"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO retraining_jobs (model_id, kind, command, timeout_s, "
                        "window_days, updated_by, updated_at) "
                        "VALUES (:m, :kind, :command, 60, 7, 'dana', :t)"
                    ),
                    {"m": model_id, "kind": kind, "command": command, "t": NOW},
                )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT model_id, kind, memory_mb FROM retraining_jobs ORDER BY model_id")
            ).all()
        assert [tuple(r) for r in rows] == [(1, "unreviewed", 4096), (2, "webhook", 4096)]
    finally:
        engine.dispose()
