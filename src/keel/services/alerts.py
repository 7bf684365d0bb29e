"""Alert rules: manage them (audited), create the defaults with each monitor, and evaluate them
whenever a monitor stores metric points, opening, updating and auto-resolving incidents.

Default rules belong to the model once per signal: a monitor adds a default rule only where no
rule of the model reads the same series (check, column, metric, version) yet, so two monitors
over one drifting column open one incident. Deleting a monitor removes the default rules it
created, unless another monitor of the model needs the same rule (it inherits it). A default rule
someone edits (`apply` under its name) becomes theirs and outlives the monitor."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from keel.domain.alerts import AlertRule, Decision, decide, default_rules, parse_rule
from keel.domain.incidents import Incident, incident_key
from keel.domain.monitoring import MetricPoint, Monitor
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.errors import InvalidInput
from keel.services.incidents import Incidents
from keel.services.registry import Registry
from keel.store.sql.alerts import SqlAlertStore

log = logging.getLogger("keel.alerts")
MAX_RULES_PER_APPLY = 200
MAX_DETAIL_POINTS = 10


@dataclass(frozen=True)
class AlertOutcome:
    """What one rule decided for one model version, and the incident it touched (if any)."""

    rule: AlertRule
    version: int
    decision: Decision
    incident: Incident | None
    created: bool = False


class Alerts:
    """Alert rules over a store, raising incidents through `Incidents`."""

    def __init__(self, store: SqlAlertStore, registry: Registry, incidents: Incidents) -> None:
        self.store = store
        self.registry = registry
        self.incidents = incidents

    def _writable(self, by: Principal, model: str) -> None:
        authorize(by, Permission.WRITE, self.registry.get_model(model).team)

    # -- rules ---------------------------------------------------------------------------------

    def list_rules(self, model: str) -> list[AlertRule]:
        return self.store.list_rules(check_name(model, "model"))

    def get_rule(self, rule_id: int) -> AlertRule:
        return self.store.get_rule(rule_id)

    def create_rule(self, by: Principal, rule: AlertRule) -> AlertRule:
        """Add a rule to ``rule.model`` (write access in its team); audited."""
        check_name(rule.model, "model")
        check_name(rule.name, "name")
        self._writable(by, rule.model)
        return self.store.create_rule(rule, by.name)

    def apply(
        self, by: Principal, model: str, rules: Sequence[Mapping[str, Any]]
    ) -> list[AlertRule]:
        """Create or update (by name) every rule in ``rules`` for ``model``, all or nothing.

        Rules of the model not named are left as they are. Every entry is validated before
        anything is written; an error names the entry and field (``rules[2].threshold``).
        """
        check_name(model, "model")
        self._writable(by, model)
        if not rules:
            raise InvalidInput("The 'rules' field must list at least one rule.", {"field": "rules"})
        if len(rules) > MAX_RULES_PER_APPLY:
            raise InvalidInput(
                f"The 'rules' field lists {len(rules)} rules; at most {MAX_RULES_PER_APPLY} "
                "at once.",
                {"field": "rules"},
            )
        parsed = [parse_rule(model, raw, f"rules[{i}]") for i, raw in enumerate(rules)]
        names = [r.name for r in parsed]
        for i, rule in enumerate(parsed):
            check_name(rule.name, f"rules[{i}].name")
            if names.index(rule.name) != i:
                raise InvalidInput(
                    f"The 'rules[{i}].name' field repeats {rule.name!r}; names are unique per "
                    "model.",
                    {"field": f"rules[{i}].name"},
                )
        return self.store.save_rules(parsed, by.name)

    def apply_new(self, by: Principal, model: str, raw: Mapping[str, Any]) -> list[AlertRule]:
        """Create one rule from its JSON fields; a name already used is a conflict."""
        check_name(model, "model")
        rule = parse_rule(model, {k: v for k, v in raw.items() if v is not None}, "rule")
        return [self.create_rule(by, rule)]

    def delete_rule(self, by: Principal, rule_id: int) -> AlertRule:
        """Remove a rule; incidents it opened stay. Audited."""
        current = self.store.get_rule(rule_id)
        self._writable(by, current.model)
        return self.store.delete_rule(rule_id, by.name)

    def create_defaults(self, by: Principal, monitor: Monitor) -> list[AlertRule]:
        """The default rules of a new monitor (see `keel.domain.alerts.default_rules`), except
        where the model already has a rule with the same name or over the same series."""
        existing = self.store.list_rules(monitor.model)
        names = {r.name for r in existing}
        covered = {r.series for r in existing}
        fresh = [
            r for r in default_rules(monitor) if r.name not in names and r.series not in covered
        ]
        return self.store.save_rules(fresh, by.name) if fresh else []

    def remove_defaults(
        self, by: Principal, monitor: Monitor, remaining: Sequence[Monitor]
    ) -> list[AlertRule]:
        """A deleted monitor's default rules: each goes to a ``remaining`` monitor that would
        have created it, or is deleted. Rules people wrote are untouched. Returns the deleted."""
        heirs: dict[int, int | None] = {}
        for rule in self.store.list_rules(monitor.model):
            if rule.id is None or rule.monitor_id != monitor.id:
                continue
            heir = next(
                (
                    m.id
                    for m in remaining
                    if m.id != monitor.id and any(d.series == rule.series for d in default_rules(m))
                ),
                None,
            )
            heirs[rule.id] = heir
        return self.store.release_rules(heirs, by.name) if heirs else []

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, by: Principal, points: Sequence[MetricPoint]) -> list[AlertOutcome]:
        """Evaluate the rules of every model in ``points`` against their newest windows.

        A firing rule opens an incident keyed ``rule:model:version`` or adds an alert to the
        open one; a cleared condition resolves the open one if the rule auto-resolves.
        """
        outcomes: list[AlertOutcome] = []
        for model in sorted({p.model for p in points}):
            mine = [p for p in points if p.model == model]
            for rule in self.store.list_rules(model):
                versions = sorted({p.version for p in mine if rule.matches(p)})
                for version in versions:
                    outcomes.append(self._evaluate_rule(by, rule, version))
        return outcomes

    def _evaluate_rule(self, by: Principal, rule: AlertRule, version: int) -> AlertOutcome:
        assert rule.id is not None
        windows = self.store.recent_windows(rule, version, rule.windows)
        decision = decide(rule, windows)
        key = incident_key(rule.id, rule.model, version)
        if decision == Decision.FIRE:
            newest = windows[-1]
            breaching = [p for p in newest if rule.breaches(p)]
            incident, created = self.incidents.trigger(
                by,
                key=key,
                model=rule.model,
                version=version,
                title=f"{rule.model} v{version}: {rule.name} ({rule.describe()})",
                severity=rule.severity,
                check=str(rule.check),
                column=rule.column,
                labels=rule.labels,
                rule_id=rule.id,
                details={
                    "rule": rule.name,
                    "window_start": newest[0].window_start.isoformat(),
                    "window_end": newest[0].window_end.isoformat(),
                    "points": [
                        {
                            "column": p.column,
                            "metric": p.metric,
                            "value": p.value,
                            "threshold": p.threshold,
                            "status": str(p.status),
                        }
                        for p in breaching[:MAX_DETAIL_POINTS]
                    ],
                },
            )
            return AlertOutcome(rule, version, decision, incident, created)
        if decision == Decision.CLEAR and rule.auto_resolve:
            open_incident = self.incidents.open_incident(key)
            if open_incident is not None:
                end = windows[-1][0].window_end.isoformat()
                resolved = self.incidents.resolve(
                    by,
                    open_incident.id,
                    f"The window ending {end} is within the rule's limits.",
                    automatic=True,
                )
                return AlertOutcome(rule, version, decision, resolved)
        return AlertOutcome(rule, version, decision, None)

    def on_points(self, by: Principal, points: Sequence[MetricPoint]) -> None:
        """Monitoring's hook: evaluate, and never let a rule's failure stop a monitor run."""
        try:
            self.evaluate(by, points)
        except Exception:
            log.exception("alert evaluation failed for %d metric points", len(points))

    def on_monitor_created(self, by: Principal, monitor: Monitor) -> None:
        """Monitoring's hook: the new monitor's default rules."""
        self.create_defaults(by, replace(monitor))

    def on_monitor_deleted(
        self, by: Principal, monitor: Monitor, remaining: Sequence[Monitor]
    ) -> None:
        """Monitoring's hook: the deleted monitor's default rules go (or pass to a sibling)."""
        self.remove_defaults(by, monitor, remaining)
