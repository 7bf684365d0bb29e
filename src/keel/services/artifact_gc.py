"""`keel gc`: delete artifact blobs no version references, once they are old enough.

A blob is collected only when no model version's artifact and no evaluation dataset is stored
under its SHA-256, and it was last written more than the retention period ago; the period
covers an upload whose version row is not committed yet. Every run that deletes is audited
(``artifacts.gc`` with each digest and size); a dry run deletes and audits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from keel.domain.permissions import Permission, Principal, authorize
from keel.errors import InvalidInput, NotFound
from keel.store.artifacts import ArtifactStore
from keel.store.sql.artifact_references import record_collection, referenced_digests

DEFAULT_RETENTION_DAYS = 7


@dataclass(frozen=True)
class Collection:
    dry_run: bool
    retention_days: int
    blobs: tuple[tuple[str, int], ...]  # (sha256, size) deleted, or that a dry run would delete
    kept_recent: int

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.blobs)


def orphaned_blobs(
    engine: Engine, artifacts: ArtifactStore, retention_days: int, now: datetime | None = None
) -> tuple[list[tuple[str, int]], int]:
    """(unreferenced blobs older than the retention, unreferenced ones still too young)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    referenced = referenced_digests(engine)
    old, young = [], 0
    for sha256, size, modified in artifacts.objects():
        if sha256 in referenced:
            continue
        if modified < cutoff:
            old.append((sha256, size))
        else:
            young += 1
    return old, young


def collect(
    engine: Engine,
    artifacts: ArtifactStore,
    by: Principal,
    *,
    dry_run: bool = True,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    now: datetime | None = None,
) -> Collection:
    """Delete (or with ``dry_run`` only list) the orphaned blobs; admins only."""
    authorize(by, Permission.ADMIN)
    if isinstance(retention_days, bool) or not 0 <= retention_days <= 3650:
        raise InvalidInput(
            f"The 'retention_days' field must be 0 to 3650. Got {retention_days!r} instead.",
            {"field": "retention_days"},
        )
    old, young = orphaned_blobs(engine, artifacts, retention_days, now)
    if dry_run:
        return Collection(True, retention_days, tuple(old), young)
    # Check again just before deleting: a version may have been registered meanwhile.
    referenced = referenced_digests(engine)
    deleted = []
    for sha256, size in old:
        if sha256 in referenced:
            continue
        try:
            artifacts.delete(sha256)
        except NotFound:
            continue
        deleted.append((sha256, size))
    if deleted:
        record_collection(
            engine,
            by.name,
            {
                "retention_days": retention_days,
                "blobs": [{"sha256": s, "size": n} for s, n in deleted],
                "bytes": sum(n for _, n in deleted),
            },
        )
    return Collection(False, retention_days, tuple(deleted), young)
