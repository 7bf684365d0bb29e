"""Run the Alembic migrations that ship inside the package (`keel db upgrade`)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", "keel.store:migrations")
    # env.py takes this engine instead of a URL, so the URL (and any password) is never logged.
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the metadata database to ``revision`` (the newest by default)."""
    command.upgrade(_config(engine), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config_without_engine()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _config_without_engine() -> Config:
    config = Config()
    config.set_main_option("script_location", "keel.store:migrations")
    return config
