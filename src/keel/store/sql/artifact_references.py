"""Which artifact blobs the metadata still points at; the audit record of collecting the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, select, union

from keel.store.sql import audit
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import model_versions
from keel.store.sql.tables_evaluation import evaluation_datasets


def referenced_digests(engine: Engine) -> set[str]:
    """Every SHA-256 a version's artifact or its evaluation data is stored under."""
    query = union(select(model_versions.c.artifact_sha256), select(evaluation_datasets.c.sha256))
    with read_transaction(engine) as conn:
        return {str(d) for d in conn.execute(query).scalars()}


def record_collection(engine: Engine, actor: str, details: Mapping[str, Any]) -> None:
    with write_transaction(engine) as conn:
        audit.append(
            conn,
            actor=actor,
            action="artifacts.gc",
            subject_type="artifact_store",
            subject_id="blobs",
            details=dict(details),
        )
