"""Candidate versions with their gate results and decisions, read in three statements however
many there are (the dashboard's approvals queue must not issue a query per version)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from keel.domain.governance import Approval, GateResult
from keel.domain.lifecycle import VersionStatus
from keel.store.sql import codec
from keel.store.sql.engine import read_transaction
from keel.store.sql.tables import model_versions, models, teams
from keel.store.sql.tables_governance import approvals, gate_results


@dataclass(frozen=True)
class CandidateRecord:
    """A candidate version as sign-off sees it: who registered it, its gates, its decisions."""

    model: str
    team: str
    risk_tier: str
    version: int
    created_by: str
    created_at: datetime
    metrics: dict[str, Any]
    results: tuple[GateResult, ...]
    decisions: tuple[Approval, ...]


def candidates(
    engine: Engine,
    result_row: Any,
    approval_row: Any,
    *,
    limit: int,
) -> list[CandidateRecord]:
    """The ``limit`` oldest candidate versions (the longest waiting first).

    ``result_row`` and ``approval_row`` turn a row into its entity (the governance store's own
    converters), so both stores read rows the same way.
    """
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(
                model_versions.c.id,
                model_versions.c.version,
                model_versions.c.created_by,
                model_versions.c.created_at,
                model_versions.c.metrics,
                models.c.name.label("model"),
                models.c.risk_tier,
                teams.c.name.label("team"),
            )
            .join(models, models.c.id == model_versions.c.model_id)
            .join(teams, teams.c.id == models.c.team_id)
            .where(model_versions.c.status == str(VersionStatus.CANDIDATE))
            .order_by(model_versions.c.created_at, model_versions.c.id)
            .limit(limit)
        ).all()
        ids = [r.id for r in rows]
        named = {r.id: (r.model, r.version) for r in rows}
        results: dict[int, list[GateResult]] = defaultdict(list)
        decisions: dict[int, list[Approval]] = defaultdict(list)
        if ids:
            for r in conn.execute(
                select(gate_results)
                .where(gate_results.c.version_id.in_(ids))
                .order_by(gate_results.c.id)
            ):
                results[r.version_id].append(result_row(r, *named[r.version_id]))
            for r in conn.execute(
                select(approvals).where(approvals.c.version_id.in_(ids)).order_by(approvals.c.id)
            ):
                decisions[r.version_id].append(approval_row(r, *named[r.version_id]))
    return [
        CandidateRecord(
            model=r.model,
            team=r.team,
            risk_tier=r.risk_tier,
            version=r.version,
            created_by=r.created_by,
            created_at=codec.utc(r.created_at),
            metrics=dict(r.metrics or {}),
            results=tuple(results[r.id]),
            decisions=tuple(decisions[r.id]),
        )
        for r in rows
    ]
