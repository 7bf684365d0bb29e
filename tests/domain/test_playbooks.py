"""Playbook YAML validation (naming the field) and incident matching, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from keel.domain.incidents import Incident, IncidentStatus, Severity
from keel.domain.playbooks import (
    ActionKind,
    Scope,
    mismatch,
    parse_playbook,
    playbook_to_dict,
)
from keel.errors import InvalidInput

SOURCE = """
name: credit-drift
model: credit
match:
  severity: [P1, P2]
  check: drift
  labels: {column: income}
actions:
  - notify: {event: incident.credit}
  - require_ack
  - rollback
  - pause_rollout
  - retrain
"""


def incident(**changes: Any) -> Incident:
    values: dict[str, Any] = {
        "id": 1,
        "key": "drift:credit:2",
        "model": "credit",
        "version": 2,
        "rule_id": None,
        "title": "income drifted",
        "severity": Severity.P1,
        "status": IncidentStatus.TRIGGERED,
        "labels": {"column": "income"},
        "check": "drift",
        "column": "income",
        "assignee": None,
        "opened_at": datetime(2026, 1, 1, tzinfo=UTC),
        "acknowledged_at": None,
        "resolved_at": None,
        "postmortem": "",
    }
    return Incident(**(values | changes))


def test_a_playbook_parses_in_order_and_round_trips() -> None:
    playbook = parse_playbook(yaml.safe_load(SOURCE))
    assert (playbook.name, playbook.scope, playbook.target) == (
        "credit-drift",
        Scope.MODEL,
        "credit",
    )
    assert [a.kind for a in playbook.actions] == [
        ActionKind.NOTIFY,
        ActionKind.REQUIRE_ACK,
        ActionKind.ROLLBACK,
        ActionKind.PAUSE_ROLLOUT,
        ActionKind.RETRAIN,
    ]
    assert playbook.actions[0].options == {"event": "incident.credit"}
    assert parse_playbook(playbook_to_dict(playbook)) == playbook


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"actions": ["rollback", "reboot"]}, "actions[1]"),
        ({"actions": []}, "actions"),
        ({"actions": [{"rollback": {"fast": True}}]}, "actions[0].rollback"),
        ({"actions": [{"notify": {"url": "https://x"}}]}, "actions[0].notify.url"),
        ({"match": {"severity": ["P9"]}}, "match.severity[0]"),
        ({"match": {"owner": "x"}}, "match.owner"),
        ({"team": "risk"}, "model"),
        ({"enabled": "yes"}, "enabled"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_playbooks_name_the_field(change: dict[str, Any], field: str) -> None:
    document = yaml.safe_load(SOURCE) | change
    with pytest.raises(InvalidInput) as caught:
        parse_playbook(document)
    assert caught.value.details["field"] == field
    assert field in caught.value.message


def test_matching_on_scope_severity_check_and_labels() -> None:
    playbook = parse_playbook(yaml.safe_load(SOURCE))
    assert mismatch(playbook, incident(), "risk") is None
    assert "severity P3" in str(mismatch(playbook, incident(severity=Severity.P3), "risk"))
    assert "check latency" in str(mismatch(playbook, incident(check="latency"), "risk"))
    assert "label column" in str(mismatch(playbook, incident(labels={"column": "debt"}), "risk"))
    assert "model credit" in str(mismatch(playbook, incident(model="churn"), "risk"))
    team = parse_playbook(yaml.safe_load(SOURCE.replace("model: credit", "team: risk")))
    assert mismatch(team, incident(model="churn"), "risk") is None
    assert "team risk" in str(mismatch(team, incident(), "growth"))
    anything = parse_playbook({"name": "all", "team": "risk", "actions": ["notify"]})
    assert mismatch(anything, incident(severity=Severity.P5, check=None), "risk") is None
    off = parse_playbook(yaml.safe_load(SOURCE) | {"enabled": False})
    assert mismatch(off, incident(), "risk") == "the playbook is disabled"
