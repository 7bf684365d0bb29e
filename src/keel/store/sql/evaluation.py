"""Scan reports and evaluation datasets in SQL; every write appends its audit event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from keel.domain.evaluation import EvaluationDataset, ScanFinding, ScanReport
from keel.errors import NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import model_versions, models
from keel.store.sql.tables_evaluation import artifact_scans, evaluation_datasets


def _scan(row: Any) -> ScanReport:
    return ScanReport(
        sha256=row.sha256,
        scanner=row.scanner,
        scanner_version=row.scanner_version,
        safe=bool(row.safe),
        findings=tuple(ScanFinding(str(f["severity"]), str(f["message"])) for f in row.findings),
        scanned_at=codec.utc(row.scanned_at),
    )


def _version_id(conn: Connection, model: str, version: int, *, lock: bool = False) -> int:
    """The version's row id; ``lock`` holds its row (FOR UPDATE on PostgreSQL; SQLite writers
    are already serialised by BEGIN IMMEDIATE) so concurrent attachments queue, not collide."""
    query = (
        select(model_versions.c.id)
        .join(models, models.c.id == model_versions.c.model_id)
        .where(models.c.name == model, model_versions.c.version == version)
    )
    if lock:
        query = query.with_for_update(of=model_versions)
    found = conn.execute(query).scalar()
    if found is None:
        raise NotFound(
            f"Model {model!r} has no version {version}.", {"model": model, "version": version}
        )
    return int(found)


class SqlEvaluationStore:
    """Where scan reports (one per artifact SHA-256) and evaluation datasets are recorded."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlEvaluationStore(backend={self._engine.dialect.name!r})"

    def get_scan(self, sha256: str) -> ScanReport | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(artifact_scans).where(artifact_scans.c.sha256 == sha256)
            ).first()
        return None if row is None else _scan(row)

    def save_scan(self, report: ScanReport, actor: str) -> ScanReport:
        """Record ``report`` unless its artifact was scanned already by the same scanner version
        (then return the stored one); a report by another scanner version is replaced."""
        values = {
            "scanner": report.scanner,
            "scanner_version": report.scanner_version,
            "safe": report.safe,
            "findings": [{"severity": f.severity, "message": f.message} for f in report.findings],
            "scanned_at": report.scanned_at,
        }
        try:
            with write_transaction(self._engine) as conn:
                row = conn.execute(
                    select(artifact_scans).where(artifact_scans.c.sha256 == report.sha256)
                ).first()
                stored = None if row is None else _scan(row)
                if stored is not None and (stored.scanner, stored.scanner_version) == (
                    report.scanner,
                    report.scanner_version,
                ):
                    return stored
                if stored is None:
                    conn.execute(artifact_scans.insert().values(sha256=report.sha256, **values))
                else:
                    conn.execute(
                        artifact_scans.update()
                        .where(artifact_scans.c.sha256 == report.sha256)
                        .values(**values)
                    )
                audit.append(
                    conn,
                    actor=actor,
                    action="artifact.scan",
                    subject_type="artifact",
                    subject_id=report.sha256,
                    details={
                        "scanner": f"{report.scanner} {report.scanner_version}",
                        "safe": report.safe,
                        "findings": [f.severity for f in report.findings],
                    },
                )
                return report
        except IntegrityError:  # a concurrent upload of the same bytes scanned it first
            stored = self.get_scan(report.sha256)
            if stored is None:
                raise
            return stored

    def get_dataset(self, model: str, version: int) -> EvaluationDataset | None:
        with read_transaction(self._engine) as conn:
            version_id = _version_id(conn, model, version)
            row = conn.execute(
                select(evaluation_datasets).where(evaluation_datasets.c.version_id == version_id)
            ).first()
        if row is None:
            return None
        return EvaluationDataset(
            model=model,
            version=version,
            sha256=row.sha256,
            format=row.format,
            rows=int(row.rows),
            columns=tuple(row.columns),
            uploaded_by=row.uploaded_by,
            uploaded_at=codec.utc(row.uploaded_at),
        )

    def put_dataset(self, dataset: EvaluationDataset) -> EvaluationDataset:
        """Attach ``dataset`` to its version, replacing any earlier one (both in the audit)."""
        values = {
            "sha256": dataset.sha256,
            "format": dataset.format,
            "rows": dataset.rows,
            "columns": list(dataset.columns),
            "uploaded_by": dataset.uploaded_by,
            "uploaded_at": dataset.uploaded_at,
        }
        with write_transaction(self._engine) as conn:
            version_id = _version_id(conn, dataset.model, dataset.version, lock=True)
            previous = conn.execute(
                select(evaluation_datasets.c.sha256).where(
                    evaluation_datasets.c.version_id == version_id
                )
            ).scalar()
            if previous is None:
                conn.execute(evaluation_datasets.insert().values(version_id=version_id, **values))
            else:
                conn.execute(
                    evaluation_datasets.update()
                    .where(evaluation_datasets.c.version_id == version_id)
                    .values(**values)
                )
            audit.append(
                conn,
                actor=dataset.uploaded_by,
                action="evaluation_data.attach",
                subject_type="version",
                subject_id=f"{dataset.model}/{dataset.version}",
                details={
                    "sha256": dataset.sha256,
                    "format": dataset.format,
                    "rows": dataset.rows,
                    "columns": list(dataset.columns),
                    "replaced": previous,
                },
            )
        return dataset
