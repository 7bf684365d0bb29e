"""SLOs on a model's serving endpoint, evaluated from telemetry; burn-rate alerts open incidents.

Requests, errors and latencies come from the prediction logs (`Telemetry.request_counts`).
The worker evaluates every SLO (`evaluate_all`): when a multiwindow burn-rate rule fires, an
incident with key ``slo:<id>:<model>`` is triggered (P1/P2 for pages, P4 for tickets; repeated
alerts land on the open incident's timeline), and when no rule fires any more it is resolved
automatically.

The worker looks every minute, but an incident hears only of changes: an alert entry (and its
``incident.updated`` webhook) is added when the set of firing rules or the severity differs from
the open incident's last alert, never for the same burn seen again.
"""

from __future__ import annotations

import builtins
import logging
from datetime import UTC, datetime, timedelta

from keel.domain.incidents import Incident, Severity, TimelineKind
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.slo import (
    Counts,
    Slo,
    SloStatus,
    check_definition,
    span,
    status_of,
    windows_needed,
)
from keel.errors import InvalidInput
from keel.services.incidents import Incidents
from keel.services.registry import Registry
from keel.services.telemetry import Telemetry
from keel.store.sql.model_metrics import SqlModelMetricsStore
from keel.store.sql.notifications import SqlNotificationStore

log = logging.getLogger("keel.slos")


def slo_key(slo: Slo) -> str:
    """The incident dedupe key of an SLO's burn-rate alerts."""
    return f"slo:{slo.id}:{slo.model}"


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise InvalidInput("'now' must carry a time zone.", {"field": "now"})
    return now.astimezone(UTC)


class Slos:
    """SLO definitions per model and their evaluation (Backend field ``slos``)."""

    def __init__(
        self,
        store: SqlNotificationStore,
        registry: Registry,
        telemetry: Telemetry,
        incidents: Incidents,
        *,
        budgets: SqlModelMetricsStore | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.telemetry = telemetry
        self.incidents = incidents
        self.budgets = budgets  # where each evaluation's budget is kept for /metrics

    def create(
        self,
        by: Principal,
        model: str,
        *,
        name: str,
        kind: str,
        objective: float,
        window_days: int = 30,
        latency_threshold_ms: float | None = None,
    ) -> Slo:
        """Define an SLO on ``model`` (write permission in the model's team); audited."""
        check_name(model, "model")
        check_name(name, "name")
        found = self.registry.get_model(model)
        authorize(by, Permission.WRITE, found.team)
        parsed = check_definition(kind, objective, window_days, latency_threshold_ms)
        return self.store.create_slo(
            model=model,
            name=name,
            kind=parsed,
            objective=objective,
            window_days=window_days,
            latency_threshold_ms=latency_threshold_ms,
            actor=by.name,
        )

    def list(self, model: str) -> list[Slo]:
        check_name(model, "model")
        self.registry.get_model(model)
        return self.store.list_slos(model)

    def get(self, slo_id: int) -> Slo:
        return self.store.get_slo(slo_id)

    def status(self, slo_id: int, *, now: datetime | None = None) -> SloStatus:
        """Budget remaining over the SLO's window and the burn rate of each rule's windows."""
        return self._status(self.store.get_slo(slo_id), _utc(now))

    def _status(self, slo: Slo, at: datetime) -> SloStatus:
        counts: dict[timedelta, Counts] = {}
        for window in (*windows_needed(), timedelta(days=slo.window_days)):
            total, bad = self.telemetry.request_counts(
                slo.model, at - window, at, latency_bound_ms=slo.latency_threshold_ms
            )
            counts[window] = Counts(total, bad)
        status = status_of(slo, at, counts)
        if self.budgets is not None:  # the newest computation is what /metrics reports
            self.budgets.record_slo_budget(
                slo.id, status.budget_remaining, status.window.total, status.window.bad, at
            )
        return status

    def evaluate(self, by: Principal, slo_id: int, *, now: datetime | None = None) -> SloStatus:
        """Evaluate one SLO and open, update or resolve its incident."""
        slo = self.store.get_slo(slo_id)
        status = self._status(slo, _utc(now))
        key = slo_key(slo)
        firing = status.firing
        if firing is not None:
            rule = firing.rule
            signal = {"firing_rules": list(status.firing_rules), "severity": rule.severity}
            open_incident = self.incidents.open_incident(key)
            if open_incident is not None and _last_signal(open_incident) == signal:
                return status  # the same burn seen again: nothing new to tell anyone
            self.incidents.trigger(
                by,
                key=key,
                model=slo.model,
                version=None,
                title=(
                    f"SLO {slo.name!r} ({slo.kind} {slo.objective:.4%}) burning at "
                    f"{firing.long_burn:.1f}x over {span(rule.long)} and "
                    f"{firing.short_burn:.1f}x over {span(rule.short)} "
                    f"({rule.action} at {rule.rate:g}x)"
                ),
                severity=Severity(rule.severity),
                check="slo",
                labels={"slo": slo.name, "action": str(rule.action)},
                details={
                    "slo_id": slo.id,
                    "long_window": span(rule.long),
                    "short_window": span(rule.short),
                    "long_burn": firing.long_burn,
                    "short_burn": firing.short_burn,
                    "threshold": rule.rate,
                    "budget_remaining": status.budget_remaining,
                    **signal,
                },
            )
        else:
            open_incident = self.incidents.open_incident(key)
            if open_incident is not None:
                self.incidents.resolve(
                    by,
                    open_incident.id,
                    "No burn-rate rule fires any more.",
                    automatic=True,
                )
        return status

    def evaluate_all(
        self, by: Principal, *, now: datetime | None = None
    ) -> builtins.list[SloStatus]:
        """The worker job: evaluate every SLO; one failing SLO does not stop the others."""
        at = _utc(now)
        done: builtins.list[SloStatus] = []
        for slo in self.store.list_slos():
            try:
                done.append(self.evaluate(by, slo.id, now=at))
            except Exception:
                log.exception("SLO %s of %s could not be evaluated", slo.id, slo.model)
        return done


def _last_signal(incident: Incident) -> dict[str, object] | None:
    """The firing rules and severity of the incident's last alert entry, if it recorded them."""
    for entry in reversed(incident.timeline):
        if entry.kind == TimelineKind.ALERT:
            if "firing_rules" not in entry.details:
                return None
            return {
                "firing_rules": list(entry.details["firing_rules"]),
                "severity": entry.details.get("severity"),
            }
    return None
