"""Maturity per model and team: every criterion of `keel.domain.maturity` as a query on Keel's
records, with the records as evidence, or what is missing and the step that adds it.

A team's criterion holds when it holds for every model of the team (its evidence names each
model); its level on each scale is therefore the lowest of its models'. An attestation (admins
only, with a comment, audited) is kept per model or per team; a team's attestation counts for
each of its models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from keel.domain.delivery import DeliveryHistory
from keel.domain.drills import Drill
from keel.domain.governance import GateOutcome
from keel.domain.maturity import (
    BY_ID,
    CRITERIA,
    Criterion,
    CriterionResult,
    CriterionStatus,
    Evidence,
    Level,
    level,
)
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.playbooks import ActionKind, parse_playbook
from keel.domain.registry import Model, ModelQuery, ModelVersion, RiskTier, Team
from keel.errors import InvalidInput
from keel.services.alerts import Alerts
from keel.services.delivery import Delivery
from keel.services.governance import Governance
from keel.services.governance.pipeline import latest_results
from keel.services.incidents import Incidents
from keel.services.monitoring import Monitoring
from keel.services.playbooks import Playbooks
from keel.services.registry import MAX_PAGE, Registry
from keel.services.retraining import Retraining
from keel.services.telemetry import Telemetry
from keel.store.sql.value import Attestation, SqlValueStore

RECENT_DELIVERY = timedelta(days=90)
RECENT_TELEMETRY = timedelta(days=30)
MAX_COMMENT = 2000
_PASSING = (GateOutcome.PASSED, GateOutcome.NOT_REQUIRED)


class Rehearsals(Protocol):
    """Where the drills come from (`keel.services.drills.Drills`)."""

    def rehearsals(self, model: str, now: datetime) -> list[Drill]: ...


@dataclass(frozen=True)
class MaturityScore:
    """A model's or team's criteria and its level on each scale."""

    scope: str
    subject: str
    results: tuple[CriterionResult, ...]
    google: Level
    microsoft: Level
    models: tuple[str, ...] = ()


@dataclass
class _Facts:
    model: Model
    versions: list[ModelVersion]
    production: ModelVersion | None
    history: DeliveryHistory
    now: datetime


def _met(criterion: Criterion, evidence: Sequence[Evidence]) -> CriterionResult:
    return CriterionResult(criterion, CriterionStatus.MET, tuple(evidence))


def _missing(criterion: Criterion, missing: str) -> CriterionResult:
    return CriterionResult(criterion, CriterionStatus.MISSING, missing=missing)


def _version(v: ModelVersion, note: str = "") -> Evidence:
    return Evidence("version", f"{v.model}/{v.version}", v.created_at, note)


class MaturityScoring:
    """Scores models and teams; records attestations."""

    def __init__(
        self,
        store: SqlValueStore,
        registry: Registry,
        governance: Governance,
        delivery: Delivery,
        monitoring: Monitoring,
        alerts: Alerts,
        playbooks: Playbooks,
        retraining: Retraining,
        incidents: Incidents,
        telemetry: Telemetry,
    ) -> None:
        self.store = store
        self.registry = registry
        self.governance = governance
        self.delivery = delivery
        self.monitoring = monitoring
        self.alerts = alerts
        self.playbooks = playbooks
        self.retraining = retraining
        self.incidents = incidents
        self.telemetry = telemetry
        # Set by the backend once drills exist (they need the services above).
        self.drills: Rehearsals | None = None

    # -- attestations --------------------------------------------------------------------------

    def attest(
        self,
        by: Principal,
        criterion: str,
        comment: str,
        *,
        model: str | None = None,
        team: str | None = None,
    ) -> Attestation:
        """An admin's word that a criterion Keel cannot observe holds (audited)."""
        authorize(by, Permission.ADMIN)
        found = BY_ID.get(criterion)
        if found is None or not found.attestable:
            attestable = [c.id for c in CRITERIA if c.attestable]
            reason = "is decided from Keel's records" if found else "is no criterion"
            raise InvalidInput(
                f"{criterion!r} {reason}; only these can be attested: {', '.join(attestable)}.",
                {"field": "criterion", "allowed": attestable},
            )
        text = comment.strip() if isinstance(comment, str) else ""
        if not text or len(text) > MAX_COMMENT:
            raise InvalidInput(
                f"An attestation needs a comment saying what shows it (1 to {MAX_COMMENT} "
                "characters), for example a link to the CI pipeline.",
                {"field": "comment"},
            )
        scope, subject = self._subject(model, team)
        return self.store.attest(scope, subject, criterion, text, by.name)

    def _subject(self, model: str | None, team: str | None) -> tuple[str, str]:
        if (model is None) == (team is None):
            raise InvalidInput("Name one model or one team.", {"field": "model"})
        if model is not None:
            return "model", self.registry.get_model(check_name(model, "model")).name
        assert team is not None
        return "team", self.registry.store.get_team(check_name(team, "team")).name

    # -- scoring -------------------------------------------------------------------------------

    def score_model(self, model: str, *, now: datetime | None = None) -> MaturityScore:
        """Every criterion of the model with its evidence, and its level on both scales."""
        owner = self.registry.get_model(check_name(model, "model"))
        facts = self._facts(owner, now or datetime.now(UTC))
        attested = {
            **self.store.attestations("team", owner.team),
            **self.store.attestations("model", owner.name),
        }
        results = tuple(self._judge(c, facts, attested) for c in CRITERIA)
        by_id = {r.criterion.id: r for r in results}
        return MaturityScore(
            "model", owner.name, results, level("google", by_id), level("microsoft", by_id)
        )

    def score_team(self, team: str, *, now: datetime | None = None) -> MaturityScore:
        """The team's criteria (held by every model of it) and levels (its lowest model's)."""
        name = self.registry.store.get_team(check_name(team, "team")).name
        return self._team_score(
            name, [self.score_model(m.name, now=now) for m in self.team_models(name)]
        )

    def _team_score(self, name: str, scores: Sequence[MaturityScore]) -> MaturityScore:
        team_attested = self.store.attestations("team", name)
        results = []
        for index, criterion in enumerate(CRITERIA):
            per_model = [s.results[index] for s in scores]
            if criterion.id in team_attested and criterion.attestable:
                a = team_attested[criterion.id]
                evidence = (Evidence("attestation", str(a.id), a.attested_at, a.comment),)
                results.append(CriterionResult(criterion, CriterionStatus.ATTESTED, evidence))
            elif per_model and all(r.holds for r in per_model):
                results.append(
                    _met(
                        criterion,
                        [e for s, r in zip(scores, per_model, strict=True) for e in r.evidence],
                    )
                )
            else:
                lacking = [s.subject for s, r in zip(scores, per_model, strict=True) if not r.holds]
                status = (
                    CriterionStatus.NEEDS_ATTESTATION
                    if criterion.attestable
                    else CriterionStatus.MISSING
                )
                missing = (
                    "the team has no models" if not scores else "not yet for " + ", ".join(lacking)
                )
                results.append(CriterionResult(criterion, status, missing=missing))
        by_id = {r.criterion.id: r for r in results}
        return MaturityScore(
            "team",
            name,
            tuple(results),
            level("google", by_id),
            level("microsoft", by_id),
            tuple(s.subject for s in scores),
        )

    def scores(self, *, model: str | None = None, team: str | None = None) -> list[MaturityScore]:
        """The model's score, the team's, or (neither) every model's then every team's."""
        if model is not None and team is not None:
            raise InvalidInput(
                "Ask for one model or one team, not both (or neither, for everything).",
                {"field": "team"},
            )
        if model is not None:
            return [self.score_model(model)]
        if team is not None:
            return [self.score_team(team)]
        now = datetime.now(UTC)
        teams = sorted(t.name for t in self.all_teams())
        per_team = {
            t: [self.score_model(m.name, now=now) for m in self.team_models(t)] for t in teams
        }
        return [s for t in teams for s in per_team[t]] + [
            self._team_score(t, per_team[t]) for t in teams
        ]

    def all_teams(self) -> list[Team]:
        found: list[Team] = []
        cursor: str | None = None
        while True:
            page = self.registry.list_teams(cursor=cursor, limit=100)
            found.extend(page.items)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    def team_models(self, team: str) -> list[Model]:
        found: list[Model] = []
        cursor: str | None = None
        while True:
            page = self.registry.list_models(ModelQuery(team=team), cursor=cursor, limit=100)
            found.extend(page.items)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    def _facts(self, owner: Model, now: datetime) -> _Facts:
        # Read a page of versions at a time (their aliases in one statement), not one by one.
        versions: list[ModelVersion] = []
        cursor: str | None = None
        while True:
            page = self.registry.list_versions(owner.name, cursor=cursor, limit=MAX_PAGE)
            versions.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        versions.sort(key=lambda v: v.version)
        production = next((v for v in versions if "production" in v.aliases), None)
        return _Facts(owner, versions, production, self.delivery.history(model=owner.name), now)

    def _judge(
        self, criterion: Criterion, facts: _Facts, attested: dict[str, Attestation]
    ) -> CriterionResult:
        if criterion.attestable:
            a = attested.get(criterion.id)
            if a is None:
                return CriterionResult(
                    criterion,
                    CriterionStatus.NEEDS_ATTESTATION,
                    missing="Keel cannot observe this; an admin may attest it with a comment.",
                )
            evidence = (Evidence("attestation", str(a.id), a.attested_at, a.comment),)
            return CriterionResult(criterion, CriterionStatus.ATTESTED, evidence)
        # Each evidence criterion has its query below, named after it.
        query: Callable[[Criterion, _Facts], CriterionResult] = getattr(self, f"_{criterion.id}")
        return query(criterion, facts)

    # -- the queries, one per criterion ----------------------------------------------------------

    def _versions_registered(self, c: Criterion, f: _Facts) -> CriterionResult:
        if not f.versions:
            return _missing(c, "no version is registered")
        return _met(c, [_version(v) for v in f.versions[-3:]])

    def _lineage_recorded(self, c: Criterion, f: _Facts) -> CriterionResult:
        if not f.versions:
            return _missing(c, "no version is registered")
        newest = f.versions[-1]
        lacks = [
            what
            for what, value in (
                ("training data fingerprint", newest.lineage.training_data),
                ("git commit", newest.lineage.git_commit),
            )
            if value is None
        ]
        if lacks:
            return _missing(c, f"version {newest.version} records no " + " and no ".join(lacks))
        note = f"commit {newest.lineage.git_commit}"
        return _met(c, [_version(newest, note)])

    def _environment_pinned(self, c: Criterion, f: _Facts) -> CriterionResult:
        if not f.versions:
            return _missing(c, "no version is registered")
        env = f.versions[-1].environment
        if env.python_version is None or not env.packages:
            return _missing(c, f"version {f.versions[-1].version} pins no Python packages")
        note = f"Python {env.python_version}, {len(env.packages)} packages"
        return _met(c, [_version(f.versions[-1], note)])

    def _model_card(self, c: Criterion, f: _Facts) -> CriterionResult:
        if not f.versions or not f.versions[-1].card.intended_use.strip():
            return _missing(c, "the newest version's card states no intended use")
        return _met(c, [_version(f.versions[-1], "intended use stated")])

    def _risk_assessed(self, c: Criterion, f: _Facts) -> CriterionResult:
        if f.model.risk_tier == RiskTier.UNASSESSED:
            return _missing(c, f"{f.model.name} is unassessed")
        return _met(c, [Evidence("risk tier", str(f.model.risk_tier), f.model.updated_at)])

    def _automated_validation(self, c: Criterion, f: _Facts) -> CriterionResult:
        if f.production is None:
            return _missing(c, "no version is in production")
        version = f.production.version
        promotion = next(
            (p for p in reversed(self.governance.promotions(f.model.name)) if p.version == version),
            None,
        )
        if promotion is not None and promotion.break_glass:
            return _missing(c, f"version {version} reached production by break-glass override")
        results = self.governance.gate_results(f.model.name, version)
        before = [
            r for r in results if promotion is None or r.evaluated_at <= promotion.promoted_at
        ]
        ran = [r for r in before if r.outcome == GateOutcome.PASSED]
        if not ran or any(r.outcome not in _PASSING for r in latest_results(before).values()):
            return _missing(c, f"no passing gate run is recorded for version {version}")
        return _met(
            c, [Evidence("gate result", str(r.id), r.evaluated_at, str(r.gate)) for r in ran]
        )

    def _continuous_delivery(self, c: Criterion, f: _Facts) -> CriterionResult:
        since = f.now - RECENT_DELIVERY
        recent = [d for d in f.history.deployments if since <= d.at <= f.now]
        glass = {p.id for p in self.governance.promotions(f.model.name) if p.break_glass}
        gated = [d for d in recent if d.promotion_id not in glass]
        if len(gated) < 2:
            return _missing(c, f"{len(gated)} gated promotion(s) in the last 90 days")
        return _met(
            c,
            [
                Evidence("promotion", str(d.promotion_id), d.at, f"version {d.version}")
                for d in gated
            ],
        )

    def _production_telemetry(self, c: Criterion, f: _Facts) -> CriterionResult:
        if f.production is None:
            return _missing(c, "no version is in production")
        hours = self.telemetry.hourly_row_counts(
            f.model.name, f.production.version, f.now - RECENT_TELEMETRY, f.now + timedelta(hours=1)
        )
        rows = sum(n for _, n in hours)
        if not rows:
            return _missing(c, f"version {f.production.version} logged no predictions in 30 days")
        last = max(h for h, _ in hours)
        note = f"{rows} predictions in 30 days"
        return _met(
            c, [Evidence("telemetry", f"{f.model.name}/{f.production.version}", last, note)]
        )

    def _monitoring(self, c: Criterion, f: _Facts) -> CriterionResult:
        scheduled = [m for m in self.monitoring.list_monitors(f.model.name) if m.schedule.enabled]
        points = self.monitoring.latest(f.model.name).points
        if not scheduled or not points:
            lacks = "no scheduled monitor" if not scheduled else "no window judged yet"
            return _missing(c, lacks)
        newest = max(p.window_end for p in points)
        return _met(
            c,
            [Evidence("monitor", str(m.id), m.created_at, m.name) for m in scheduled]
            + [Evidence("metric points", f.model.name, newest, f"{len(points)} newest verdicts")],
        )

    def _alerting(self, c: Criterion, f: _Facts) -> CriterionResult:
        rules = self.alerts.list_rules(f.model.name)
        if not rules:
            return _missing(c, "no alert rule")
        return _met(c, [Evidence("alert rule", str(r.id), r.created_at, r.name) for r in rules])

    def _covering_playbooks(self, f: _Facts, action: ActionKind) -> list[Evidence]:
        found = []
        for stored in self.playbooks.list():
            if not stored.enabled:
                continue
            target = f.model.name if stored.scope == "model" else f.model.team
            if stored.target != target:
                continue
            if any(a.kind == action for a in parse_playbook(stored.document).actions):
                found.append(Evidence("playbook", str(stored.id), stored.created_at, stored.name))
        return found

    def _rollback_playbook(self, c: Criterion, f: _Facts) -> CriterionResult:
        found = self._covering_playbooks(f, ActionKind.ROLLBACK)
        return _met(c, found) if found else _missing(c, "no enabled playbook with a rollback")

    def _retraining_automated(self, c: Criterion, f: _Facts) -> CriterionResult:
        evidence = self._covering_playbooks(f, ActionKind.RETRAIN)
        job = self.retraining.store.job(f.model.name)
        if job is not None and job.schedule_every_s:
            note = f"{job.kind} job every {job.schedule_every_s} s"
            evidence.append(Evidence("retraining job", f.model.name, job.updated_at, note))
        if job is None:
            return _missing(c, "no retraining job")
        if not evidence:
            return _missing(c, "the retraining job has no schedule and no playbook retrains")
        return _met(c, evidence)

    def _retraining_from_monitoring(self, c: Criterion, f: _Facts) -> CriterionResult:
        by_number = {v.version: v for v in f.versions}
        incidents = {i.id: i for i in f.history.incidents}
        for run in reversed(self.retraining.store.retrain_runs(f.model.name)):
            if run.incident_id is None or run.status != "succeeded":
                continue
            version = by_number.get(run.registered_version or 0)
            incident = incidents.get(run.incident_id)
            if version is None or incident is None or version.lineage.parent_version is None:
                continue
            return _met(
                c,
                [
                    Evidence("incident", str(incident.id), incident.opened_at, incident.severity),
                    Evidence("retrain run", str(run.id), run.finished_at, run.trigger),
                    _version(version, f"parent version {version.lineage.parent_version}"),
                ],
            )
        return _missing(c, "no incident has triggered a retraining run that registered a version")

    def _incident_rehearsed(self, c: Criterion, f: _Facts) -> CriterionResult:
        drills = [] if self.drills is None else self.drills.rehearsals(f.model.name, f.now)
        if not drills:
            return _missing(c, "no drill was run and resolved in the last 90 days")
        return _met(
            c,
            [
                Evidence(
                    "drill",
                    str(d.id),
                    d.resolved_at,
                    f"{d.scenario} drill, {len(d.failures)} finding(s)",
                )
                for d in drills[:3]
            ],
        )
