"""Waste findings: idle production versions, models with cost but no predictions, unreviewed
candidates and telemetry kept with no retention, each with a monthly cost and its fix."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from sqlalchemy import update

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnType, Signature
from keel.services.backend import Backend
from keel.services.costs.examples import focus_sample
from keel.services.costs.waste import find_waste
from keel.store.sql.engine import write_transaction
from keel.store.sql.tables import model_versions, models

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
NOW = datetime(2026, 10, 31, 12, tzinfo=UTC)


def _age(backend: Backend, model: str, status: str, at: datetime) -> None:
    with write_transaction(backend.engine) as conn:
        model_id = conn.execute(models.select().where(models.c.name == model)).one().id
        conn.execute(
            update(model_versions)
            .where(model_versions.c.model_id == model_id)
            .values(status=status, updated_at=at, created_at=at)
        )


def test_each_kind_of_waste_has_a_monthly_cost_and_a_fix(
    empty_backend: Backend, tmp_path: Path
) -> None:
    b = empty_backend
    b.registry.create_team(ADMIN, "risk")
    b.registry.create_team(ADMIN, "growth")
    draft = VersionDraft(signature=Signature((Column("x", ColumnType.FLOAT),)))
    for name, team in (("churn", "risk"), ("fraud", "risk"), ("ranker", "growth")):
        b.registry.create_model(ADMIN, Model(name=name, team=team, owner="ana"))
        b.registry.register_version(ADMIN, name, io.BytesIO(name.encode() * 1000), "m", draft)
    bill = tmp_path / "bill.csv"
    bill.write_text(focus_sample(), encoding="utf-8")
    b.costs.import_focus(ADMIN, bill, file_format="csv", filename="bill.csv")
    b.costs.configure(ADMIN, {"gb_month": "1000"})  # dear storage, so its costs show
    _age(b, "churn", "production", NOW - timedelta(days=60))
    _age(b, "ranker", "candidate", NOW - timedelta(days=90))
    old = datetime(2026, 6, 1, tzinfo=UTC)
    stamps = pa.array([old + timedelta(seconds=i) for i in range(50)], pa.timestamp("us", tz="UTC"))
    table = pa.table({"prediction": pa.array([1.0] * 50), "x": pa.array([0.5] * 50), "ts": stamps})
    b.telemetry.log_predictions(ADMIN, "ranker", 1, table)

    found = find_waste(
        b.costs,
        b.engine,
        b.registry.artifacts,
        {m: b.telemetry.retention(m) for m in ("churn", "fraud", "ranker")},
        now=NOW,
    )
    by_kind = {(f.kind, f.subject): f for f in found}
    assert set(by_kind) == {
        ("idle_production_version", "churn v1"),
        ("cost_without_predictions", "churn"),
        ("cost_without_predictions", "fraud"),
        ("cost_without_predictions", "ranker"),  # its stored artifact and old telemetry
        ("unreviewed_candidate", "ranker v1"),
        ("telemetry_beyond_policy", "ranker"),
    }
    idle = by_kind[("idle_production_version", "churn v1")]
    # October's churn bill (no split rules: 120.50 + 80.255 - 10) plus 31 days of its
    # 5,000-byte artifact at 1,000 per GB-month.
    assert idle.monthly_cost == Decimal("190.76")
    assert "never" in idle.detail and "'retired'" in idle.fix
    # Fraud's artifact was registered after October, so only its tagged 200 counts.
    assert by_kind[("cost_without_predictions", "fraud")].monthly_cost == Decimal("200.00")
    assert by_kind[("unreviewed_candidate", "ranker v1")].monthly_cost == Decimal("0.01")
    telemetry = by_kind[("telemetry_beyond_policy", "ranker")]
    assert telemetry.fix == "keel telemetry retention ranker 90"
    assert "older than 90 days and no retention set" in telemetry.detail
    assert found[0].monthly_cost == max(f.monthly_cost for f in found)  # costliest first
