"""Playbooks: what Keel does, in order, when an incident matches.

A playbook is a small YAML document::

    name: credit-drift
    model: credit            # or `team: risk` (every model of the team)
    match:                   # every key given must match; an empty match matches every incident
      severity: [P1, P2]
      check: drift
      labels: {column: income}
    actions:                 # run in order; each outcome goes on the incident's timeline
      - notify: {event: incident.credit-drift}    # default event: incident.playbook
      - require_ack          # stop until a person acknowledges the incident
      - rollback
      - pause_rollout        # pauses the model's rollout in progress (skipped when none is)
      - retrain

This module parses and validates the document (naming the field that is wrong) and matches an
incident; it does no I/O. The service (keel.services.playbooks) stores and runs playbooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from keel.domain.incidents import Incident, Severity
from keel.domain.names import check_name
from keel.errors import InvalidInput

MAX_ACTIONS = 20
DEFAULT_EVENT = "incident.playbook"


class ActionKind(StrEnum):
    NOTIFY = "notify"
    ROLLBACK = "rollback"
    PAUSE_ROLLOUT = "pause_rollout"
    RETRAIN = "retrain"
    REQUIRE_ACK = "require_ack"


class Scope(StrEnum):
    MODEL = "model"
    TEAM = "team"


@dataclass(frozen=True)
class Action:
    """One step; ``options`` holds notify's ``url`` or ``event``."""

    kind: ActionKind
    options: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == ActionKind.NOTIFY:
            return f"notify (event {self.options.get('event', DEFAULT_EVENT)})"
        return str(self.kind)


@dataclass(frozen=True)
class Match:
    severity: tuple[Severity, ...] = ()
    check: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Playbook:
    name: str
    scope: Scope
    target: str
    match: Match
    actions: tuple[Action, ...]
    enabled: bool = True


def _bad(path: str, message: str) -> InvalidInput:
    return InvalidInput(f"Playbook field '{path}': {message}", {"field": path})


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(path, f"expected a mapping, got {type(value).__name__}.")
    return value


def _action(raw: Any, index: int) -> Action:
    path = f"actions[{index}]"
    kinds = ", ".join(k.value for k in ActionKind)
    if isinstance(raw, str):
        name, options = raw, None
    elif isinstance(raw, Mapping) and len(raw) == 1:
        name, options = next(iter(raw.items()))
    else:
        raise _bad(path, f"write an action as a name or a one-key mapping; actions are {kinds}.")
    try:
        kind = ActionKind(str(name))
    except ValueError:
        raise _bad(path, f"unknown action {name!r}; actions are {kinds}.") from None
    if kind != ActionKind.NOTIFY:
        if options not in (None, {}):
            raise _bad(f"{path}.{kind}", "takes no options.")
        return Action(kind)
    given = _mapping(options if options is not None else {}, f"{path}.notify")
    unknown = sorted(set(given) - {"event"})
    if unknown:
        hint = (
            " Notifications go through the signed, retried outbox: subscribe the URL to the "
            "event (keel webhooks add URL --event EVENT) and name the event here."
            if "url" in unknown
            else ""
        )
        raise _bad(f"{path}.notify.{unknown[0]}", f"unknown option; use 'event'.{hint}")
    event = str(given.get("event", DEFAULT_EVENT)).strip()
    if not event or any(c.isspace() for c in event):
        raise _bad(f"{path}.notify.event", "an event name is one word, e.g. incident.page.")
    return Action(kind, {"event": event})


def _match(raw: Any) -> Match:
    given = _mapping(raw if raw is not None else {}, "match")
    unknown = sorted(set(given) - {"severity", "check", "labels"})
    if unknown:
        raise _bad(f"match.{unknown[0]}", "unknown key; match on severity, check or labels.")
    severities = given.get("severity", [])
    if isinstance(severities, str):
        severities = [severities]
    if not isinstance(severities, Sequence):
        raise _bad("match.severity", "a list of severities such as [P1, P2].")
    parsed: list[Severity] = []
    for i, value in enumerate(severities):
        try:
            parsed.append(Severity(str(value).upper()))
        except ValueError:
            raise _bad(f"match.severity[{i}]", f"{value!r} is not one of P1..P5.") from None
    check = given.get("check")
    if check is not None and (not isinstance(check, str) or not check.strip()):
        raise _bad("match.check", "a check name such as drift.")
    labels = _mapping(given.get("labels") or {}, "match.labels")
    return Match(
        tuple(parsed),
        None if check is None else check.strip(),
        {str(k): str(v) for k, v in labels.items()},
    )


def parse_playbook(document: Any) -> Playbook:
    """Validate a parsed YAML document into a `Playbook`, or raise naming the field."""
    doc = _mapping(document, "(document)")
    unknown = sorted(set(doc) - {"name", "model", "team", "match", "actions", "enabled"})
    if unknown:
        raise _bad(
            unknown[0], "unknown key; a playbook has name, model or team, match, actions, enabled."
        )
    if not isinstance(doc.get("name"), str):
        raise _bad("name", "required: a name such as credit-drift.")
    name = check_name(doc["name"], "name")
    if ("model" in doc) == ("team" in doc):
        raise _bad("model", "attach the playbook to exactly one of 'model' or 'team'.")
    scope = Scope.MODEL if "model" in doc else Scope.TEAM
    target = check_name(str(doc[str(scope)]), str(scope))
    actions = doc.get("actions")
    if not isinstance(actions, list) or not actions:
        raise _bad("actions", "required: a list of at least one action.")
    if len(actions) > MAX_ACTIONS:
        raise _bad("actions", f"{len(actions)} actions; keep it to {MAX_ACTIONS}.")
    enabled = doc.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _bad("enabled", "true or false.")
    return Playbook(
        name=name,
        scope=scope,
        target=target,
        match=_match(doc.get("match")),
        actions=tuple(_action(a, i) for i, a in enumerate(actions)),
        enabled=enabled,
    )


def playbook_to_dict(playbook: Playbook) -> dict[str, Any]:
    """The normal form stored beside the source (parse_playbook reads it back)."""
    return {
        "name": playbook.name,
        str(playbook.scope): playbook.target,
        "enabled": playbook.enabled,
        "match": {
            "severity": [str(s) for s in playbook.match.severity],
            **({"check": playbook.match.check} if playbook.match.check else {}),
            "labels": dict(playbook.match.labels),
        },
        "actions": [
            {str(a.kind): dict(a.options)} if a.options else str(a.kind) for a in playbook.actions
        ],
    }


def mismatch(playbook: Playbook, incident: Incident, team: str | None) -> str | None:
    """Why the playbook does not apply to the incident (None when it does).

    ``team`` is the team owning the incident's model (for team-scoped playbooks).
    """
    if not playbook.enabled:
        return "the playbook is disabled"
    if playbook.scope == Scope.MODEL and playbook.target != incident.model:
        return f"it is attached to model {playbook.target}, the incident is on {incident.model}"
    if playbook.scope == Scope.TEAM and playbook.target != team:
        return f"it is attached to team {playbook.target}, the model belongs to {team}"
    match = playbook.match
    if match.severity and incident.severity not in match.severity:
        wanted = ", ".join(match.severity)
        return f"severity {incident.severity} is not one of {wanted}"
    if match.check is not None and match.check != incident.check:
        return f"check {incident.check or 'none'} is not {match.check}"
    for key, value in match.labels.items():
        if incident.labels.get(key) != value:
            return f"label {key}={incident.labels.get(key)!r}, wanted {value!r}"
    return None


def matches(playbook: Playbook, incident: Incident, team: str | None) -> bool:
    """True when the playbook applies to the incident (see `mismatch` for the reason if not)."""
    return mismatch(playbook, incident, team) is None
