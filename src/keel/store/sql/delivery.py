"""The records DORA metrics and maturity read: promotions, rollbacks and incidents by scope.

Every move of the ``production`` alias is a promotion (governance moves it, nothing else may),
so the promotions table is the alias history the metrics need.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, select

from keel.domain.delivery import DeliveryHistory, Deployment, IncidentRecord, Rollback
from keel.store.sql import codec
from keel.store.sql.engine import read_transaction
from keel.store.sql.tables import model_versions, models, teams
from keel.store.sql.tables_governance import promotions
from keel.store.sql.tables_incidents import incidents
from keel.store.sql.tables_playbooks import rollbacks


def _scoped(query: Select[Any], model: str | None, team: str | None) -> Select[Any]:
    if model is not None:
        query = query.where(models.c.name == model)
    if team is not None:
        query = query.where(teams.c.name == team)
    return query


def _commit_time(lineage: Any) -> datetime | None:
    # Lineage records no commit time today; a client that adds ``git_commit_time`` gets the
    # commit-to-production lead time with no change here.
    raw = lineage.get("git_commit_time") if isinstance(lineage, dict) else None
    try:
        return codec.utc(datetime.fromisoformat(raw)) if isinstance(raw, str) else None
    except ValueError:
        return None


class SqlDeliveryStore:
    """Reads only; the records belong to governance and incidents."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlDeliveryStore(backend={self._engine.dialect.name!r})"

    def history(self, *, model: str | None = None, team: str | None = None) -> DeliveryHistory:
        """Promotions (rollbacks apart), rollbacks and incidents of the model, team or all."""
        with read_transaction(self._engine) as conn:
            promoted = conn.execute(
                _scoped(
                    select(
                        promotions.c.id,
                        promotions.c.promoted_at,
                        models.c.name.label("model"),
                        teams.c.name.label("team"),
                        model_versions.c.version,
                        model_versions.c.created_at,
                        model_versions.c.lineage,
                        rollbacks.c.id.label("rollback_id"),
                        rollbacks.c.from_version,
                        rollbacks.c.incident_id,
                    )
                    .join(models, models.c.id == promotions.c.model_id)
                    .join(teams, teams.c.id == models.c.team_id)
                    .join(model_versions, model_versions.c.id == promotions.c.version_id)
                    .outerjoin(rollbacks, rollbacks.c.promotion_id == promotions.c.id)
                    .order_by(promotions.c.promoted_at, promotions.c.id),
                    model,
                    team,
                )
            ).all()
            opened = conn.execute(
                _scoped(
                    select(
                        incidents.c.id,
                        incidents.c.version,
                        incidents.c.severity,
                        incidents.c.opened_at,
                        incidents.c.resolved_at,
                        models.c.name.label("model"),
                    )
                    .join(models, models.c.id == incidents.c.model_id)
                    .join(teams, teams.c.id == models.c.team_id)
                    .where(incidents.c.drill_id.is_(None))  # drills are not failures
                    .order_by(incidents.c.opened_at, incidents.c.id),
                    model,
                    team,
                )
            ).all()
        deployments, moved_back = [], []
        for row in promoted:
            at = codec.utc(row.promoted_at)
            if row.rollback_id is None:
                deployments.append(
                    Deployment(
                        model=row.model,
                        team=row.team,
                        version=int(row.version),
                        at=at,
                        registered_at=codec.utc(row.created_at),
                        promotion_id=int(row.id),
                        commit_at=_commit_time(row.lineage),
                    )
                )
            else:
                moved_back.append(
                    Rollback(
                        id=int(row.rollback_id),
                        model=row.model,
                        from_version=int(row.from_version),
                        to_version=int(row.version),
                        at=at,
                        incident_id=row.incident_id,
                    )
                )
        records = [
            IncidentRecord(
                id=int(row.id),
                model=row.model,
                version=row.version,
                severity=row.severity,
                opened_at=codec.utc(row.opened_at),
                resolved_at=None if row.resolved_at is None else codec.utc(row.resolved_at),
            )
            for row in opened
        ]
        return DeliveryHistory(tuple(deployments), tuple(moved_back), tuple(records))
