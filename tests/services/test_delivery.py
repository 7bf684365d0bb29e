"""DORA metrics over real records (SQLite and PostgreSQL): promotions through governance, an
incident on the new version, a rollback from it; the metrics read them back as events."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from keel.domain.incidents import Severity
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.errors import InvalidInput, NotFound
from keel.services.backend import Backend

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
# No gates: this test is about what the records say, not how a version earns production.
OPEN_POLICY = "tier: unassessed\nchecks: {}\n"


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    b = empty_backend
    b.registry.create_team(ADMIN, "risk")
    b.registry.create_team(ADMIN, "pricing")
    b.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    b.registry.create_model(ADMIN, Model(name="price", team="pricing", owner="bo"))
    b.governance.apply_policy(ADMIN, OPEN_POLICY)
    for name in ("churn", "churn", "price"):
        b.registry.register_version(ADMIN, name, io.BytesIO(b"m"), "m.bin", VersionDraft())
    b.governance.promote(ADMIN, "churn", 1)
    b.governance.promote(ADMIN, "churn", 2)
    b.governance.promote(ADMIN, "price", 1)
    incident, _ = b.incidents.trigger(
        ADMIN, key="k", model="churn", version=2, title="accuracy fell", severity=Severity.P1
    )
    b.governance.rollback(ADMIN, "churn", reason="accuracy fell", incident_id=incident.id)
    b.incidents.resolve(ADMIN, incident.id, "rolled back")
    return b


def test_dora_reads_promotions_rollbacks_and_incidents(backend: Backend) -> None:
    m = backend.delivery.metrics(model="churn")
    assert [(d.model, d.version) for d in m.deployments] == [("churn", 1), ("churn", 2)]
    assert [(f.deployment.version, f.cause) for f in m.failures] == [(2, "P1 incident")]
    failure = m.failures[0]
    assert failure.rollback_id is not None and failure.incident_id is not None
    assert failure.recovered_at is not None and failure.recovered_at >= failure.started_at
    assert m.change_failure_rate == 0.5 and m.change_failure == "46-100%"
    assert m.rework == () and m.frequency == "Yearly"  # two deployment days in 90 days
    assert m.lead_time == "One day" and m.recovery == "One day"


def test_dora_scopes(backend: Backend) -> None:
    assert len(backend.delivery.metrics(team="risk").deployments) == 2
    assert [d.model for d in backend.delivery.metrics(team="pricing").deployments] == ["price"]
    portfolio = backend.delivery.metrics()
    assert (portfolio.scope, len(portfolio.deployments)) == ("portfolio", 3)
    later = datetime.now(UTC) + timedelta(days=1)
    assert backend.delivery.metrics(start=later, end=later + timedelta(days=1)).deployments == ()


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"model": "churn", "team": "risk"}, InvalidInput, "team"),
        ({"failure_days": 0}, InvalidInput, "failure_days"),
        ({"start": datetime(2026, 1, 1)}, InvalidInput, "start"),
        ({"start": datetime(2026, 2, 1, tzinfo=UTC), "end": datetime(2026, 1, 1, tzinfo=UTC)},
         InvalidInput, "start"),
        ({"model": "nope"}, NotFound, None),
        ({"team": "nope"}, NotFound, None),
    ],
)  # fmt: skip
def test_bad_dora_questions_are_refused(
    backend: Backend, kwargs: dict[str, object], error: type[Exception], field: str | None
) -> None:
    with pytest.raises(error) as refused:
        backend.delivery.metrics(**kwargs)  # type: ignore[arg-type]
    if field is not None:
        assert getattr(refused.value, "details", {})["field"] == field
