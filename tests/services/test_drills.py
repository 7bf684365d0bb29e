"""Drills through the services, on SQLite and PostgreSQL: each scenario reaches the real check
that should see it, and a drill tells plainly what is missing when nothing would notice."""

from __future__ import annotations

import io

import pytest

from keel.domain.drills import DrillStatus
from keel.domain.monitoring import Check, Monitor, Thresholds
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import Conflict, PermissionDenied
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
OUTSIDER = Principal("otto", grants=(Grant(Role.CONTRIBUTOR, "growth"),))
SIGNATURE = Signature(
    (Column("x", ColumnType.FLOAT), Column("churned", ColumnType.STRING, ColumnRole.TARGET))
)


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    b = empty_backend
    b.registry.create_team(ADMIN, "risk")
    b.registry.create_team(ADMIN, "growth")
    b.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    draft = VersionDraft(signature=SIGNATURE)
    b.registry.register_version(ADMIN, "churn", io.BytesIO(b"m"), "m.bin", draft)
    b.registry.set_alias(ADMIN, "churn", "staging", 1)
    return b


def test_a_drill_nothing_watches_says_so_and_has_nothing_to_acknowledge(backend: Backend) -> None:
    drill = backend.drills.run(ADMIN, "churn", "drift", alias="staging")
    assert drill.status == DrillStatus.NOT_DETECTED and drill.incident_id is None
    assert drill.failures == (
        "no monitor of churn runs the drift check on version 1: this trouble would go unnoticed",
    )
    with pytest.raises(Conflict, match="opened no incident"):
        backend.drills.acknowledge(ADMIN, drill.id)
    with pytest.raises(PermissionDenied):
        backend.drills.run(OUTSIDER, "churn", "drift", alias="staging")
    assert backend.incidents.list(drill=None) == []


def test_each_scenario_reaches_the_check_that_sees_it(backend: Backend) -> None:
    limits = Thresholds.from_dict({"performance": {"accuracy": 0.8}})
    backend.monitoring.create(
        ADMIN,
        Monitor(model="churn", checks=(Check.PERFORMANCE, Check.OPERATIONS), thresholds=limits),
    )
    # Performance: string labels, mostly wrong predictions, below the accuracy minimum.
    performance = backend.drills.run(ADMIN, "churn", "performance", alias="staging")
    assert performance.rules_fired == ("default-performance",), performance.failures
    assert any(p["metric"] == "accuracy" for p in performance.points)
    # A broken deploy: errors and wrong predictions at once; the most severe rule opens one
    # incident, and both fired.
    bad = backend.drills.run(ADMIN, "churn", "bad-deploy", alias="staging")
    assert set(bad.rules_fired) == {"default-performance", "default-operations"}
    assert bad.incident_id is not None and bad.incident_id != performance.incident_id
    # Latency: the default monitor has no latency limit, so nothing fires: the drill's finding.
    latency = backend.drills.run(ADMIN, "churn", "latency", alias="staging")
    assert latency.status == DrillStatus.NOT_DETECTED
    assert "no alert rule fired" in latency.failures[0]
    assert "no playbook matched the drill incident" in " ".join(bad.failures)
    # Drill incidents are apart from real ones, and resolving one finishes its drill.
    assert backend.incidents.list() == []
    assert backend.incidents.stats(model="churn").incidents == 0
    done = backend.drills.resolve(ADMIN, bad.id, "drill over")
    assert done.status == DrillStatus.FINISHED and done.time_to_resolve_s is not None
    assert done.acknowledged_at is None  # resolved without acknowledgement: the report says so
