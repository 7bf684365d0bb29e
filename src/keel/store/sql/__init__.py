"""SQL backends of the metadata stores (SQLite and PostgreSQL)."""

from keel.store.sql.engine import make_engine
from keel.store.sql.registry import SqlRegistryStore

__all__ = ["SqlRegistryStore", "make_engine"]
