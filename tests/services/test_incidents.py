"""Incidents and alert rules over a real backend (SQLite and PostgreSQL) and real telemetry:
a monitor's default drift rule opens one incident after two drifted windows, adds later alerts
to it, resolves it when drift clears, and a later drift opens a new one; the lifecycle refuses
illegal moves; every change is in the audit trail; MTTA/MTTR per model and team."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from keel.domain.alerts import AlertRule, Comparison
from keel.domain.incidents import IncidentStatus, Severity
from keel.domain.monitoring import Check, Monitor
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import IllegalTransition, InvalidInput, PermissionDenied
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
ANA = Principal("ana", grants=(Grant(Role.CONTRIBUTOR, "risk"),))
OUTSIDER = Principal("otto", grants=(Grant(Role.CONTRIBUTOR, "growth"),))
SIGNATURE = Signature(
    (
        Column("income", ColumnType.FLOAT, nullable=False),
        Column("plan", ColumnType.STRING, nullable=False),
        Column("churned", ColumnType.BOOLEAN, ColumnRole.TARGET),
    )
)
HOUR = timedelta(hours=1)
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    opened = empty_backend
    opened.registry.create_team(ADMIN, "risk")
    opened.registry.create_team(ADMIN, "growth")
    opened.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    opened.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"model"), "m.bin", VersionDraft(signature=SIGNATURE)
    )
    rng = np.random.default_rng(5)
    reference = pa.table(
        {"income": rng.normal(50, 10, 5000), "plan": rng.choice(["a", "b", "c"], 5000)}
    )
    opened.telemetry.set_reference(ADMIN, "churn", 1, reference)
    return opened


def log_hour(backend: Backend, hour: datetime, *, shift: float = 0.0, rows: int = 400) -> None:
    """``rows`` predictions in ``hour``; ``shift`` moves income by that many std."""
    # Seeded by the hour's place in the test, never by the clock: the same data every run.
    rng = np.random.default_rng(1000 + round((hour - T0) / HOUR))
    offsets = np.sort(rng.uniform(0, 3600, rows))
    table = pa.table(
        {
            "ts": pa.array(
                [hour + timedelta(seconds=float(s)) for s in offsets], pa.timestamp("us", tz="UTC")
            ),
            "prediction": rng.random(rows) < 0.3,
            "income": rng.normal(50 + 10 * shift, 10, rows),
            "plan": rng.choice(["a", "b", "c"], rows),
        }
    )
    backend.telemetry.log_predictions(ADMIN, "churn", 1, table)


def run_hour(backend: Backend, hour: datetime) -> None:
    """Run the model's monitors over ``hour`` (a run at the end of it)."""
    backend.monitoring.run(ANA, "churn", now=hour + HOUR + timedelta(minutes=1))


def test_drift_for_two_windows_opens_one_incident_that_resolves_when_drift_clears(
    backend: Backend,
) -> None:
    monitor = backend.monitoring.create(ANA, Monitor(model="churn", checks=(Check.DRIFT,)))
    rules = backend.alerts.list_rules("churn")
    assert [(r.name, r.check, r.windows, r.severity, r.auto_resolve) for r in rules] == [
        ("default-drift", Check.DRIFT, 2, Severity.P3, True)
    ]
    assert rules[0].monitor_id == monitor.id
    events: list[tuple[str, int]] = []
    backend.incidents.add_listener(lambda kind, incident: events.append((kind, incident.id)))

    for i in range(3):
        log_hour(backend, T0 + i * HOUR, shift=3.0)
    run_hour(backend, T0)
    assert backend.incidents.list(model="churn") == []  # one drifted window is not enough
    run_hour(backend, T0 + HOUR)
    run_hour(backend, T0 + 2 * HOUR)

    (incident,) = backend.incidents.list(model="churn")
    assert incident.status == IncidentStatus.TRIGGERED
    assert incident.assignee == "ana"
    assert incident.severity == Severity.P3
    assert incident.key == f"{rules[0].id}:churn:1"
    full = backend.incidents.get(incident.id)
    assert [e.kind for e in full.timeline] == ["alert", "status", "alert"]

    # A full window (as many rows as the reference): sampling noise stays far below the threshold.
    log_hour(backend, T0 + 3 * HOUR, rows=5000)
    run_hour(backend, T0 + 3 * HOUR)
    resolved = backend.incidents.get(incident.id)
    assert resolved.status == IncidentStatus.RESOLVED
    assert resolved.timeline[-1].details["automatic"] is True
    assert [kind for kind, _ in events] == [
        "incident.triggered",
        "incident.updated",
        "incident.resolved",
    ]

    # Drift again: a new incident, not the resolved one reopened.
    for i in (4, 5):
        log_hour(backend, T0 + i * HOUR, shift=3.0)
        run_hour(backend, T0 + i * HOUR)
    newest, oldest = backend.incidents.list(model="churn")
    assert oldest.id == incident.id and oldest.status == IncidentStatus.RESOLVED
    assert newest.id != incident.id and newest.status == IncidentStatus.TRIGGERED


def test_lifecycle_refuses_illegal_moves_and_every_change_is_audited(backend: Backend) -> None:
    incident, created = backend.incidents.trigger(
        ADMIN, key="k1", model="churn", version=1, title="AUC fell", severity=Severity.P2
    )
    assert created
    again, created_again = backend.incidents.trigger(
        ADMIN, key="k1", model="churn", version=1, title="AUC fell", severity=Severity.P2
    )
    assert again.id == incident.id and not created_again

    with pytest.raises(PermissionDenied):
        backend.incidents.acknowledge(OUTSIDER, incident.id)
    acked = backend.incidents.acknowledge(ANA, incident.id, "looking")
    assert acked.status == IncidentStatus.ACKNOWLEDGED and acked.acknowledged_at is not None
    with pytest.raises(IllegalTransition, match="can become: resolved"):
        backend.incidents.acknowledge(ANA, incident.id)
    backend.incidents.comment(ANA, incident.id, "rolled back by hand")
    with pytest.raises(InvalidInput, match="'text'"):
        backend.incidents.comment(ANA, incident.id, "   ")
    done = backend.incidents.resolve(ANA, incident.id, "fixed")
    with pytest.raises(IllegalTransition, match="new alert opens a new incident"):
        backend.incidents.resolve(ANA, incident.id)
    with_pm = backend.incidents.set_postmortem(ANA, incident.id, "# What happened\n\nA bad feed.")
    assert with_pm.postmortem.startswith("# What happened")
    assert [(e.kind, e.actor) for e in with_pm.timeline] == [
        ("alert", "root"),
        ("status", "root"),
        ("alert", "root"),
        ("status", "ana"),
        ("comment", "ana"),
        ("status", "ana"),
        ("postmortem", "ana"),
    ]
    assert done.resolved_at is not None

    actions = [
        e.action
        for e in backend.audit.events(ADMIN, subject_type="incident")
        if e.subject_id == str(incident.id)
    ]
    assert sorted(actions) == sorted(
        [
            "incident.trigger",
            "incident.alert",
            "incident.acknowledge",
            "incident.comment",
            "incident.resolve",
            "incident.postmortem",
        ]
    )

    stats = backend.incidents.stats(team="risk")
    assert stats.incidents == 1 and stats.resolved == 1 and stats.acknowledged == 1
    assert stats.mtta_seconds is not None and stats.mttr_seconds is not None
    assert stats.mtta_seconds <= stats.mttr_seconds
    assert backend.incidents.stats(team="growth").incidents == 0


def test_rules_are_validated_applied_by_name_and_audited(backend: Backend) -> None:
    with pytest.raises(InvalidInput) as bad:
        backend.alerts.apply(
            ANA, "churn", [{"name": "psi", "check": "drift", "comparison": ">", "treshold": 1}]
        )
    assert bad.value.details["field"] == "rules[0].treshold"
    with pytest.raises(InvalidInput) as missing:
        backend.alerts.apply(ANA, "churn", [{"name": "psi", "check": "drift", "comparison": ">"}])
    assert missing.value.details["field"] == "rules[0].threshold"
    assert backend.alerts.list_rules("churn") == []

    spec = {
        "name": "income-psi",
        "check": "drift",
        "column": "income",
        "metric": "psi",
        "comparison": ">",
        "threshold": 0.2,
        "severity": "P2",
        "labels": {"owner": "risk"},
    }
    (created,) = backend.alerts.apply(ANA, "churn", [spec])
    (updated,) = backend.alerts.apply(ANA, "churn", [{**spec, "threshold": 0.3}])
    assert updated.id == created.id and updated.threshold == 0.3
    with pytest.raises(PermissionDenied):
        backend.alerts.create_rule(
            OUTSIDER, AlertRule(model="churn", name="x", check=Check.QUALITY)
        )
    other = backend.alerts.create_rule(
        ANA,
        AlertRule(
            model="churn", name="rows", check=Check.QUALITY, comparison=Comparison.LT, threshold=1
        ),
    )
    backend.alerts.delete_rule(ANA, other.id or 0)
    assert [r.name for r in backend.alerts.list_rules("churn")] == ["income-psi"]
    actions = [e.action for e in backend.audit.events(ADMIN, subject_type="alert_rule")]
    assert sorted(actions) == sorted(
        ["alert_rule.create", "alert_rule.update", "alert_rule.create", "alert_rule.delete"]
    )


def test_two_monitors_over_one_drifting_column_open_one_incident(backend: Backend) -> None:
    hourly = backend.monitoring.create(
        ANA, Monitor(model="churn", name="hourly", checks=(Check.DRIFT,))
    )
    audit = backend.monitoring.create(
        ANA, Monitor(model="churn", name="audit", checks=(Check.DRIFT, Check.OPERATIONS))
    )
    # The second monitor adds only the rule for a signal no rule reads yet.
    rules = backend.alerts.list_rules("churn")
    assert [(r.name, r.monitor_id) for r in rules] == [
        ("hourly-drift", hourly.id),
        ("audit-operations", audit.id),
    ]
    for i in range(3):
        log_hour(backend, T0 + i * HOUR, shift=3.0)
        run_hour(backend, T0 + i * HOUR)
    assert {p.monitor_id for p in backend.monitoring.series("churn", Check.DRIFT)} == {
        hourly.id,
        audit.id,
    }
    (incident,) = backend.incidents.list(model="churn")
    assert incident.check == "drift" and incident.status == IncidentStatus.TRIGGERED


def test_deleting_a_monitor_removes_its_default_rules_but_not_user_rules(
    backend: Backend,
) -> None:
    first = backend.monitoring.create(
        ANA, Monitor(model="churn", name="first", checks=(Check.DRIFT, Check.OPERATIONS))
    )
    second = backend.monitoring.create(
        ANA, Monitor(model="churn", name="second", checks=(Check.DRIFT,))
    )
    mine = backend.alerts.create_rule(
        ANA, AlertRule(model="churn", name="income-psi", check=Check.DRIFT, column="income")
    )
    # Editing a default rule makes it the editor's own.
    backend.alerts.apply(
        ANA, "churn", [{"name": "first-operations", "check": "operations", "severity": "P1"}]
    )

    assert first.id is not None and second.id is not None
    backend.monitoring.delete(ANA, first.id)
    # The drift rule is still needed by the second monitor, which inherits it.
    by_name = {r.name: r for r in backend.alerts.list_rules("churn")}
    assert sorted(by_name) == ["first-drift", "first-operations", "income-psi"]
    assert by_name["first-drift"].monitor_id == second.id
    assert by_name["first-operations"].monitor_id is None
    assert by_name["income-psi"].id == mine.id

    backend.monitoring.delete(ANA, second.id)
    assert sorted(r.name for r in backend.alerts.list_rules("churn")) == [
        "first-operations",
        "income-psi",
    ]
    events = backend.audit.events(ADMIN, action="alert_rule.delete")
    deleted = [e for e in events if e.details.get("monitor_deleted")]
    assert [e.details["name"] for e in deleted] == ["first-drift"]
