"""Incident drills: rehearse the real incident path on made-up trouble, and time the response.

A drill (`keel drills run --model M --scenario drift`) runs as a job:

1. the scenario's trouble is made up as telemetry (`keel.services.drill_telemetry`) for the
   version at the drill's alias, over as many windows as the model's alert rules need;
2. the model's real monitors judge those windows with their real checks and thresholds, and its
   real alert rules decide on the points (`keel.domain.alerts.decide`);
3. the most severe rule that fires opens a real incident through `Incidents.trigger`, marked as
   the drill's: it is assigned, acknowledged and resolved like any other (the incident routes
   work on it), and its changes are sent to webhook subscribers as ``incident.drill.*`` events
   carrying ``"drill": true``;
4. the playbooks that match it are dry runs (each step on the incident's timeline says what it
   would have done); with ``--live``, on a non-production alias only, their ``notify`` steps are
   sent for real (as ``<family>.drill.<event>``); rollback, pause and retrain stay dry runs even
   then, because they change what production serves or register versions;
5. the page is delivered at once, and the report records when each stage happened on this
   service's clock (``clock``, injected by tests), and what failed.

The namespace: drill data never mixes with real data. The choice, per record:

- incidents: a drill's incident lives in the incidents table with ``drill_id`` set, so the real
  lifecycle, timeline, audit and acknowledgement code runs on it unchanged; every real query
  (the incidents list, MTTA/MTTR, DORA, ``/metrics``, executive reports, maturity) leaves rows
  with a ``drill_id`` out unless asked (``drill=true``). Its key starts ``drill:<id>:`` so it
  never absorbs, nor is absorbed by, a real incident's alerts;
- metric points: never written to the monitoring series. A drill's points live in its own
  report (the ``drills`` table), so monitor results, alert windows and Prometheus never see them;
- telemetry: none is written. The made-up rows exist only in memory while the checks read them,
  so window profiles, costs and value are untouched;
- notifications: real outbox rows (that is the path being rehearsed), with a drill event name;
- playbooks: no playbook run is recorded for a drill incident, and no action changes anything
  (the real playbook listener ignores drill incidents).

Separate tables for drill incidents were the other choice; they would have meant a second copy
of the incident lifecycle, which is the very code a drill exists to rehearse.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from keel.domain.alerts import AlertRule, Decision, decide
from keel.domain.drills import (
    CHECKS,
    PRODUCTION,
    REHEARSAL_DAYS,
    Drill,
    DrillSchedule,
    DrillStatus,
    PlaybookStep,
    Scenario,
    check_live,
    check_schedule_days,
    drill_event,
    parse_scenario,
    rehearsed,
)
from keel.domain.incidents import Incident, incident_key
from keel.domain.monitoring import MetricPoint, Monitor, Status
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.playbooks import ActionKind, parse_playbook
from keel.domain.registry import Model
from keel.domain.webhooks import DeliveryStatus
from keel.errors import Conflict, InvalidInput, NotFound
from keel.services.alerts import Alerts
from keel.services.drill_telemetry import DrillTelemetry
from keel.services.incidents import Incidents
from keel.services.monitoring import Monitoring
from keel.services.notifications import Notifications, incident_payload
from keel.services.playbooks import ACTOR, Playbooks
from keel.services.registry import Registry
from keel.store.sql.drills import MAX_LIST, SqlDrillStore

log = logging.getLogger("keel.drills")
Clock = Callable[[], datetime]
Progress = Callable[[str], None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _quiet(_: str) -> None:
    return None


def _point(p: MetricPoint) -> dict[str, Any]:
    return {
        "window_end": p.window_end.isoformat(),
        "check": str(p.check),
        "column": p.column,
        "metric": p.metric,
        "value": p.value,
        "threshold": p.threshold,
        "status": str(p.status),
    }


class Drills:
    """Incident drills (Backend field ``drills``)."""

    def __init__(
        self,
        store: SqlDrillStore,
        registry: Registry,
        monitoring: Monitoring,
        alerts: Alerts,
        incidents: Incidents,
        playbooks: Playbooks,
        notifications: Notifications,
        *,
        clock: Clock = _utc_now,
    ) -> None:
        self.store = store
        self.registry = registry
        self.monitoring = monitoring
        self.alerts = alerts
        self.incidents = incidents
        self.playbooks = playbooks
        self.notifications = notifications
        self.clock = clock
        incidents.add_listener(self._on_incident)

    # -- asking for a drill --------------------------------------------------------------------

    def check_request(
        self, by: Principal, model: str, scenario: str, *, live: bool, alias: str
    ) -> tuple[Model, Scenario, int]:
        """Everything a drill request must satisfy, checked before anything is written:
        the model, write access in its team, the scenario, the alias and ``live``."""
        check_name(model, "model")
        try:
            found = self.registry.get_model(model)
        except NotFound:
            raise NotFound(
                f"The 'model' option names {model!r}, which does not exist. List models with "
                "`keel models list`.",
                {"field": "model", "model": model},
            ) from None
        authorize(by, Permission.WRITE, found.team)
        parsed = parse_scenario(scenario)
        check_name(alias, "alias")
        check_live(live, alias)
        version = next(
            (a.version for a in self.registry.current_aliases(found.name) if a.alias == alias),
            None,
        )
        if version is None:
            raise InvalidInput(
                f"The 'alias' option names {alias!r}, but no version of {found.name!r} holds "
                "it. Drill an alias a version holds (keel alias list MODEL).",
                {"field": "alias", "alias": alias},
            )
        return found, parsed, version

    # -- running -------------------------------------------------------------------------------

    def run(
        self,
        by: Principal,
        model: str,
        scenario: str,
        *,
        live: bool = False,
        alias: str = PRODUCTION,
        scheduled: bool = False,
        job_id: int | None = None,
        progress: Progress = _quiet,
    ) -> Drill:
        """Run a drill now and return its report (a person then acknowledges and resolves its
        incident). A retried job (same ``job_id``) returns the drill its first attempt began."""
        found, parsed, version = self.check_request(by, model, scenario, live=live, alias=alias)
        if job_id is not None:
            earlier = self.store.by_job(job_id)
            if earlier is not None:
                return earlier
        drill = self.store.start(
            model=found.name,
            scenario=parsed,
            alias=alias,
            version=version,
            live=live,
            requested_by=by.name,
            scheduled=scheduled,
            job_id=job_id,
            started_at=self.clock(),
        )
        return self._rehearse(by, drill, progress)

    def _rehearse(self, by: Principal, drill: Drill, progress: Progress) -> Drill:
        assert drill.version is not None
        checks = set(CHECKS[drill.scenario])
        monitors = [
            replace(m, version=drill.version, checks=tuple(c for c in m.checks if c in checks))
            for m in self.monitoring.list_monitors(drill.model)
            if checks & set(m.checks) and m.version in (None, drill.version)
        ]
        wanted = ", ".join(sorted(checks))
        if not monitors:
            return self._undetected(
                drill,
                f"no monitor of {drill.model} runs the {wanted} check on version "
                f"{drill.version}: this trouble would go unnoticed",
            )
        rules = [
            r
            for r in self.alerts.list_rules(drill.model)
            if r.check in checks and r.version in (None, drill.version) and r.id is not None
        ]
        if not rules:
            return self._undetected(
                drill,
                f"{drill.model} has no alert rule on the {wanted} check: the monitor would "
                "record the trouble, and nobody would be told",
            )
        progress(f"injecting {drill.scenario} telemetry into drill {drill.id}'s namespace")
        windows = self._judge(drill, monitors, max(r.windows for r in rules))
        points = [p for window in windows for p in window]
        fired = [
            r
            for r in rules
            if decide(r, [[p for p in w if r.matches(p)] for w in windows]) == Decision.FIRE
        ]
        size = max(m.window.size for m in monitors)
        drill = replace(
            drill,
            points=tuple(_point(p) for p in points if p.status != Status.OK),
            rules_fired=tuple(r.name for r in fired),
        )
        if not fired:
            return self._undetected(
                drill,
                f"no alert rule fired on {len(windows)} window(s) of made-up {drill.scenario} "
                f"(rules on the {wanted} check: {', '.join(r.name for r in rules)}); check "
                "their thresholds",
            )
        rule = min(fired, key=lambda r: (str(r.severity), r.name))
        progress(f"alert rule {rule.name} fired: opening the drill incident")
        incident = self._open(by, drill, rule, windows[-1])
        drill = replace(
            self.store.get(drill.id),
            points=drill.points,
            rules_fired=drill.rules_fired,
            incident_id=incident.id,
            detected_at=self.clock(),
            detection_wait_s=rule.windows * size.total_seconds(),
        )
        progress("running the matching playbooks (dry runs)")
        drill = self._playbooks(drill, incident)
        progress("paging")
        drill = self._page(drill)
        return self.store.save(
            replace(drill, status=DrillStatus.PAGED), actor=by.name, action="drill.detect"
        )

    def _judge(
        self, drill: Drill, monitors: builtins.list[Monitor], count: int
    ) -> builtins.list[builtins.list[MetricPoint]]:
        """The monitors' points over ``count`` consecutive made-up windows, oldest first."""
        assert drill.version is not None
        signature = self.registry.get_version(drill.model, drill.version).signature
        reader = DrillTelemetry(self.monitoring.telemetry, drill.scenario, signature, drill.id)
        # A second view of the monitors over the drill's telemetry; `evaluate` stores nothing.
        judge = Monitoring(self.monitoring.store, self.registry, reader)
        windows: builtins.list[builtins.list[MetricPoint]] = [[] for _ in range(count)]
        for monitor in monitors:
            start, end = monitor.window.last_complete(drill.started_at)
            for back in range(count):
                shift = monitor.window.size * (count - 1 - back)
                windows[back].extend(judge.evaluate(monitor, (start - shift, end - shift)))
        return windows

    def _open(
        self, by: Principal, drill: Drill, rule: AlertRule, newest: builtins.list[MetricPoint]
    ) -> Incident:
        assert rule.id is not None
        breaching = [p for p in newest if rule.breaches(p)]
        incident, _ = self.incidents.trigger(
            by,
            key=f"drill:{drill.id}:{incident_key(rule.id, drill.model, drill.version)}",
            model=drill.model,
            version=drill.version,
            title=f"[drill {drill.id}] {drill.model} v{drill.version}: {rule.name} "
            f"({rule.describe()})",
            severity=rule.severity,
            check=str(rule.check),
            column=rule.column,
            labels={**rule.labels, "drill": str(drill.id)},
            rule_id=rule.id,
            details={
                "rule": rule.name,
                "drill": drill.id,
                "scenario": str(drill.scenario),
                "points": [_point(p) for p in breaching[:10]],
            },
            drill_id=drill.id,
        )
        return incident

    def _playbooks(self, drill: Drill, incident: Incident) -> Drill:
        matching = self.playbooks.matching(incident)
        if not matching:
            return replace(
                drill,
                failures=(
                    *drill.failures,
                    "no playbook matched the drill incident: nothing would have acted on it",
                ),
            )
        steps: builtins.list[PlaybookStep] = []
        for stored in matching:
            playbook = parse_playbook(stored.document)
            plan = self.playbooks.dry_run(playbook, incident)
            for action, planned in zip(playbook.actions, plan.actions, strict=True):
                outcome, what = "dry_run", planned.would
                if drill.live and action.kind == ActionKind.NOTIFY:
                    outcome, what = self._live_notify(drill, incident, stored.name, action.options)
                self.incidents.record_action(
                    ACTOR,
                    incident.id,
                    str(action.kind),
                    outcome,
                    f"playbook {stored.name} (drill {drill.id}, "
                    f"{'live' if outcome != 'dry_run' else 'dry run'}): {what}",
                    {"playbook": stored.name, "drill": drill.id},
                )
                steps.append(PlaybookStep(stored.name, planned.action, outcome, what))
        return replace(drill, steps=(*drill.steps, *steps))

    def _live_notify(
        self, drill: Drill, incident: Incident, playbook: str, options: Any
    ) -> tuple[str, str]:
        event = drill_event(str(options.get("event", "incident.playbook")))
        payload = {"playbook": playbook, "drill": True, "drill_id": drill.id, **_about(incident)}
        queued = self.notifications.emit(event, payload, now=self.clock())
        return "done", f"emitted {event} to {len(queued)} subscription(s)"

    def _page(self, drill: Drill) -> Drill:
        """Deliver the drill's page now (the worker would retry a failure later)."""
        if not drill.deliveries:
            return replace(
                drill,
                failures=(
                    *drill.failures,
                    "no webhook subscription receives incident.drill.triggered: nobody was "
                    "paged (subscribe the on-call receiver to incident.*)",
                ),
            )
        self.notifications.deliver_due(now=self.clock())
        failures = list(drill.failures)
        paged: datetime | None = None
        for delivery_id in drill.deliveries:
            found = self.notifications.delivery(delivery_id)
            if found.status == DeliveryStatus.DELIVERED and found.delivered_at is not None:
                paged = found.delivered_at if paged is None else min(paged, found.delivered_at)
            else:
                failures.append(
                    f"the page to webhook subscription {found.subscription_id} (delivery "
                    f"{found.id}) failed: {found.last_error or found.status}; the receiver "
                    "may be down (Keel retries it)"
                )
        return replace(drill, paged_at=paged, failures=tuple(failures))

    def _undetected(self, drill: Drill, why: str) -> Drill:
        log.info("drill %s on %s was not detected: %s", drill.id, drill.model, why)
        undetected = replace(drill, status=DrillStatus.NOT_DETECTED, failures=(why,))
        return self.store.save(undetected, actor=drill.requested_by, action="drill.finish")

    # -- the drill incident's lifecycle ----------------------------------------------------------

    def _on_incident(self, event: str, incident: Incident) -> None:
        """Send a drill incident's changes as drill events, and time its acknowledgement and
        resolution, whichever route they came through."""
        if incident.drill_id is None:
            return
        drill = self.store.get(incident.drill_id)
        payload = {**incident_payload(incident), "drill": True, "drill_id": drill.id}
        queued = self.notifications.emit(drill_event(event), payload, now=self.clock())
        if event == "incident.triggered":
            self.store.save(
                replace(drill, incident_id=incident.id, deliveries=tuple(queued)),
                actor=ACTOR.name,
                action="drill.page",
            )
        elif event == "incident.acknowledged":
            acknowledged = replace(
                drill, status=DrillStatus.ACKNOWLEDGED, acknowledged_at=self.clock()
            )
            self.store.save(acknowledged, actor=ACTOR.name, action="drill.acknowledge")
        elif event == "incident.resolved":
            resolved = self._with_page(
                replace(drill, status=DrillStatus.FINISHED, resolved_at=self.clock())
            )
            self.store.save(resolved, actor=ACTOR.name, action="drill.resolve")

    def _with_page(self, drill: Drill) -> Drill:
        """The drill with its page time, if a retry delivered the page after the drill ran."""
        if drill.paged_at is not None or not drill.deliveries:
            return drill
        times = [
            d.delivered_at
            for d in (self.notifications.delivery(i) for i in drill.deliveries)
            if d.delivered_at is not None
        ]
        return replace(drill, paged_at=min(times)) if times else drill

    def _incident_of(self, by: Principal, drill_id: int) -> int:
        drill = self.store.get(drill_id)
        authorize(by, Permission.WRITE, self.registry.get_model(drill.model).team)
        if drill.incident_id is None:
            raise Conflict(
                f"Drill {drill_id} opened no incident ({drill.status}): there is nothing to "
                "acknowledge or resolve. Its report says why (keel drills show ID).",
                {"drill": drill_id, "status": str(drill.status)},
            )
        return drill.incident_id

    def acknowledge(self, by: Principal, drill_id: int, comment: str = "") -> Drill:
        """A person acknowledges the drill's incident (as `keel incidents ack` would)."""
        self.incidents.acknowledge(by, self._incident_of(by, drill_id), comment)
        return self.store.get(drill_id)

    def resolve(self, by: Principal, drill_id: int, comment: str = "") -> Drill:
        """A person resolves the drill's incident: the drill is over."""
        self.incidents.resolve(by, self._incident_of(by, drill_id), comment)
        return self.store.get(drill_id)

    # -- reading -------------------------------------------------------------------------------

    def get(self, by: Principal, drill_id: int) -> Drill:
        drill = self.store.get(drill_id)
        authorize(by, Permission.READ, self.registry.get_model(drill.model).team)
        return self._with_page(drill)

    def list(
        self, by: Principal, *, model: str | None = None, limit: int = 100
    ) -> builtins.list[Drill]:
        """Drills, newest first (every role holder may read them)."""
        authorize(by, Permission.READ)
        if model is not None:
            check_name(model, "model")
            self.registry.get_model(model)
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(
                f"The 'limit' field must be between 1 and {MAX_LIST}.", {"field": "limit"}
            )
        return [self._with_page(d) for d in self.store.list(model=model, limit=limit)]

    def rehearsals(self, model: str, now: datetime) -> builtins.list[Drill]:
        """The model's drills of the last 90 days whose incident a person resolved."""
        since = now - timedelta(days=REHEARSAL_DAYS)
        return rehearsed(self.store.list(model=model, since=since), since)

    # -- schedules -----------------------------------------------------------------------------

    def schedule(
        self, by: Principal, model: str, scenario: str, every_days: int, alias: str = PRODUCTION
    ) -> DrillSchedule:
        """Run a drill of ``scenario`` every ``every_days`` days (never live); replaces the
        model's schedule for that scenario. Audited."""
        found, parsed, _ = self.check_request(by, model, scenario, live=False, alias=alias)
        days = check_schedule_days(every_days)
        return self.store.set_schedule(
            model=found.name,
            scenario=parsed,
            alias=alias,
            every_days=days,
            actor=by.name,
            at=self.clock(),
        )

    def unschedule(self, by: Principal, model: str, scenario: str) -> DrillSchedule:
        check_name(model, "model")
        authorize(by, Permission.WRITE, self.registry.get_model(model).team)
        return self.store.remove_schedule(model, parse_scenario(scenario), actor=by.name)

    def schedules(self, by: Principal) -> builtins.list[DrillSchedule]:
        authorize(by, Permission.READ)
        return self.store.schedules()

    def due(self, now: datetime) -> builtins.list[tuple[DrillSchedule, datetime]]:
        """Each schedule with the start of its current period (the worker queues one drill
        per schedule and period)."""
        due = []
        for schedule in self.store.schedules():
            every = schedule.every_days * 86_400
            start = datetime.fromtimestamp(now.timestamp() // every * every, UTC)
            due.append((schedule, start))
        return due


def _about(incident: Incident) -> dict[str, Any]:
    return {"incident": {"id": incident.id, "model": incident.model, "title": incident.title}}
