"""What MLflow's registry API records that Keel's own model does not: key-value tags on models
and versions, a version's source URI, run id, run link and stage, and MLflow-side deletions."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text

from keel.store.sql.tables import UtcDateTime, metadata

mlflow_model_tags = Table(
    "mlflow_model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

mlflow_version_tags = Table(
    "mlflow_version_tags",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# One row per version registered through the MLflow API or imported from MLflow.
mlflow_versions = Table(
    "mlflow_versions",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("source", Text, nullable=False, default=""),
    # Where the files were fetched from (what get-download-uri answers).
    Column("storage_location", Text, nullable=False, default=""),
    Column("run_id", String(64), nullable=False, default="", index=True),
    Column("run_link", Text, nullable=False, default=""),
    Column("stage", String(16), nullable=False, default="None"),
    Column("deleted_at", UtcDateTime, nullable=True),
)

# Keel keeps every model for its audit trail; an MLflow "delete" hides it from the MLflow API.
mlflow_deleted_models = Table(
    "mlflow_deleted_models",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("deleted_by", String(256), nullable=False),
    Column("deleted_at", UtcDateTime, nullable=False),
)
