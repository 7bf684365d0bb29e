"""What the MLflow-compatible registry API keeps beside Keel's registry (see tables_mlflow).

Every write appends its audit event in the same transaction, like the registry store's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from keel.domain.lifecycle import VersionStatus
from keel.errors import Conflict, NotFound
from keel.store.sql import audit
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.registry import move_version_status
from keel.store.sql.tables import model_versions, models
from keel.store.sql.tables_mlflow import (
    mlflow_deleted_models,
    mlflow_model_tags,
    mlflow_version_tags,
    mlflow_versions,
)


@dataclass(frozen=True)
class MlflowVersionRecord:
    """The MLflow side of one Keel version; empty strings when it was not made through MLflow."""

    model: str
    version: int
    source: str = ""
    storage_location: str = ""
    run_id: str = ""
    run_link: str = ""
    stage: str = "None"
    deleted: bool = False
    tags: dict[str, str] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


class SqlMlflowStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlMlflowStore(backend={self._engine.dialect.name!r})"

    # -- lookups -------------------------------------------------------------------------------

    @staticmethod
    def _model_id(conn: Connection, name: str) -> int:
        found = conn.execute(select(models.c.id).where(models.c.name == name)).scalar()
        if found is None:
            raise NotFound(f"No model named {name!r}.", {"model": name})
        return int(found)

    @staticmethod
    def _version_id(conn: Connection, model: str, version: int) -> int:
        found = conn.execute(
            select(model_versions.c.id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(models.c.name == model, model_versions.c.version == version)
        ).scalar()
        if found is None:
            raise NotFound(
                f"Model {model!r} has no version {version}.", {"model": model, "version": version}
            )
        return int(found)

    def deleted_models(self) -> frozenset[str]:
        """Names of the models deleted through the MLflow API (Keel keeps them)."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(models.c.name).join(
                    mlflow_deleted_models, mlflow_deleted_models.c.model_id == models.c.id
                )
            ).scalars()
            return frozenset(rows)

    def model_tags(self) -> dict[str, dict[str, str]]:
        """Every model's MLflow tags, by model name."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(models.c.name, mlflow_model_tags.c.key, mlflow_model_tags.c.value)
                .join(models, models.c.id == mlflow_model_tags.c.model_id)
                .order_by(mlflow_model_tags.c.key)
            ).all()
        tags: dict[str, dict[str, str]] = {}
        for row in rows:
            tags.setdefault(row.name, {})[row.key] = row.value
        return tags

    def version_records(
        self, model: str | None = None
    ) -> dict[tuple[str, int], MlflowVersionRecord]:
        """The MLflow side of every version (of ``model``), by (model, version)."""
        where: Any = models.c.name == model if model is not None else True
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(
                    models.c.name,
                    model_versions.c.version,
                    model_versions.c.id,
                    mlflow_versions,
                )
                .join(models, models.c.id == model_versions.c.model_id)
                .outerjoin(mlflow_versions, mlflow_versions.c.version_id == model_versions.c.id)
                .where(where)
            ).all()
            tag_rows = conn.execute(
                select(mlflow_version_tags)
                .join(model_versions, model_versions.c.id == mlflow_version_tags.c.version_id)
                .join(models, models.c.id == model_versions.c.model_id)
                .where(where)
                .order_by(mlflow_version_tags.c.key)
            ).all()
        tags: dict[int, dict[str, str]] = {}
        for t in tag_rows:
            tags.setdefault(t.version_id, {})[t.key] = t.value
        return {
            (r.name, r.version): MlflowVersionRecord(
                model=r.name,
                version=r.version,
                source=r.source or "",
                storage_location=r.storage_location or "",
                run_id=r.run_id or "",
                run_link=r.run_link or "",
                stage=r.stage or "None",
                deleted=r.deleted_at is not None,
                tags=tags.get(r.id, {}),
            )
            for r in rows
        }

    # -- writes --------------------------------------------------------------------------------

    def record_version(
        self,
        model: str,
        version: int,
        *,
        source: str,
        storage_location: str,
        run_id: str,
        run_link: str,
        tags: Mapping[str, str],
        actor: str,
    ) -> None:
        """Note where a version registered through MLflow came from, with its tags."""
        with write_transaction(self._engine) as conn:
            version_id = self._version_id(conn, model, version)
            conn.execute(
                mlflow_versions.insert().values(
                    version_id=version_id,
                    source=source,
                    storage_location=storage_location,
                    run_id=run_id,
                    run_link=run_link,
                    stage="None",
                )
            )
            for key, value in tags.items():
                conn.execute(
                    mlflow_version_tags.insert().values(version_id=version_id, key=key, value=value)
                )
            audit.append(
                conn,
                actor=actor,
                action="mlflow.version.source",
                subject_type="model_version",
                subject_id=f"{model}/{version}",
                details={"source": source, "run_id": run_id, "tags": dict(tags)},
            )

    def _ensure_record(self, conn: Connection, version_id: int) -> None:
        known = conn.execute(
            select(mlflow_versions.c.version_id).where(mlflow_versions.c.version_id == version_id)
        ).first()
        if known is None:
            conn.execute(
                mlflow_versions.insert().values(
                    version_id=version_id,
                    source="",
                    storage_location="",
                    run_id="",
                    run_link="",
                    stage="None",
                )
            )

    def set_model_tag(self, model: str, key: str, value: str, actor: str) -> None:
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            conn.execute(
                mlflow_model_tags.delete().where(
                    mlflow_model_tags.c.model_id == model_id, mlflow_model_tags.c.key == key
                )
            )
            conn.execute(mlflow_model_tags.insert().values(model_id=model_id, key=key, value=value))
            audit.append(
                conn,
                actor=actor,
                action="mlflow.model.tag",
                subject_type="model",
                subject_id=model,
                details={"key": key, "value": value},
            )

    def delete_model_tag(self, model: str, key: str, actor: str) -> None:
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            deleted = conn.execute(
                mlflow_model_tags.delete().where(
                    mlflow_model_tags.c.model_id == model_id, mlflow_model_tags.c.key == key
                )
            ).rowcount
            if not deleted:
                raise NotFound(f"Model {model!r} has no tag {key!r}.", {"model": model, "key": key})
            audit.append(
                conn,
                actor=actor,
                action="mlflow.model.untag",
                subject_type="model",
                subject_id=model,
                details={"key": key},
            )

    def set_version_tag(self, model: str, version: int, key: str, value: str, actor: str) -> None:
        with write_transaction(self._engine) as conn:
            version_id = self._version_id(conn, model, version)
            conn.execute(
                mlflow_version_tags.delete().where(
                    mlflow_version_tags.c.version_id == version_id,
                    mlflow_version_tags.c.key == key,
                )
            )
            conn.execute(
                mlflow_version_tags.insert().values(version_id=version_id, key=key, value=value)
            )
            audit.append(
                conn,
                actor=actor,
                action="mlflow.version.tag",
                subject_type="model_version",
                subject_id=f"{model}/{version}",
                details={"key": key, "value": value},
            )

    def delete_version_tag(self, model: str, version: int, key: str, actor: str) -> None:
        with write_transaction(self._engine) as conn:
            version_id = self._version_id(conn, model, version)
            deleted = conn.execute(
                mlflow_version_tags.delete().where(
                    mlflow_version_tags.c.version_id == version_id,
                    mlflow_version_tags.c.key == key,
                )
            ).rowcount
            if not deleted:
                raise NotFound(
                    f"Model {model!r} version {version} has no tag {key!r}.",
                    {"model": model, "version": version, "key": key},
                )
            audit.append(
                conn,
                actor=actor,
                action="mlflow.version.untag",
                subject_type="model_version",
                subject_id=f"{model}/{version}",
                details={"key": key},
            )

    def set_version_description(
        self, model: str, version: int, description: str, actor: str
    ) -> None:
        with write_transaction(self._engine) as conn:
            version_id = self._version_id(conn, model, version)
            conn.execute(
                update(model_versions)
                .where(model_versions.c.id == version_id)
                .values(description=description, updated_at=_now())
            )
            audit.append(
                conn,
                actor=actor,
                action="mlflow.version.describe",
                subject_type="model_version",
                subject_id=f"{model}/{version}",
                details={"description": description},
            )

    def set_stage(self, model: str, version: int, stage: str, actor: str) -> None:
        """Record an MLflow stage that moves no traffic (None, Staging, Archived)."""
        with write_transaction(self._engine) as conn:
            version_id = self._version_id(conn, model, version)
            self._ensure_record(conn, version_id)
            conn.execute(
                update(mlflow_versions)
                .where(mlflow_versions.c.version_id == version_id)
                .values(stage=stage)
            )
            audit.append(
                conn,
                actor=actor,
                action="mlflow.version.stage",
                subject_type="model_version",
                subject_id=f"{model}/{version}",
                details={"stage": stage},
            )

    def _retire_for_delete(
        self, conn: Connection, model: str, version_row: Any, actor: str, now: datetime
    ) -> None:
        status = VersionStatus(version_row.status)
        if status == VersionStatus.PRODUCTION:
            raise Conflict(
                f"{model} version {version_row.version} is in production, so it cannot be "
                "deleted: promote another version or roll back first (keel rollback "
                f"{model} --reason ...).",
                {"model": model, "version": version_row.version, "status": str(status)},
            )
        if status != VersionStatus.ARCHIVED:
            move_version_status(
                conn,
                version_row,
                model,
                VersionStatus.ARCHIVED,
                actor,
                "deleted through the MLflow registry API",
                now,
            )
        self._ensure_record(conn, version_row.id)
        conn.execute(
            update(mlflow_versions)
            .where(mlflow_versions.c.version_id == version_row.id)
            .values(deleted_at=now)
        )

    def delete_version(self, model: str, version: int, actor: str) -> None:
        """Archive the version (Keel keeps its record) and hide it from the MLflow API."""
        with write_transaction(self._engine) as conn:
            now = _now()
            row = conn.execute(
                select(model_versions.c.id, model_versions.c.version, model_versions.c.status)
                .join(models, models.c.id == model_versions.c.model_id)
                .where(models.c.name == model, model_versions.c.version == version)
            ).first()
            if row is None:
                raise NotFound(
                    f"Model {model!r} has no version {version}.",
                    {"model": model, "version": version},
                )
            self._retire_for_delete(conn, model, row, actor, now)
            audit.append(
                conn,
                actor=actor,
                action="mlflow.version.delete",
                subject_type="model_version",
                subject_id=f"{model}/{version}",
            )

    def delete_model(self, model: str, actor: str) -> None:
        """Archive every version and hide the model from the MLflow API; refused while a
        version is in production."""
        with write_transaction(self._engine) as conn:
            now = _now()
            model_id = self._model_id(conn, model)
            rows = conn.execute(
                select(model_versions.c.id, model_versions.c.version, model_versions.c.status)
                .where(model_versions.c.model_id == model_id)
                .order_by(model_versions.c.version)
            ).all()
            for row in rows:
                self._retire_for_delete(conn, model, row, actor, now)
            conn.execute(
                mlflow_deleted_models.insert().values(
                    model_id=model_id, deleted_by=actor, deleted_at=now
                )
            )
            audit.append(
                conn,
                actor=actor,
                action="mlflow.model.delete",
                subject_type="model",
                subject_id=model,
                details={"versions_archived": [r.version for r in rows]},
            )

    def rename_model(self, model: str, new_name: str, actor: str) -> None:
        """Rename a model that has no versions yet: once one exists, telemetry, serving URLs
        and the audit trail know the model by its name."""
        with write_transaction(self._engine) as conn:
            model_id = self._model_id(conn, model)
            if conn.execute(select(models.c.id).where(models.c.name == new_name)).first():
                raise Conflict(f"A model named {new_name!r} already exists.", {"model": new_name})
            has_versions = conn.execute(
                select(model_versions.c.id).where(model_versions.c.model_id == model_id)
            ).first()
            if has_versions is not None:
                raise Conflict(
                    f"{model} has versions, so Keel does not rename it: its telemetry, serving "
                    "URLs and audit trail know it by this name. Register the new name and its "
                    "versions instead.",
                    {"model": model, "new_name": new_name},
                )
            conn.execute(update(models).where(models.c.id == model_id).values(name=new_name))
            audit.append(
                conn,
                actor=actor,
                action="mlflow.model.rename",
                subject_type="model",
                subject_id=new_name,
                details={"previous_name": model},
            )
