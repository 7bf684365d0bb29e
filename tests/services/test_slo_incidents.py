"""SLOs from real prediction logs: a burst of errors burns the availability budget fast enough
to page (14.4x over both 1h and 5m), opening one P1 incident; days later, with clean traffic,
no rule fires and the incident resolves itself."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from keel.domain.incidents import IncidentStatus, Severity
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnType, Signature
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=10)


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    opened = empty_backend
    opened.registry.create_team(ADMIN, "risk")
    opened.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    draft = VersionDraft(signature=Signature((Column("x", ColumnType.FLOAT),)))
    opened.registry.register_version(ADMIN, "churn", io.BytesIO(b"model"), "m.bin", draft)
    return opened


def log_requests(backend: Backend, end: datetime, rows: int, errors: int) -> None:
    """``rows`` requests spread over the 4 minutes before ``end``, the first ``errors`` failed."""
    stamps = [end - timedelta(seconds=1 + i * 240 // rows) for i in range(rows)]
    failed = [("timeout" if i < errors else None) for i in range(rows)]
    table = pa.table(
        {
            "prediction": pa.array(np.ones(rows)),
            "x": pa.array(np.zeros(rows)),
            "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "error": pa.array(failed, pa.string()),
        }
    )
    backend.telemetry.log_predictions(ADMIN, "churn", 1, table)


def test_an_error_burst_pages_once_and_clean_traffic_resolves_it(backend: Backend) -> None:
    slo = backend.slos.create(
        ADMIN, "churn", name="availability", kind="availability", objective=0.999
    )
    # 30 errors in 1,000 requests: a 3% error rate burns a 0.1% budget at 30x.
    log_requests(backend, T0, rows=1000, errors=30)
    status = backend.slos.evaluate(ADMIN, slo.id, now=T0)
    assert status.firing is not None and status.firing.rule.severity == "P1"
    opened = backend.incidents.open_incident(f"slo:{slo.id}:churn")
    assert opened is not None and opened.severity == Severity.P1

    # Evaluating again while it still burns updates the same incident instead of opening another.
    backend.slos.evaluate(ADMIN, slo.id, now=T0 + timedelta(minutes=1))
    assert [i.id for i in backend.incidents.list(model="churn")] == [opened.id]

    # Four days later only clean traffic is in every window: nothing fires, the page resolves.
    later = T0 + timedelta(days=4)
    log_requests(backend, later, rows=500, errors=0)
    quiet = backend.slos.evaluate(ADMIN, slo.id, now=later)
    assert quiet.firing is None
    resolved = backend.incidents.get(opened.id)
    assert resolved.status == IncidentStatus.RESOLVED
    assert backend.incidents.open_incident(f"slo:{slo.id}:churn") is None


def incident_webhooks(backend: Backend) -> list[str]:
    return [d.event_type for d in backend.notifications.deliveries(limit=1000)]


def test_an_unchanged_ticket_notifies_once_over_many_checks(backend: Backend) -> None:
    backend.notifications.subscribe(
        ADMIN, url="http://127.0.0.1:9/hook", events=["incident.*"], secret="s" * 16
    )
    slo = backend.slos.create(
        ADMIN, "churn", name="availability", kind="availability", objective=0.999
    )
    # 3 errors in 1,000 requests burns at 3x: the 3d/6h ticket fires, neither page does.
    log_requests(backend, T0, rows=1000, errors=3)
    for minute in range(12):
        status = backend.slos.evaluate(ADMIN, slo.id, now=T0 + timedelta(minutes=minute))
        assert status.firing_rules == ("ticket 1x over 3d/6h",)
    ticket = backend.incidents.open_incident(f"slo:{slo.id}:churn")
    assert ticket is not None and ticket.severity == Severity.P4
    assert [e.kind for e in ticket.timeline] == ["alert", "status"]
    assert incident_webhooks(backend) == ["incident.triggered"]

    # A change of which rules fire (a page now fires as well) is news: one more entry, one webhook.
    page_at = T0 + timedelta(minutes=20)
    log_requests(backend, page_at, rows=1000, errors=100)
    for minute in range(5):
        backend.slos.evaluate(ADMIN, slo.id, now=page_at + timedelta(minutes=minute))
    escalated = backend.incidents.get(ticket.id)
    alerts = [e for e in escalated.timeline if e.kind == "alert"]
    assert len(alerts) == 2
    assert alerts[-1].details["severity"] == "P1"
    assert alerts[-1].details["firing_rules"][0] == "page 14.4x over 1h/5m"
    assert incident_webhooks(backend) == ["incident.updated", "incident.triggered"]

    # Resolution is news too, once.
    later = T0 + timedelta(days=4)
    log_requests(backend, later, rows=500, errors=0)
    for minute in range(3):
        backend.slos.evaluate(ADMIN, slo.id, now=later + timedelta(minutes=minute))
    assert backend.incidents.get(ticket.id).status == IncidentStatus.RESOLVED
    assert incident_webhooks(backend) == [
        "incident.resolved",
        "incident.updated",
        "incident.triggered",
    ]
