from __future__ import annotations

import pytest
import sqlalchemy


@pytest.mark.postgres
def test_fresh_database_is_a_real_empty_postgresql_database(postgres_database_url: str) -> None:
    engine = sqlalchemy.create_engine(postgres_database_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sqlalchemy.text("select version()")).scalar_one()
            database = conn.execute(sqlalchemy.text("select current_database()")).scalar_one()
            tables = conn.execute(
                sqlalchemy.text(
                    "select count(*) from information_schema.tables where table_schema = 'public'"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert str(version).startswith("PostgreSQL ")
    assert str(database).startswith("keel_test_")
    assert tables == 0
