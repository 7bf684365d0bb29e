"""Incidents: open them from alerts (deduplicated by key), move them through their lifecycle,
keep their timeline and post-mortem, and measure how fast teams respond.

The assignee is the model's owner (`Model.owner`). Keel has no on-call rotation yet; when it
does, the team's on-call takes precedence here.

Listeners (notifications, playbooks) are told about every change after it committed, with an
event type ``incident.triggered | incident.acknowledged | incident.resolved | incident.updated``;
a failing listener is logged and never undoes the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from keel.domain.incidents import (
    MAX_COMMENT,
    MAX_POSTMORTEM,
    MAX_TITLE,
    Incident,
    IncidentStatus,
    ResponseTimes,
    Severity,
    TimelineKind,
    check_labels,
    check_text,
    response_times,
)
from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.errors import InvalidInput
from keel.services.registry import Registry
from keel.store.sql.incidents import MAX_LIST, SqlIncidentStore

log = logging.getLogger("keel.incidents")

Listener = Callable[[str, Incident], None]


def parse_status(value: str | None) -> IncidentStatus | None:
    """An incident status as people type it (``open`` is not a status: use the list filter)."""
    if value is None or value == "":
        return None
    try:
        return IncidentStatus(value.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"The 'status' field must be one of {', '.join(IncidentStatus)} or 'open'. "
            f"Got {value!r} instead.",
            {"field": "status"},
        ) from None


class Incidents:
    """The incident service (Backend field ``incidents``)."""

    def __init__(self, store: SqlIncidentStore, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._listeners: list[Listener] = []

    # -- listeners -----------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event_type, incident)`` after every committed change."""
        self._listeners.append(listener)

    def _tell(self, event: str, incident: Incident) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, incident)
            except Exception:  # a listener's failure must not undo or hide the change
                log.exception("incident listener failed on %s for incident %s", event, incident.id)

    def _writable(self, by: Principal, model: str) -> None:
        authorize(by, Permission.WRITE, self.registry.get_model(model).team)

    # -- opening -------------------------------------------------------------------------------

    def trigger(
        self,
        by: Principal,
        *,
        key: str,
        model: str,
        version: int | None,
        title: str,
        severity: Severity,
        check: str | None = None,
        column: str | None = None,
        labels: Mapping[str, str] | None = None,
        rule_id: int | None = None,
        details: Mapping[str, Any] | None = None,
        drill_id: int | None = None,
    ) -> tuple[Incident, bool]:
        """Open an incident, or add an "alert" entry to the open one with the same ``key``.

        Returns the incident and whether it was created. A trigger after the incident with
        that key was resolved opens a new one. ``drill_id`` marks a drill's incident
        (`keel.services.drills`), which real queries leave out.
        """
        check_name(model, "model")
        found = self.registry.get_model(model)
        authorize(by, Permission.WRITE, found.team)
        key = check_text(key, "key", 512)
        title = check_text(title, "title", MAX_TITLE)
        incident, created = self.store.trigger(
            key=key,
            model=model,
            version=version,
            title=title,
            severity=Severity(severity),
            check=check,
            column=column,
            labels=check_labels(labels),
            rule_id=rule_id,
            assignee=found.owner or None,
            actor=by.name,
            details=dict(details or {}),
            drill_id=drill_id,
        )
        self._tell("incident.triggered" if created else "incident.updated", incident)
        return incident, created

    # -- lifecycle -----------------------------------------------------------------------------

    def acknowledge(self, by: Principal, incident_id: int, comment: str = "") -> Incident:
        """triggered -> acknowledged (someone is on it); audited."""
        current = self.store.get(incident_id)
        self._writable(by, current.model)
        text = check_text(comment, "comment", MAX_COMMENT, required=False)
        incident = self.store.transition(
            incident_id, IncidentStatus.ACKNOWLEDGED, actor=by.name, comment=text
        )
        self._tell("incident.acknowledged", incident)
        return incident

    def resolve(
        self, by: Principal, incident_id: int, comment: str = "", *, automatic: bool = False
    ) -> Incident:
        """triggered/acknowledged -> resolved; ``automatic`` when an alert rule's condition
        cleared. Audited."""
        current = self.store.get(incident_id)
        self._writable(by, current.model)
        text = check_text(comment, "comment", MAX_COMMENT, required=False)
        incident = self.store.transition(
            incident_id, IncidentStatus.RESOLVED, actor=by.name, comment=text, automatic=automatic
        )
        self._tell("incident.resolved", incident)
        return incident

    def comment(self, by: Principal, incident_id: int, text: str) -> Incident:
        """Add a comment to the timeline; audited."""
        current = self.store.get(incident_id)
        self._writable(by, current.model)
        clean = check_text(text, "text", MAX_COMMENT)
        incident = self.store.add_entry(
            incident_id,
            actor=by.name,
            kind=TimelineKind.COMMENT,
            message=clean,
            details={},
            audit_action="incident.comment",
        )
        self._tell("incident.updated", incident)
        return incident

    def record_action(
        self,
        by: Principal,
        incident_id: int,
        action: str,
        outcome: str,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> Incident:
        """Put an automated action's outcome (a playbook step) on the timeline; audited."""
        current = self.store.get(incident_id)
        self._writable(by, current.model)
        incident = self.store.add_entry(
            incident_id,
            actor=by.name,
            kind=TimelineKind.ACTION,
            message=check_text(message, "message", MAX_COMMENT),
            details={"action": action, "outcome": outcome, **dict(details or {})},
            audit_action="incident.action",
        )
        self._tell("incident.updated", incident)
        return incident

    def set_postmortem(self, by: Principal, incident_id: int, markdown: str) -> Incident:
        """Attach (or replace) the incident's post-mortem, a markdown document; audited."""
        current = self.store.get(incident_id)
        self._writable(by, current.model)
        text = check_text(markdown, "postmortem", MAX_POSTMORTEM)
        incident = self.store.set_postmortem(incident_id, text, actor=by.name)
        self._tell("incident.updated", incident)
        return incident

    # -- reading -------------------------------------------------------------------------------

    def get(self, incident_id: int) -> Incident:
        """One incident with its full timeline."""
        return self.store.get(incident_id)

    def get_visible(self, by: Principal, incident_id: int) -> Incident:
        """One incident, if ``by`` may read its model's team."""
        incident = self.store.get(incident_id)
        authorize(by, Permission.READ, self.store.team_of(incident.model))
        return incident

    def open_incident(self, key: str) -> Incident | None:
        """The open (triggered or acknowledged) incident with ``key``, if any."""
        return self.store.open_by_key(key)

    def list(
        self,
        *,
        model: str | None = None,
        team: str | None = None,
        status: str | None = None,
        by: Principal | None = None,
        limit: int = MAX_LIST,
        drill: bool | None = False,
    ) -> list[Incident]:
        """Incidents newest first, filtered by model, team and status (``open`` = triggered or
        acknowledged); with ``by``, only teams it may read. Drills' incidents are left out
        unless ``drill`` is True (only them) or None (both)."""
        statuses: frozenset[IncidentStatus] | None
        if status is not None and status.strip().lower() == "open":
            statuses = frozenset({IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED})
        else:
            parsed = parse_status(status)
            statuses = None if parsed is None else frozenset({parsed})
        if model is not None:
            check_name(model, "model")
            found = self.registry.get_model(model)
            if by is not None:
                authorize(by, Permission.READ, found.team)
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(
                f"The 'limit' field must be between 1 and {MAX_LIST}.", {"field": "limit"}
            )
        if by is not None:
            # Reading is global to role holders (keel.domain.permissions.allows).
            authorize(by, Permission.READ, team)
        return self.store.list(model=model, team=team, statuses=statuses, limit=limit, drill=drill)

    def stats(
        self, *, model: str | None = None, team: str | None = None, by: Principal | None = None
    ) -> ResponseTimes:
        """MTTA and MTTR over a model's or team's incidents (all incidents when neither)."""
        return response_times(self.list(model=model, team=team, by=by))
