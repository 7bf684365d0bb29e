"""The portfolio's facts, read in batches: one statement per kind of fact for all the models of a
page, never one per model, so a page of 1,000 models costs the same statements as a page of 50.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select
from sqlalchemy.sql.elements import ColumnElement

from keel.domain.deployments import Deployment, DeploymentState
from keel.domain.incidents import IncidentStatus
from keel.domain.lifecycle import VersionStatus
from keel.domain.monitoring import Check, Status
from keel.domain.registry import RiskTier
from keel.store.sql import codec
from keel.store.sql.deployments import _deployment
from keel.store.sql.engine import read_transaction
from keel.store.sql.tables import alias_assignments, model_versions, models, teams
from keel.store.sql.tables_deployments import deployments
from keel.store.sql.tables_governance import gate_results
from keel.store.sql.tables_incidents import incidents
from keel.store.sql.tables_monitoring import metric_points
from keel.store.sql.tables_notifications import slos
from keel.store.sql.tables_slo_budgets import slo_budgets

# Versions not yet in production, newest first: the "newest candidate" of a model.
UPCOMING = (VersionStatus.REGISTERED, VersionStatus.CANDIDATE, VersionStatus.APPROVED)


@dataclass(frozen=True)
class PortfolioFilter:
    team: str | None = None
    risk_tier: RiskTier | None = None
    status: VersionStatus | None = None  # models having a version in this status


@dataclass(frozen=True)
class ModelLine:
    id: int
    name: str
    team: str
    owner: str
    risk_tier: str
    latest_version: int


@dataclass(frozen=True)
class Upcoming:
    """A model's newest version that is not in production yet, with its latest gate outcomes."""

    version: int
    status: VersionStatus
    gates: dict[str, str]  # gate -> outcome of its latest result


@dataclass(frozen=True)
class CheckStatus:
    check: Check
    status: Status
    window_end: datetime


def _open_incidents() -> ColumnElement[bool]:
    return incidents.c.status != str(IncidentStatus.RESOLVED)


class SqlPortfolioStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlPortfolioStore({self._engine.url!r})"

    @contextmanager
    def reading(self, conn: Connection | None = None) -> Iterator[Connection]:
        """One read transaction for several of the reads below (pass it as ``conn``): a page's
        facts come from one snapshot, over one connection."""
        if conn is not None:
            yield conn
            return
        with read_transaction(self._engine) as opened:
            yield opened

    # -- the page of models --------------------------------------------------------------------

    def _sort_keys(self) -> dict[str, Any]:
        production = (
            select(func.max(model_versions.c.version))
            .where(
                model_versions.c.model_id == models.c.id,
                model_versions.c.status == str(VersionStatus.PRODUCTION),
            )
            .scalar_subquery()
        )
        open_incidents = (
            select(func.count())
            .select_from(incidents)
            .where(incidents.c.model_id == models.c.id, _open_incidents())
            .scalar_subquery()
        )
        return {
            "name": models.c.name,
            "team": teams.c.name,
            "owner": models.c.owner,
            "risk_tier": models.c.risk_tier,
            "production": func.coalesce(production, 0),
            "incidents": open_incidents,
            "versions": models.c.latest_version,
        }

    def sort_columns(self) -> tuple[str, ...]:
        return tuple(self._sort_keys())

    def models(
        self,
        where: PortfolioFilter,
        *,
        sort: str,
        descending: bool,
        offset: int,
        limit: int,
        conn: Connection | None = None,
    ) -> tuple[int, list[ModelLine]]:
        """The number of models matching ``where``, and the page of them in ``sort`` order."""
        conditions: list[ColumnElement[bool]] = []
        if where.team:
            conditions.append(teams.c.name == where.team)
        if where.risk_tier:
            conditions.append(models.c.risk_tier == str(where.risk_tier))
        if where.status:
            conditions.append(
                select(model_versions.c.id)
                .where(
                    model_versions.c.model_id == models.c.id,
                    model_versions.c.status == str(where.status),
                )
                .exists()
            )
        joined = models.join(teams, teams.c.id == models.c.team_id)
        key = self._sort_keys()[sort]
        order = [key.desc() if descending else key.asc(), models.c.name.asc()]
        page = (
            select(
                models.c.id,
                models.c.name,
                teams.c.name.label("team"),
                models.c.owner,
                models.c.risk_tier,
                models.c.latest_version,
            )
            .select_from(joined)
            .where(*conditions)
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        )
        counted = select(func.count()).select_from(joined).where(*conditions)
        with self.reading(conn) as conn:
            total = int(conn.execute(counted).scalar_one())
            rows = conn.execute(page).all()
        return total, [
            ModelLine(int(r.id), r.name, r.team, r.owner, r.risk_tier, int(r.latest_version or 0))
            for r in rows
        ]

    def team_names(self, conn: Connection | None = None) -> list[str]:
        with self.reading(conn) as conn:
            return list(conn.execute(select(teams.c.name).order_by(teams.c.name)).scalars())

    # -- facts about the models of a page (one statement each) ---------------------------------

    def production_versions(
        self, ids: Sequence[int], conn: Connection | None = None
    ) -> dict[int, int]:
        """Each model's version under the ``production`` alias."""
        stmt = (
            select(alias_assignments.c.model_id, model_versions.c.version)
            .join(model_versions, model_versions.c.id == alias_assignments.c.version_id)
            .where(
                alias_assignments.c.model_id.in_(ids),
                alias_assignments.c.alias == "production",
                alias_assignments.c.cleared_at.is_(None),
            )
        )
        with self.reading(conn) as conn:
            return {int(r.model_id): int(r.version) for r in conn.execute(stmt)}

    def rollouts(self, ids: Sequence[int], conn: Connection | None = None) -> dict[int, Deployment]:
        """Each model's deployment in progress (progressing or paused)."""
        active = (str(DeploymentState.PROGRESSING), str(DeploymentState.PAUSED))
        stmt = (
            select(deployments, models.c.name.label("model_name"))
            .join(models, models.c.id == deployments.c.model_id)
            .where(deployments.c.model_id.in_(ids), deployments.c.state.in_(active))
            .order_by(deployments.c.id)
        )
        with self.reading(conn) as conn:
            return {int(r.model_id): _deployment(r.model_name, r) for r in conn.execute(stmt)}

    def open_incidents(
        self, ids: Sequence[int], conn: Connection | None = None
    ) -> dict[int, dict[str, int]]:
        """Open (not resolved) incidents per model and severity."""
        stmt = (
            select(incidents.c.model_id, incidents.c.severity, func.count().label("n"))
            .where(incidents.c.model_id.in_(ids), _open_incidents())
            .group_by(incidents.c.model_id, incidents.c.severity)
        )
        found: dict[int, dict[str, int]] = defaultdict(dict)
        with self.reading(conn) as conn:
            for r in conn.execute(stmt):
                found[int(r.model_id)][r.severity] = int(r.n)
        return dict(found)

    def upcoming(self, ids: Sequence[int], conn: Connection | None = None) -> dict[int, Upcoming]:
        """Each model's newest version not yet in production, and its latest gate outcomes."""
        newest = (
            select(model_versions.c.model_id, func.max(model_versions.c.version).label("version"))
            .where(
                model_versions.c.model_id.in_(ids),
                model_versions.c.status.in_([str(s) for s in UPCOMING]),
            )
            .group_by(model_versions.c.model_id)
            .subquery()
        )
        chosen = (
            select(model_versions.c.id, model_versions.c.model_id, model_versions.c.version)
            .add_columns(model_versions.c.status)
            .join(
                newest,
                and_(
                    newest.c.model_id == model_versions.c.model_id,
                    newest.c.version == model_versions.c.version,
                ),
            )
            .subquery()
        )
        stmt = (
            select(
                chosen.c.model_id,
                chosen.c.version,
                chosen.c.status,
                gate_results.c.gate,
                gate_results.c.outcome,
            )
            .select_from(chosen)
            .outerjoin(gate_results, gate_results.c.version_id == chosen.c.id)
            .order_by(chosen.c.model_id, gate_results.c.id)
        )
        found: dict[int, Upcoming] = {}
        with self.reading(conn) as conn:
            for r in conn.execute(stmt):
                model_id = int(r.model_id)
                entry = found.setdefault(
                    model_id, Upcoming(int(r.version), VersionStatus(r.status), {})
                )
                if r.gate is not None:  # later results of a gate replace earlier ones
                    entry.gates[r.gate] = r.outcome
        return found

    def latest_checks(
        self, ids: Sequence[int], conn: Connection | None = None
    ) -> dict[int, list[CheckStatus]]:
        """Each model's monitoring checks in their newest window: the worst point of each."""
        newest = (
            select(
                metric_points.c.model_id,
                metric_points.c.check,
                func.max(metric_points.c.window_end).label("window_end"),
            )
            .where(metric_points.c.model_id.in_(ids))
            .group_by(metric_points.c.model_id, metric_points.c.check)
            .subquery()
        )
        stmt = select(
            metric_points.c.model_id,
            metric_points.c.check,
            metric_points.c.status,
            metric_points.c.window_end,
        ).join(
            newest,
            and_(
                newest.c.model_id == metric_points.c.model_id,
                newest.c.check == metric_points.c.check,
                newest.c.window_end == metric_points.c.window_end,
            ),
        )
        worst: dict[tuple[int, str], CheckStatus] = {}
        with self.reading(conn) as conn:
            for r in conn.execute(stmt):
                status = Status(r.status)
                key = (int(r.model_id), r.check)
                seen = worst.get(key)
                if seen is None or _rank(status) > _rank(seen.status):
                    worst[key] = CheckStatus(Check(r.check), status, codec.utc(r.window_end))
        found: dict[int, list[CheckStatus]] = defaultdict(list)
        for (model_id, _), point in sorted(worst.items()):
            found[model_id].append(point)
        return dict(found)

    def slo_budgets(
        self, ids: Sequence[int], conn: Connection | None = None
    ) -> dict[int, list[tuple[str, float]]]:
        """Each model's SLOs with the share of error budget left at their last evaluation."""
        stmt = (
            select(slos.c.model_id, slos.c.name, slo_budgets.c.budget_remaining)
            .join(slo_budgets, slo_budgets.c.slo_id == slos.c.id)
            .where(slos.c.model_id.in_(ids))
            .order_by(slos.c.model_id, slos.c.name)
        )
        found: dict[int, list[tuple[str, float]]] = defaultdict(list)
        with self.reading(conn) as conn:
            for r in conn.execute(stmt):
                found[int(r.model_id)].append((r.name, float(r.budget_remaining)))
        return dict(found)

    # -- the tiles -----------------------------------------------------------------------------

    def models_in_production(self, conn: Connection | None = None) -> int:
        stmt = select(func.count(func.distinct(alias_assignments.c.model_id))).where(
            alias_assignments.c.alias == "production", alias_assignments.c.cleared_at.is_(None)
        )
        with self.reading(conn) as conn:
            return int(conn.execute(stmt).scalar_one())

    def open_incidents_by_severity(self, conn: Connection | None = None) -> dict[str, int]:
        stmt = (
            select(incidents.c.severity, func.count().label("n"))
            .where(_open_incidents())
            .group_by(incidents.c.severity)
        )
        with self.reading(conn) as conn:
            return {r.severity: int(r.n) for r in conn.execute(stmt)}

    def candidates_waiting(self, conn: Connection | None = None) -> int:
        """Versions in ``candidate``: waiting for their gates or their sign-off."""
        stmt = (
            select(func.count())
            .select_from(model_versions)
            .where(model_versions.c.status == str(VersionStatus.CANDIDATE))
        )
        with self.reading(conn) as conn:
            return int(conn.execute(stmt).scalar_one())


_RANK = {Status.OK: 0, Status.NO_DATA: 1, Status.WARNING: 2, Status.ALERT: 3}


def _rank(status: Status) -> int:
    return _RANK[status]
