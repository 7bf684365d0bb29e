"""Playbooks: store them, match incidents, run their actions in order.

Applying a playbook stores its name's next version (the newest is in force; ``enabled: false``
switches it off and keeps the history). When an incident is triggered, every playbook that
matches it runs, actions in order, as the ``keel-playbooks`` service account; each action's
outcome goes on the incident's timeline and into the audit trail (`Incidents.record_action`):

- ``notify``: emits the event through the notifications outbox (signed, retried);
- ``rollback``: while a rollout of the model is in progress, aborts it (all traffic back to the
  stable version); otherwise `Governance.rollback` moves ``production``, and so what is served
  (refused with its reasons when the previous version no longer passes; the run then continues
  with the next action). On the incident an aborted rollout opened, it changes nothing more;
- ``pause_rollout``: pauses the model's rollout in progress (`Deployments.pause_for`);
- ``retrain``: `Retraining.trigger` with the incident (the run waits for the job);
- ``require_ack``: unless the incident is acknowledged already, records "waiting for
  acknowledgement" and stops; the acknowledgement resumes the remaining actions, a resolution
  first cancels them.

Runs happen in the incident listener, synchronously, after the incident's change committed.
`dry_run` says what a playbook would do for an incident, changing nothing.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from keel.domain.incidents import Incident, IncidentStatus
from keel.domain.permissions import Grant, Permission, Principal, PrincipalKind, Role, authorize
from keel.domain.playbooks import (
    DEFAULT_EVENT,
    Action,
    ActionKind,
    Playbook,
    Scope,
    mismatch,
    parse_playbook,
    playbook_to_dict,
)
from keel.errors import InvalidInput, KeelError
from keel.services.governance import Governance
from keel.services.incidents import Incidents
from keel.services.registry import Registry
from keel.services.retraining import Emitter, Retraining
from keel.store.sql.playbooks import PlaybookRun, SqlPlaybookStore, StoredPlaybook

log = logging.getLogger("keel.playbooks")

ACTOR = Principal("keel-playbooks", PrincipalKind.SERVICE, grants=(Grant(Role.ADMIN),))
UNSUPPORTED_PAUSE = "unsupported: this Keel has no deployments service"


class Rollouts(Protocol):
    """What playbooks ask of deployments (`keel.services.deployments.Deployments`)."""

    def in_progress(self, model: str) -> bool: ...

    def pause_for(self, incident: Incident) -> str | None: ...

    def abort_for(self, incident: Incident) -> str | None: ...


WAITING = "waiting for acknowledgement"
MAX_SOURCE = 100_000


@dataclass(frozen=True)
class PlannedAction:
    """What one action would do for an incident, and why."""

    index: int
    action: str
    would: str


@dataclass(frozen=True)
class DryRun:
    playbook: str
    matches: bool
    reason: str
    actions: tuple[PlannedAction, ...]


def parse_source(source: str, filename: str = "playbook.yaml") -> Playbook:
    """Parse playbook YAML, or raise `InvalidInput` naming the file and field."""
    if len(source) > MAX_SOURCE:
        raise InvalidInput(
            f"{filename} is {len(source)} characters; keep a playbook under {MAX_SOURCE}.",
            {"field": "yaml"},
        )
    try:
        document = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{filename} is not valid YAML: {exc}", {"field": "yaml"}) from None
    return parse_playbook(document)


def _payload(incident: Incident, playbook: str) -> dict[str, Any]:
    return {
        "playbook": playbook,
        "incident": {
            "id": incident.id,
            "model": incident.model,
            "version": incident.version,
            "title": incident.title,
            "severity": str(incident.severity),
            "status": str(incident.status),
            "check": incident.check,
            "labels": dict(incident.labels),
        },
    }


class Playbooks:
    """Playbooks and their runs (Backend field ``playbooks``)."""

    def __init__(
        self,
        store: SqlPlaybookStore,
        registry: Registry,
        incidents: Incidents,
        governance: Governance,
        retraining: Retraining,
        notifications: Emitter | None = None,
        *,
        rollouts: Rollouts | None = None,
    ) -> None:
        self.store = store
        self.rollouts = rollouts
        self.registry = registry
        self.incidents = incidents
        self.governance = governance
        self.retraining = retraining
        self.notifications = notifications
        incidents.add_listener(self._on_incident)

    # -- definitions ----------------------------------------------------------------------------

    def apply(self, by: Principal, source: str, filename: str = "playbook.yaml") -> StoredPlaybook:
        """Validate playbook YAML and store it as its name's next version (audited).

        Needs write access in the team of the model (or the team) it is attached to.
        """
        playbook = parse_source(source, filename)
        team = (
            self.registry.get_model(playbook.target).team
            if playbook.scope == Scope.MODEL
            else playbook.target
        )
        authorize(by, Permission.WRITE, team)
        return self.store.add_playbook(
            name=playbook.name,
            scope=str(playbook.scope),
            target=playbook.target,
            enabled=playbook.enabled,
            source=source,
            document=playbook_to_dict(playbook),
            actor=by.name,
        )

    def list(self) -> builtins.list[StoredPlaybook]:
        """The playbooks in force (each name's newest version), by name."""
        return self.store.current_playbooks()

    def runs(self, incident_id: int) -> builtins.list[PlaybookRun]:
        """Every playbook run on the incident, oldest first."""
        return self.store.runs(incident_id)

    def _team(self, incident: Incident) -> str | None:
        try:
            return self.registry.get_model(incident.model).team
        except KeelError:
            return None

    def matching(self, incident: Incident) -> builtins.list[StoredPlaybook]:
        """The playbooks in force that match the incident."""
        team = self._team(incident)
        return [
            stored
            for stored in self.list()
            if mismatch(parse_playbook(stored.document), incident, team) is None
        ]

    # -- dry run --------------------------------------------------------------------------------

    def test(self, by: Principal, source: str, incident_id: int, filename: str) -> DryRun:
        """`dry_run` of playbook YAML for an incident; needs write access in its model's team."""
        playbook = parse_source(source, filename)
        incident = self.incidents.get(incident_id)
        authorize(by, Permission.WRITE, self.registry.get_model(incident.model).team)
        return self.dry_run(playbook, incident)

    def dry_run(self, playbook: Playbook, incident: Incident) -> DryRun:
        """What the playbook would do for the incident, and why; changes nothing."""
        reason = mismatch(playbook, incident, self._team(incident))
        if reason is not None:
            return DryRun(playbook.name, False, f"does not match: {reason}", ())
        planned: builtins.list[PlannedAction] = []
        waiting = False
        for index, action in enumerate(playbook.actions):
            would = self._plan(action, incident)
            if waiting:
                would = f"after acknowledgement: {would}"
            if action.kind == ActionKind.REQUIRE_ACK and incident.status == (
                IncidentStatus.TRIGGERED
            ):
                waiting = True
            planned.append(PlannedAction(index, action.describe(), would))
        return DryRun(playbook.name, True, "matches", tuple(planned))

    def _plan(self, action: Action, incident: Incident) -> str:
        if action.kind == ActionKind.NOTIFY:
            event = action.options.get("event", DEFAULT_EVENT)
            if self.notifications is None:
                return f"would fail: notifications are not configured (event {event})"
            return f"would emit {event} to its webhook subscribers"
        if action.kind == ActionKind.ROLLBACK:
            if incident.key.startswith("deployment:"):
                return "would change nothing: the rollout was already aborted"
            if self.rollouts is not None and self._rollout_active(incident.model):
                return f"would abort the rollout of {incident.model}: traffic back to stable"
            plan = self.governance.rollback_plan(incident.model)
            if plan.target is None or plan.blockers:
                return "would be refused: " + "; ".join(plan.blockers)
            return (
                f"would move production of {incident.model} from version {plan.current} back "
                f"to version {plan.target}"
            )
        if action.kind == ActionKind.PAUSE_ROLLOUT:
            if self.rollouts is None:
                return f"would record '{UNSUPPORTED_PAUSE}' and continue"
            if self._rollout_active(incident.model):
                return f"would pause the rollout of {incident.model}"
            return f"would do nothing: {incident.model} has no rollout in progress"
        if action.kind == ActionKind.RETRAIN:
            job = self.retraining.store.job(incident.model)
            if job is None:
                return f"would fail: {incident.model} has no retraining job"
            if job.kind == "webhook":
                return f"would emit retrain.requested for the last {job.window_days} days"
            if job.kind != "command":
                return "would fail: its command job must be defined again by an admin"
            return (
                f"would run {' '.join(job.command)} in the sandbox on the last "
                f"{job.window_days} days (timeout {job.timeout_s}s), then run the gates on the "
                "version it registers"
            )
        if incident.status == IncidentStatus.TRIGGERED:
            return "would stop until a person acknowledges the incident"
        return f"the incident is {incident.status}: would continue"

    def _rollout_active(self, model: str) -> bool:
        return self.rollouts is not None and self.rollouts.in_progress(model)

    # -- running --------------------------------------------------------------------------------

    def _on_incident(self, event: str, incident: Incident) -> None:
        if incident.is_drill:
            return  # a drill runs its playbooks itself, as dry runs (keel.services.drills)
        if event == "incident.triggered":
            self.run(incident)
        elif event == "incident.acknowledged":
            self.resume(incident)
        elif event == "incident.resolved":
            self.cancel_waiting(incident)

    def run(self, incident: Incident) -> builtins.list[PlaybookRun]:
        """Run every matching playbook on the incident (what the trigger listener does)."""
        finished = []
        for stored in self.matching(incident):
            run = self.store.start_run(stored.id, incident.id)
            finished.append(self._continue(run, stored, incident))
        return finished

    def resume(self, incident: Incident) -> builtins.list[PlaybookRun]:
        """Continue the runs that were waiting for the incident's acknowledgement."""
        resumed = []
        for run in self.store.claim_waiting(incident.id):
            stored = self.store.playbook(run.playbook_id)
            resumed.append(self._continue(run, stored, incident))
        return resumed

    def cancel_waiting(self, incident: Incident) -> builtins.list[PlaybookRun]:
        """The incident was resolved while runs waited: their remaining actions never run."""
        cancelled = []
        for run in self.store.claim_waiting(incident.id):
            stored = self.store.playbook(run.playbook_id)
            self.incidents.record_action(
                ACTOR,
                incident.id,
                "require_ack",
                "cancelled",
                f"playbook {stored.name}: the incident was resolved before it was acknowledged; "
                "the remaining actions did not run",
                {"playbook": stored.name, "playbook_version": stored.version},
            )
            cancelled.append(
                self.store.save_run(
                    run.id, status="cancelled", next_action=run.next_action, outcomes=run.outcomes
                )
            )
        return cancelled

    def _continue(
        self, run: PlaybookRun, stored: StoredPlaybook, incident: Incident
    ) -> PlaybookRun:
        playbook = parse_playbook(stored.document)
        outcomes = list(run.outcomes)
        for index in range(run.next_action, len(playbook.actions)):
            action = playbook.actions[index]
            current = self.incidents.get(incident.id)
            if action.kind == ActionKind.REQUIRE_ACK and current.status == IncidentStatus.TRIGGERED:
                self._record(stored, current, action, "waiting", WAITING, {}, outcomes)
                return self.store.save_run(
                    run.id, status="waiting", next_action=index + 1, outcomes=outcomes
                )
            outcome, message, details = self._execute(stored, action, current)
            self._record(stored, current, action, outcome, message, details, outcomes)
        return self.store.save_run(
            run.id, status="finished", next_action=len(playbook.actions), outcomes=outcomes
        )

    def _record(
        self,
        stored: StoredPlaybook,
        incident: Incident,
        action: Action,
        outcome: str,
        message: str,
        details: Mapping[str, Any],
        outcomes: builtins.list[Mapping[str, Any]],
    ) -> None:
        full = {"playbook": stored.name, "playbook_version": stored.version, **details}
        self.incidents.record_action(
            ACTOR,
            incident.id,
            str(action.kind),
            outcome,
            f"playbook {stored.name}: {message}",
            full,
        )
        outcomes.append({"action": str(action.kind), "outcome": outcome, "message": message})

    def _execute(
        self, stored: StoredPlaybook, action: Action, incident: Incident
    ) -> tuple[str, str, dict[str, Any]]:
        """Run one action; return (outcome, message, details). Failures are outcomes too."""
        try:
            if action.kind == ActionKind.NOTIFY:
                event = action.options.get("event", DEFAULT_EVENT)
                if self.notifications is None:
                    return "failed", "notifications are not configured", {"event": event}
                queued = self.notifications.emit(event, _payload(incident, stored.name))
                return "done", f"emitted {event}", {"event": event, "deliveries": queued}
            if action.kind == ActionKind.ROLLBACK:
                aborted = None if self.rollouts is None else self.rollouts.abort_for(incident)
                if aborted is not None:
                    return "done", aborted, {}
                promotion = self.governance.rollback(
                    ACTOR,
                    incident.model,
                    reason=f"playbook {stored.name} on incident {incident.id}: {incident.title}",
                    incident_id=incident.id,
                )
                return (
                    "done",
                    f"rolled production back from version {promotion.previous_version} to "
                    f"version {promotion.version}",
                    {
                        "from_version": promotion.previous_version,
                        "to_version": promotion.version,
                        "promotion_id": promotion.id,
                    },
                )
            if action.kind == ActionKind.PAUSE_ROLLOUT:
                if self.rollouts is None:
                    return "unsupported", UNSUPPORTED_PAUSE, {}
                paused = self.rollouts.pause_for(incident)
                if paused is None:
                    return "skipped", f"{incident.model} has no rollout in progress", {}
                return "done", paused, {}
            if action.kind == ActionKind.RETRAIN:
                run = self.retraining.trigger(
                    ACTOR, incident.model, trigger="playbook", incident_id=incident.id
                )
                # The reason is Keel's own words (redacted); the job's output stays with the team.
                return (
                    "done" if run.status in ("succeeded", "sent") else "failed",
                    f"retrain run {run.id} {run.status}: {run.reason}",
                    {"run_id": run.id, "registered_version": run.registered_version},
                )
            return "done", f"the incident is {incident.status}: continuing", {}
        except KeelError as exc:
            outcome = "refused" if exc.status == 409 else "failed"
            return outcome, exc.message, {"error": exc.code}
