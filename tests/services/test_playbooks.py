"""Playbook runs through the services: notify through the outbox, require_ack stops until a
person acknowledges (and a resolution cancels the rest), dry runs change nothing, and applying
is versioned, authorized and audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.config import Settings
from keel.domain.incidents import Incident, Severity
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model
from keel.errors import InvalidInput, PermissionDenied
from keel.services.backend import Backend
from keel.services.playbooks import parse_source

ROOT = Principal("root", grants=(Grant(Role.ADMIN),))
DANA = Principal("dana", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
OUTSIDER = Principal("olga", grants=(Grant(Role.CONTRIBUTOR, "growth"),))
PLAYBOOK = """\
name: page-then-wait
team: risk
match: {severity: [P1, P2]}
actions:
  - notify: {event: incident.page}
  - require_ack
  - pause_rollout
"""


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = Backend.open(Settings.load(data_dir=tmp_path, env={}))
    opened.migrate()
    opened.registry.create_team(ROOT, "risk")
    opened.registry.create_model(ROOT, Model(name="credit", team="risk", owner="ana"))
    yield opened
    opened.close()


def trigger(backend: Backend, key: str, severity: Severity = Severity.P1) -> Incident:
    incident, _ = backend.incidents.trigger(
        ROOT, key=key, model="credit", version=None, title="latency high", severity=severity
    )
    return backend.incidents.get(incident.id)


def actions(incident: Incident) -> list[tuple[str, str]]:
    return [
        (str(e.details["action"]), str(e.details["outcome"]))
        for e in incident.timeline
        if e.kind == "action"
    ]


def test_require_ack_stops_the_run_until_a_person_acknowledges(backend: Backend) -> None:
    backend.notifications.subscribe(ROOT, url="http://127.0.0.1:9/hook", events=["incident.page"])
    backend.playbooks.apply(DANA, PLAYBOOK)

    incident = trigger(backend, "latency:credit")
    assert actions(incident) == [("notify", "done"), ("require_ack", "waiting")]
    (queued,) = backend.notifications.deliveries()
    assert queued.event_type == "incident.page"
    assert queued.payload["incident"]["id"] == incident.id
    (run,) = backend.playbooks.runs(incident.id)
    assert (run.status, run.next_action) == ("waiting", 2)

    acknowledged = backend.incidents.acknowledge(DANA, incident.id, "on it")
    shown = backend.incidents.get(acknowledged.id)
    assert actions(shown)[-1] == ("pause_rollout", "skipped")  # no rollout in progress
    assert [r.status for r in backend.playbooks.runs(incident.id)] == ["finished"]

    # Resolved while waiting: the remaining actions never run, and the timeline says so.
    other = trigger(backend, "latency:credit:2")
    backend.incidents.resolve(DANA, other.id, "false alarm")
    closed = backend.incidents.get(other.id)
    assert actions(closed)[-1] == ("require_ack", "cancelled")
    assert ("pause_rollout", "skipped") not in actions(closed)

    # Not matching (P4): nothing runs.
    quiet = trigger(backend, "latency:credit:3", Severity.P4)
    assert actions(quiet) == []
    assert backend.playbooks.runs(quiet.id) == []


def test_dry_run_says_what_would_run_and_changes_nothing(backend: Backend) -> None:
    incident = trigger(backend, "latency:credit")  # no playbook yet: nothing ran
    audit_before = len(backend.audit.events(ROOT, limit=1000))
    plan = backend.playbooks.dry_run(
        parse_source(PLAYBOOK + "  - rollback\n  - retrain\n"), incident
    )
    assert plan.matches
    assert [a.action for a in plan.actions] == [
        "notify (event incident.page)",
        "require_ack",
        "pause_rollout",
        "rollback",
        "retrain",
    ]
    assert plan.actions[1].would == "would stop until a person acknowledges the incident"
    assert plan.actions[2].would == (
        "after acknowledgement: would do nothing: credit has no rollout in progress"
    )
    assert "no production version" in plan.actions[3].would
    assert "no retraining job" in plan.actions[4].would
    assert len(backend.audit.events(ROOT, limit=1000)) == audit_before
    assert backend.notifications.deliveries() == []

    other = backend.playbooks.dry_run(parse_source(PLAYBOOK.replace("[P1, P2]", "[P3]")), incident)
    assert (other.matches, other.actions) == (False, ())
    assert "severity P1" in other.reason


def test_apply_is_versioned_authorized_and_audited(backend: Backend) -> None:
    first = backend.playbooks.apply(DANA, PLAYBOOK)
    second = backend.playbooks.apply(DANA, PLAYBOOK.replace("[P1, P2]", "[P1]"))
    assert (first.version, second.version) == (1, 2)
    (current,) = backend.playbooks.list()
    assert current.version == 2 and current.document["match"]["severity"] == ["P1"]
    with pytest.raises(PermissionDenied):
        backend.playbooks.apply(OUTSIDER, PLAYBOOK)
    with pytest.raises(InvalidInput) as bad:
        backend.playbooks.apply(DANA, PLAYBOOK.replace("pause_rollout", "pause_everything"))
    assert bad.value.details["field"] == "actions[2]"
    with pytest.raises(InvalidInput, match="not valid YAML"):
        backend.playbooks.apply(DANA, "name: [unclosed")
    assert [e.details["version"] for e in backend.audit.events(ROOT, action="playbook.apply")] == [
        1,
        2,
    ]
