"""Deployments: put a version in front of traffic, move it along its plan, and finish or abort.

The rules (see `keel.domain.deployments` for strategies, plans and the analysis limits):

- **Governance.** Live traffic (direct, canary, blue-green) goes only to a version that passes
  every gate its tier's policy requires, checked exactly as promotion checks it (409 listing the
  blockers), or under an admin's break-glass justification (flagged and audited like a
  break-glass promotion). A shadow only needs the security gate passed: its answers are never
  returned to callers, so an unproven version can be watched on real traffic without any user
  seeing it, but its artifact is still loaded, so it must be one Keel judged safe to load.
- **Finishing is promoting.** A direct deployment, the last canary step passing, a blue-green
  switch and a manual `promote` all go through `Governance.promote`: the ``production`` alias,
  alias history, promotion record, audit event and ``promotion.*`` webhooks follow.
- **Aborting** (by hand, by a failed analysis, or by a playbook) sends all traffic back to the
  stable version; an automatic abort opens an incident, so playbooks and webhooks run.
- **What serves** (`serving_plan`): an active deployment's arms and weights; after it ends, the
  ``production`` alias at 100% (so a rollback of the alias changes what is served), with blue
  kept loaded at weight 0 for `keepBlueSeconds` after a blue-green switch.
- Every change is a timeline event and an audit event, and emits ``deployment.<event>``.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from keel.domain.deployments import (
    AnalysisCounts,
    Deployment,
    DeploymentEvent,
    DeploymentState,
    Move,
    Outcome,
    Strategy,
    decide,
    parse_plan,
    transition,
)
from keel.domain.evaluation import EvaluationSpec
from keel.domain.governance import Gate, GateOutcome
from keel.domain.incidents import Incident, Severity
from keel.domain.names import check_name
from keel.domain.permissions import Grant, Permission, Principal, PrincipalKind, Role, authorize
from keel.domain.traffic import Arm, ArmName, ServingPlan
from keel.errors import Conflict, InvalidInput, KeelError, NotFound
from keel.services import kubernetes_export
from keel.services.deployment_analysis import CanaryAnalysis, Measurement
from keel.services.evaluation import Evaluation
from keel.services.governance import Governance
from keel.services.incidents import Incidents
from keel.services.registry import Registry
from keel.services.shadow_report import ShadowReport, shadow_report
from keel.services.telemetry import Telemetry
from keel.store.sql.deployments import NewDeployment, SqlDeploymentStore, StaleDeployment

log = logging.getLogger("keel.deployments")

# Who moves a rollout along when no person does: the analysis job (advance, promote, abort).
ACTOR = Principal("keel-deployments", PrincipalKind.SERVICE, grants=(Grant(Role.ADMIN),))
Listener = Callable[[str, Mapping[str, Any]], object]
Clock = Callable[[], datetime]
MAX_REASON = 2000


def _utc_now() -> datetime:
    return datetime.now(UTC)


def deployment_payload(deployment: Deployment) -> dict[str, Any]:
    return {
        "deployment": deployment.id,
        "model": deployment.model,
        "strategy": str(deployment.strategy),
        "state": str(deployment.state),
        "version": deployment.candidate,
        "stable_version": deployment.stable,
        "step": deployment.step,
        "weight": deployment.weight,
        "reason": deployment.reason,
        "incident_id": deployment.incident_id,
    }


def _reason(text: str, what: str) -> str:
    text = text.strip()
    if len(text) > MAX_REASON:
        raise InvalidInput(
            f"The 'reason' is {len(text)} characters; keep it under {MAX_REASON}.",
            {"field": "reason"},
        )
    return text or what


class Deployments:
    """The deployment service (Backend field ``deployments``)."""

    def __init__(
        self,
        store: SqlDeploymentStore,
        registry: Registry,
        governance: Governance,
        telemetry: Telemetry,
        incidents: Incidents,
        evaluation: Evaluation,
        *,
        clock: Clock = _utc_now,
    ) -> None:
        self.store = store
        self.registry = registry
        self.governance = governance
        self.incidents = incidents
        self.evaluation = evaluation
        self.analysis = CanaryAnalysis(telemetry)
        self.clock = clock
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener("deployment.<event>", payload)`` after every committed change."""
        self._listeners.append(listener)

    def _announce(self, event: str, deployment: Deployment, **extra: Any) -> None:
        payload = {**deployment_payload(deployment), **extra}
        for listener in list(self._listeners):
            try:
                listener(f"deployment.{event}", payload)
            except Exception:  # committed already: a listener's failure must not hide it
                log.exception("deployment listener failed on %s", event)

    # -- reading ---------------------------------------------------------------------------------

    def list(self, model: str | None = None, *, active_only: bool = False) -> list[Deployment]:
        if model is not None:
            check_name(model, "model")
        return self.store.list(model, active_only=active_only)

    def latest(self, model: str) -> Deployment:
        """The model's newest deployment (`NotFound` when it never had one)."""
        found = self.store.list(check_name(model, "model"), limit=1)
        if not found:
            raise NotFound(
                f"{model} has no deployment. Start one with `keel deploy {model} VERSION`.",
                {"model": model},
            )
        return found[0]

    def events(self, deployment_id: int) -> builtins.list[DeploymentEvent]:
        return self.store.events(deployment_id)

    def events_of(self, deployment_ids: Sequence[int]) -> dict[int, builtins.list[DeploymentEvent]]:
        """The events of several deployments at once (a page of rollouts, one statement)."""
        return self.store.events_of(deployment_ids)

    def serving_plan(self, model: str) -> ServingPlan | None:
        """What serves ``model`` now; None when it has no deployment (the gateway answers 404).

        One read transaction; cheap enough to call once a second per model. The revision grows
        with every deployment event that changes what serves, every move of the production
        alias, and the end of a blue-green rollback window.
        """
        state = self.store.serving_state(check_name(model, "model"))
        found = state.deployment
        if found is None:
            return None
        revision = found.revision + state.production_changes
        key = found.plan.route_key
        live: tuple[Arm, ...]
        if found.state.active and found.stable is not None:
            if found.strategy == Strategy.CANARY:
                weight = found.weight
                live = (
                    Arm(ArmName.STABLE, found.stable, 1.0 - weight),
                    Arm(ArmName.CANARY, found.candidate, weight),
                )
                return ServingPlan(
                    model,
                    live,
                    None,
                    str(found.id),
                    key,
                    revision,
                    found.state == DeploymentState.PAUSED,
                )
            if found.strategy == Strategy.BLUE_GREEN:
                live = (
                    Arm(ArmName.BLUE, found.stable, 1.0),
                    Arm(ArmName.GREEN, found.candidate, 0.0),
                )
                return ServingPlan(
                    model,
                    live,
                    None,
                    str(found.id),
                    key,
                    revision,
                    found.state == DeploymentState.PAUSED,
                )
            if found.strategy == Strategy.SHADOW:
                shadow = Arm(ArmName.SHADOW, found.candidate, found.plan.mirror)
                return ServingPlan(
                    model,
                    (Arm(ArmName.STABLE, found.stable, 1.0),),
                    shadow,
                    str(found.id),
                    key,
                    revision,
                    found.state == DeploymentState.PAUSED,
                )
        if state.production is None:
            return None
        now = self.clock()
        keep_blue = (
            found.strategy == Strategy.BLUE_GREEN
            and found.state == DeploymentState.PROMOTED
            and found.stable is not None
            and found.blue_until is not None
        )
        if keep_blue and found.blue_until is not None and now >= found.blue_until:
            revision += 1  # blue was released: the plan changed without an event
            keep_blue = False
        if keep_blue and found.stable is not None and state.production == found.candidate:
            live = (
                Arm(ArmName.GREEN, found.candidate, 1.0),
                Arm(ArmName.BLUE, found.stable, 0.0),
            )
        else:
            live = (Arm(ArmName.STABLE, state.production, 1.0),)
        return ServingPlan(model, live, None, str(found.id), key, revision)

    def shadow_report(self, model: str) -> ShadowReport:
        """The pairs of the model's newest shadow deployment so far (`NotFound` without one)."""
        found = next(
            (
                d
                for d in self.store.list(check_name(model, "model"))
                if d.strategy == Strategy.SHADOW
            ),
            None,
        )
        if found is None or found.stable is None:
            raise NotFound(
                f"{model} has had no shadow deployment. Start one with "
                f"`keel deploy {model} VERSION --strategy shadow`.",
                {"model": model},
            )
        end = self.clock() if found.state.active else found.updated_at
        return shadow_report(
            self.analysis.telemetry,
            found.model,
            found.stable,
            found.candidate,
            found.created_at,
            end,
        )

    def export(self, model: str, fmt: str) -> str:
        """Kubernetes manifests (``kserve`` or ``argo-rollouts``) of the newest deployment."""
        found = self.latest(model)
        production = self.governance.production_version(found.model)
        return kubernetes_export.export(self.registry, found, production, fmt)

    # -- starting ----------------------------------------------------------------------------------

    def _security_passed(self, model: str, version: int) -> None:
        status = self.governance.status(model, version)
        security = next(g for g in status.gates if g.gate == Gate.SECURITY)
        if security.outcome != GateOutcome.PASSED:
            raise Conflict(
                f"{model} version {version} cannot run in shadow: its security gate is "
                f"{security.outcome}. A shadow loads the artifact, so it needs the security "
                f"gate passed ({security.to_pass or f'keel gates run {model} {version}'}).",
                {
                    "model": model,
                    "version": version,
                    "blockers": [f"security gate {security.outcome}: {security.to_pass}"],
                },
            )

    def deploy(
        self,
        by: Principal,
        model: str,
        version: int,
        strategy: str,
        plan: Any = None,
        *,
        justification: str | None = None,
    ) -> Deployment:
        """Start a deployment of ``version``; a rejected request writes nothing.

        ``plan`` is the plan document (parsed YAML/JSON), None for the strategy's default.
        ``justification`` is break-glass (admins): live traffic despite failing gates.
        """
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        try:
            chosen = Strategy(strategy)
        except ValueError:
            raise InvalidInput(
                f"The strategy {strategy!r} is not one Keel knows. Use one of: "
                + ", ".join(s.value for s in Strategy)
                + ".",
                {"field": "strategy"},
            ) from None
        parsed = parse_plan(chosen, plan)
        self.registry.get_version(owner.name, version)
        if justification is not None and chosen == Strategy.SHADOW:
            raise InvalidInput(
                "A shadow needs no break-glass: drop the justification.",
                {"field": "justification"},
            )
        production = self.governance.production_version(owner.name)
        if chosen == Strategy.SHADOW:
            self._security_passed(owner.name, version)
        else:
            self.governance.check_promotable(by, owner.name, version, justification=justification)
        if chosen != Strategy.DIRECT and production is None:
            raise Conflict(
                f"{owner.name} has no production version for a {chosen} to compare with or fall "
                f"back to: deploy its first version with --strategy direct.",
                {"model": owner.name, "strategy": str(chosen)},
            )
        if production == version:
            raise Conflict(
                f"{owner.name} version {version} is already in production.",
                {"model": owner.name, "version": version},
            )
        created = self.store.create(
            owner.name,
            NewDeployment(
                strategy=chosen,
                candidate=version,
                stable=production,
                plan=parsed.to_dict(chosen),
                break_glass=justification is not None,
                justification=(justification or "").strip(),
            ),
            by.name,
            now=self.clock(),
        )
        self._announce("started", created)
        if chosen == Strategy.DIRECT:
            try:
                return self._finish(by, created, "direct deployment")
            except KeelError as exc:  # the gates changed since the check: nothing serves it
                self._move(by, created, Move.ABORT, f"promotion refused: {exc.message}")
                raise
        return created

    # -- a person's moves ------------------------------------------------------------------------

    def _active(self, by: Principal, model: str) -> Deployment:
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        found = self.store.list(owner.name, limit=1)
        if not found or not found[0].state.active:
            raise Conflict(
                f"{owner.name} has no deployment in progress. Start one with "
                f"`keel deploy {owner.name} VERSION --strategy canary`.",
                {"model": owner.name},
            )
        return found[0]

    def _move(
        self, by: Principal, found: Deployment, move: Move, reason: str, **values: Any
    ) -> Deployment:
        state = transition(found.strategy, found.state, move)
        kind = {Move.PAUSE: "paused", Move.RESUME: "resumed", Move.ABORT: "aborted"}[move]
        saved = self.store.save(
            found.id,
            expect_revision=found.revision,
            kind=kind,
            actor=by.name,
            details={"reason": reason, "from_state": str(found.state)},
            values={"state": str(state), "reason": reason, **values},
            now=self.clock(),
        )
        self._announce(kind, saved)
        return saved

    def pause(self, by: Principal, model: str, reason: str = "") -> Deployment:
        """Hold the rollout where it is: weights stay, analysis stops advancing it."""
        found = self._active(by, model)
        return self._move(by, found, Move.PAUSE, _reason(reason, f"paused by {by.name}"))

    def resume(self, by: Principal, model: str) -> Deployment:
        """Carry on; the current step's clock and counts start again."""
        found = self._active(by, model)
        return self._move(
            by,
            found,
            Move.RESUME,
            f"resumed by {by.name}",
            step_started_at=self.clock(),
            counts=AnalysisCounts().to_dict(),
        )

    def abort(self, by: Principal, model: str, reason: str = "") -> Deployment:
        """All traffic back to the stable version; the candidate never became production."""
        found = self._active(by, model)
        return self._move(by, found, Move.ABORT, _reason(reason, f"aborted by {by.name}"))

    def promote(self, by: Principal, model: str) -> Deployment:
        """Skip the remaining steps: the candidate becomes production now (through the gates)."""
        found = self._active(by, model)
        transition(found.strategy, found.state, Move.PROMOTE)
        return self._finish(by, found, f"promoted by {by.name}")

    def _finish(self, by: Principal, found: Deployment, reason: str) -> Deployment:
        promotion = self.governance.promote(
            by,
            found.model,
            found.candidate,
            justification=found.justification if found.break_glass else None,
        )
        now = self.clock()
        values: dict[str, Any] = {"state": str(DeploymentState.PROMOTED), "reason": reason}
        if found.strategy == Strategy.BLUE_GREEN:
            values["switched_at"] = now
            values["blue_until"] = now + timedelta(seconds=found.plan.keep_blue_s)
        saved = self.store.save(
            found.id,
            expect_revision=found.revision,
            kind="promoted",
            actor=by.name,
            details={"reason": reason, "promotion_id": promotion.id},
            values=values,
            now=now,
        )
        self._announce("promoted", saved, promotion_id=promotion.id)
        return saved

    # -- the analysis job ------------------------------------------------------------------------

    def run_due(self) -> builtins.list[str]:
        """Move every active deployment along (the worker's scheduled job); returns a line per
        deployment acted on. One deployment failing never stops the others."""
        done: builtins.list[str] = []
        for found in self.store.list(active_only=True, limit=1000):
            if found.state != DeploymentState.PROGRESSING:
                continue
            try:
                line = self._step(found)
            except StaleDeployment:  # a person moved it meanwhile: their move wins
                continue
            except Exception:
                log.exception("deployment %s of %s failed to advance", found.id, found.model)
                continue
            if line:
                done.append(line)
        return done

    def _step(self, found: Deployment) -> str | None:
        if found.strategy == Strategy.CANARY:
            return self._analyse(found)
        if found.strategy == Strategy.BLUE_GREEN:
            return self._switch(found)
        return None

    def _switch(self, found: Deployment) -> str:
        if found.plan.smoke_test:
            try:
                found = self._smoke_test(found)
            except KeelError as exc:
                self._abort_by_keel(found, f"green smoke test failed: {exc.message}", {})
                return f"{found.model}: blue-green aborted, smoke test failed"
        if self._finish_or_pause(found, "green passed its smoke test and took all traffic"):
            return f"{found.model}: switched to version {found.candidate}"
        return f"{found.model}: blue-green paused, its promotion was refused"

    def _smoke_test(self, found: Deployment) -> Deployment:
        """Run green on its evaluation data in a sandboxed child process; raises on failure."""
        version = self.registry.get_version(found.model, found.candidate)
        spec = EvaluationSpec.from_signature(version.signature, time_limit_s=120)
        report = self.evaluation.evaluate(found.model, found.candidate, spec)
        return self.store.save(
            found.id,
            expect_revision=found.revision,
            kind="smoke_tested",
            actor=ACTOR.name,
            details={"rows": report.rows, "metrics": dict(report.metrics)},
            values={},
            serving_changes=False,
            now=self.clock(),
        )

    def _analyse(self, found: Deployment) -> str | None:
        now = self.clock()
        limits = found.plan.analysis
        last = found.measured_at or found.step_started_at
        if found.measured_at is not None and (now - last).total_seconds() < limits.interval_s:
            return None
        step = found.plan.steps[found.step]
        result = self.analysis.measure(found, found.step_started_at, now)
        elapsed = (now - found.step_started_at).total_seconds()
        step_done = (step.min_duration_s is None or elapsed >= step.min_duration_s) and (
            step.min_requests is None or result.canary_rows >= step.min_requests
        )
        outcome, counts = decide(found.counts, result.verdict, limits, step_done=step_done)
        details = _measured(result, found, counts)
        if outcome == Outcome.WAIT:
            self.store.save(
                found.id,
                expect_revision=found.revision,
                kind="measured",
                actor=ACTOR.name,
                details=details,
                values={"counts": {**counts.to_dict(), "measured_at": now.isoformat()}},
                serving_changes=False,
                audited=False,
                now=now,
            )
            return None
        if outcome == Outcome.ABORT:
            self._abort_by_keel(found, _why(result, counts, limits), details)
            return f"{found.model}: canary aborted at step {found.step + 1}"
        if outcome == Outcome.PAUSE:
            saved = self.store.save(
                found.id,
                expect_revision=found.revision,
                kind="paused",
                actor=ACTOR.name,
                details=details,
                values={
                    "state": str(DeploymentState.PAUSED),
                    "reason": f"{counts.inconclusive} inconclusive measurements (inconclusiveLimit "
                    f"{limits.inconclusive_limit}): not enough data to judge; resume or abort",
                },
                now=now,
            )
            self._announce("paused", saved)
            return f"{found.model}: canary paused, inconclusive"
        if found.step + 1 < len(found.plan.steps):
            saved = self.store.save(
                found.id,
                expect_revision=found.revision,
                kind="advanced",
                actor=ACTOR.name,
                details={**details, "to_step": found.step + 1},
                values={
                    "step": found.step + 1,
                    "step_started_at": now,
                    "counts": AnalysisCounts().to_dict(),
                },
                now=now,
            )
            self._announce("advanced", saved)
            return f"{found.model}: canary advanced to {saved.weight:.0%}"
        if self._finish_or_pause(found, "every canary step passed its analysis"):
            return f"{found.model}: canary promoted"
        return f"{found.model}: canary paused, its promotion was refused"

    def _finish_or_pause(self, found: Deployment, reason: str) -> bool:
        """Promote; if governance refuses (gates stale or failing since the start), pause with
        its reasons for a person to decide instead of retrying forever."""
        try:
            self._finish(ACTOR, found, reason)
        except StaleDeployment:
            raise
        except KeelError as exc:
            self._move(ACTOR, found, Move.PAUSE, f"promotion refused: {exc.message}")
            return False
        return True

    def _abort_by_keel(self, found: Deployment, reason: str, details: dict[str, Any]) -> None:
        saved = self.store.save(
            found.id,
            expect_revision=found.revision,
            kind="aborted",
            actor=ACTOR.name,
            details={**details, "reason": reason},
            values={"state": str(DeploymentState.ABORTED), "reason": reason},
            now=self.clock(),
        )
        incident, _ = self.incidents.trigger(
            ACTOR,
            key=f"deployment:{found.id}",
            model=found.model,
            version=found.candidate,
            title=f"{found.strategy} of {found.model} version {found.candidate} aborted: {reason}"[
                :500
            ],
            severity=Severity.P2,
            check="deployment_analysis",
            details={"deployment": found.id, **details},
        )
        saved = self.store.save(
            saved.id,
            expect_revision=saved.revision,
            kind="incident_opened",
            actor=ACTOR.name,
            details={"incident_id": incident.id},
            values={"incident_id": incident.id},
            serving_changes=False,
            audited=False,
            now=self.clock(),
        )
        self._announce("aborted", saved)

    # -- what playbooks do -----------------------------------------------------------------------

    def in_progress(self, model: str) -> bool:
        """Whether ``model`` has a deployment that is progressing or paused."""
        return bool(self.store.list(model, active_only=True, limit=1))

    def pause_for(self, incident: Incident) -> str | None:
        """The ``pause_rollout`` playbook action: pause the incident's model's rollout (None:
        none in progress)."""
        found = self.store.list(incident.model, active_only=True, limit=1)
        if not found:
            return None
        if found[0].state == DeploymentState.PAUSED:
            return f"deployment {found[0].id} of {incident.model} was already paused"
        self._move(ACTOR, found[0], Move.PAUSE, f"paused by a playbook on incident {incident.id}")
        return f"paused deployment {found[0].id} of {incident.model}"

    def abort_for(self, incident: Incident) -> str | None:
        """The ``rollback`` playbook action while a rollout is in progress: abort it (traffic
        back to stable). None when no rollout is in progress (then production is rolled back)."""
        if incident.key.startswith("deployment:"):
            # The incident is the abort of a rollout: traffic is already back on stable, and
            # rolling production back too would punish the version that was fine.
            return f"the rollout was already aborted ({incident.key}): production is unchanged"
        found = self.store.list(incident.model, active_only=True, limit=1)
        if not found:
            return None
        self._move(
            ACTOR, found[0], Move.ABORT, f"rolled back by a playbook on incident {incident.id}"
        )
        return f"aborted deployment {found[0].id}: all traffic back on version {found[0].stable}"


def _measured(result: Measurement, found: Deployment, counts: AnalysisCounts) -> dict[str, Any]:
    return {
        "step": found.step,
        "weight": found.weight,
        "verdict": str(result.verdict),
        "canary_rows": result.canary_rows,
        "stable_rows": result.stable_rows,
        "checks": [r.to_dict() for r in result.results],
        "counts": counts.to_dict(),
        **({"error": result.error} if result.error else {}),
    }


def _why(result: Measurement, counts: AnalysisCounts, limits: Any) -> str:
    if counts.consecutive_errors > limits.consecutive_error_limit:
        return (
            f"{counts.consecutive_errors} analysis errors in a row (consecutiveErrorLimit "
            f"{limits.consecutive_error_limit}): {result.error}"
        )
    failing = "; ".join(r.reason for r in result.results if str(r.verdict) == "failed")
    return (
        f"analysis failed {counts.failed} time(s) (failureLimit {limits.failure_limit}): {failing}"
    )
