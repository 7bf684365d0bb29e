"""The metadata schema, as SQLAlchemy Core tables. Migrations in ``keel/store/migrations``."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

UtcDateTime = DateTime(timezone=True)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=False, index=True),
    Column("owner", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("use_case", Text, nullable=False, default=""),
    Column("risk_tier", String(32), nullable=False),
    Column("latest_version", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(256), primary_key=True),
    Column("position", Integer, nullable=False),
    Index("ix_model_tags_tag", "tag"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("artifact_sha256", String(64), nullable=False, index=True),
    Column("artifact_size", BigInteger, nullable=False),
    Column("artifact_flavor", String(32), nullable=False),
    Column("artifact_filename", String(256), nullable=False),
    Column("signature", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("environment", JSON, nullable=False),
    Column("card", JSON, nullable=False),
    # Copied out of the lineage JSON so "which versions were trained on this data / commit"
    # is an indexed query on every backend.
    Column("training_data_sha256", String(64), nullable=True, index=True),
    Column("git_commit", String(64), nullable=True, index=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("parent_version", Integer, nullable=True),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
)

version_status_changes = Table(
    "version_status_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False, index=True),
    Column("from_status", String(32), nullable=True),
    Column("to_status", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("changed_at", UtcDateTime, nullable=False),
)

alias_assignments = Table(
    "alias_assignments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("set_by", String(256), nullable=False),
    Column("set_at", UtcDateTime, nullable=False),
    Column("cleared_by", String(256), nullable=True),
    Column("cleared_at", UtcDateTime, nullable=True),
    Index("ix_alias_assignments_model_id_alias", "model_id", "alias"),
    # At most one open period per (model, alias): the database enforces what "current" means.
    Index(
        "uq_alias_assignments_open",
        "model_id",
        "alias",
        unique=True,
        sqlite_where=text("cleared_at IS NULL"),
        postgresql_where=text("cleared_at IS NULL"),
    ),
)

# -- identity ----------------------------------------------------------------------------------

principals = Table(
    "principals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
)

role_grants = Table(
    "role_grants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("principal_id", Integer, ForeignKey("principals.id"), nullable=False, index=True),
    # NULL for the global admin role; otherwise the team the role holds in.
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=True),
    Column("role", String(16), nullable=False),
    Column("granted_by", String(128), nullable=False),
    Column("granted_at", UtcDateTime, nullable=False),
    UniqueConstraint("principal_id", "team_id", "role", name="uq_role_grants_principal_team_role"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("principal_id", Integer, ForeignKey("principals.id"), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    # SHA-256 of the token; the token itself is shown once and never stored.
    Column("digest", String(64), nullable=False, unique=True),
    Column("hint", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_by", String(128), nullable=True),
    Column("last_used_at", UtcDateTime, nullable=True),
)

# -- audit trail -------------------------------------------------------------------------------

audit_events = Table(
    "audit_events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False, index=True),
    Column("action", String(64), nullable=False, index=True),
    Column("subject_type", String(32), nullable=False),
    Column("subject_id", String(256), nullable=False),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # HMAC-SHA256 of `hash` with the audit key (a file, not in the database); NULL on events
    # written before Keel signed them.
    Column("signature", String(64), nullable=True),
    Index("ix_audit_events_subject", "subject_type", "subject_id"),
)

# One row: the newest event's seq and hash. Appends update it first, which takes its row lock and
# so serialises writers of the chain on PostgreSQL (SQLite's write lock already does).
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Each area's tables live in their own module on the same `metadata`; importing them here means
# anything that reads `metadata` (the migrations' comparison test, create_all) sees every table.
from keel.store.sql import tables_compute_usage as _compute_usage  # noqa: E402,F401
from keel.store.sql import tables_costs as _costs  # noqa: E402,F401
from keel.store.sql import tables_deployments as _deployments  # noqa: E402,F401
from keel.store.sql import tables_drills as _drills  # noqa: E402,F401
from keel.store.sql import tables_estimation as _estimation  # noqa: E402,F401
from keel.store.sql import tables_evaluation as _evaluation  # noqa: E402,F401
from keel.store.sql import tables_governance as _governance  # noqa: E402,F401
from keel.store.sql import tables_incidents as _incidents  # noqa: E402,F401
from keel.store.sql import tables_jobs as _jobs  # noqa: E402,F401
from keel.store.sql import tables_mlflow as _mlflow  # noqa: E402,F401
from keel.store.sql import tables_monitoring as tables_monitoring  # noqa: E402
from keel.store.sql import tables_notifications as _notifications  # noqa: E402,F401
from keel.store.sql import tables_playbooks as _playbooks  # noqa: E402,F401
from keel.store.sql import tables_risk as _risk  # noqa: E402,F401
from keel.store.sql import tables_slo_budgets as _slo_budgets  # noqa: E402,F401
from keel.store.sql import tables_telemetry as tables_telemetry  # noqa: E402
from keel.store.sql import tables_value as _value  # noqa: E402,F401
