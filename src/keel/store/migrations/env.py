"""Alembic environment: migrates the engine handed over by `keel.store.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from keel.store.sql.tables import metadata

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("Run migrations through `keel db upgrade` (keel.store.migrate.upgrade).")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
