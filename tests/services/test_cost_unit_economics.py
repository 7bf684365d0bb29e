"""Story 2 of issue 14: cost per 1,000 predictions on a scripted week of telemetry and bills,
checked by hand; Keel's own metering at unit prices, and its FOCUS export read back in."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnType, Signature
from keel.services.backend import Backend
from keel.services.costs.export import focus_csv
from keel.store.sql.engine import write_transaction
from keel.store.sql.tables import models
from keel.store.sql.tables_playbooks import retrain_runs

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
MONDAY = date(2026, 10, 5)
HEADER = (
    "BilledCost,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargeCategory,"
    "ChargePeriodStart,ChargePeriodEnd,EffectiveCost,ServiceName,Tags\n"
)


def _stamp(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def bill_row(day: date, amount: str, service: str, tags: str = "") -> str:
    quoted = '"' + tags.replace('"', '""') + '"' if tags else ""
    return (
        f"{amount},USD,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,Usage,{_stamp(day)},"
        f"{_stamp(day + timedelta(days=1))},{amount},{service},{quoted}\n"
    )


def log(backend: Backend, model: str, version: int, day: date, rows: int) -> None:
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1)
    stamps = [start + timedelta(seconds=10 * i) for i in range(rows)]
    table = pa.table(
        {
            "prediction": pa.array([1.0] * rows),
            "x": pa.array([0.5] * rows),
            "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        }
    )
    backend.telemetry.log_predictions(ADMIN, model, version, table)


@pytest.fixture
def week(empty_backend: Backend, tmp_path: Path) -> Backend:
    """Mon 5 to Sun 11 Oct 2026. Day d: churn v1 1000+100d predictions, churn v2 500, fraud 2000;
    bills: churn tagged 10+d, fraud tagged 20, and a GPU pool of 6 split by predictions."""
    b = empty_backend
    b.registry.create_team(ADMIN, "risk")
    draft = VersionDraft(signature=Signature((Column("x", ColumnType.FLOAT),)))
    for name, versions in (("churn", 2), ("fraud", 1)):
        b.registry.create_model(ADMIN, Model(name=name, team="risk", owner="ana"))
        for v in range(versions):
            artifact = io.BytesIO(f"{name}{v}".encode())
            b.registry.register_version(ADMIN, name, artifact, "m.bin", draft)
    rows = [HEADER]
    for d in range(7):
        day = MONDAY + timedelta(days=d)
        log(b, "churn", 1, day, 1000 + 100 * d)
        log(b, "churn", 2, day, 500)
        log(b, "fraud", 1, day, 2000)
        rows.append(bill_row(day, f"{10 + d}.00", "Compute", '{"keel-model": "churn"}'))
        rows.append(bill_row(day, "20.00", "Compute", '{"keel-model": "fraud"}'))
        rows.append(bill_row(day, "6.00", "GPU cluster"))
    path = tmp_path / "week.csv"
    path.write_text("".join(rows), encoding="utf-8")
    b.costs.set_split_rule(ADMIN, "GPU cluster", "predictions")
    b.costs.configure(ADMIN, {"per_thousand_predictions": "0.05", "vcpu_hour": "0.04"})
    b.costs.import_focus(ADMIN, path, file_format="csv", filename="week.csv")
    return b


def test_cost_per_thousand_predictions_by_hand(week: Backend) -> None:
    costs = week.costs
    wednesday = MONDAY + timedelta(days=2)
    # Wednesday: churn v1 1,200 + v2 500 = 1,700 predictions; fraud 2,000; 3,700 in all.
    # GPU 6.00 by predictions: churn 6 x 1700/3700 = 2.7567567..., fraud 3.2432432...; in
    # micro-units the one left over goes to churn's larger remainder: 2.756757 and 3.243243.
    churn_bill = Decimal("12.00") + Decimal("2.756757")
    metering = Decimal("0.05") / 1000  # per prediction
    # The model: (bill + 1,700 predictions x 0.00005) per 1,700 predictions, times 1,000.
    whole = (churn_bill + 1700 * metering) / 1700 * 1000
    assert costs.cost_per_thousand_predictions("churn", None, wednesday) == whole.quantize(
        Decimal("0.000001")
    )
    assert whole.quantize(Decimal("0.000001")) == Decimal("8.730445")
    # Version 2: its 500/1,700 share of the bill plus its own 500 predictions' metering.
    v2 = (churn_bill * 500 / 1700 + 500 * metering) / 500 * 1000
    assert costs.cost_per_thousand_predictions("churn", 2, wednesday) == v2.quantize(
        Decimal("0.000001")
    )
    # Fraud: 20 + 3.243243 + 2,000 x 0.00005 = 23.343243 per 2,000 -> 11.6716215 per 1,000.
    assert costs.cost_per_thousand_predictions("fraud", 1, wednesday) == Decimal("11.671622")
    # No predictions that day: no unit cost, rather than a division by zero.
    assert costs.cost_per_thousand_predictions("churn", 1, MONDAY - timedelta(days=1)) is None

    # The week's portfolio total: bills (7 x 36 + 21) plus metering of 3,700 + ... predictions.
    predictions = sum(1000 + 100 * d + 500 + 2000 for d in range(7))
    expected = Decimal(7 * 36 + 21) + predictions * metering
    assert costs.month_cost("2026-10") == expected


def test_training_runs_are_priced_by_the_vcpu_hour(week: Backend) -> None:
    started = datetime(2026, 10, 7, 9, tzinfo=UTC)
    with write_transaction(week.engine) as conn:
        model_id = conn.execute(models.select().where(models.c.name == "churn")).one().id
        conn.execute(
            retrain_runs.insert().values(
                model_id=model_id,
                trigger="manual",
                incident_id=None,
                window_start=started - timedelta(days=7),
                window_end=started,
                data_dir="/nowhere",
                status="succeeded",
                started_by="root",
                started_at=started,
                finished_at=started + timedelta(minutes=90),
                exit_code=0,
                output_tail="",
                registered_version=None,
            )
        )
    [run] = week.costs.training_run_costs("churn", date(2026, 10, 1), date(2026, 11, 1))
    assert run.quantity == Decimal("1.5") and run.micros == 60_000  # 1.5 h x 0.04


def test_keels_metering_exports_as_focus_and_reimports_to_the_same_models(
    week: Backend, tmp_path: Path
) -> None:
    costs = week.costs
    rows = costs.metered(MONDAY, MONDAY + timedelta(days=7))
    metered_churn = sum(r.micros for r in rows if r.model == "churn")
    body = focus_csv(rows, "2026-10", "USD", "keel-model", "keel-team")
    header = body.decode().splitlines()[0]
    assert '"x_KeelModel"' in header and '"x_KeelVersion"' in header
    before = costs.month_cost("2026-10", model="churn")
    # Read back as a bill (prices off, so it is not counted twice), it lands on churn again.
    costs.configure(ADMIN, {"per_thousand_predictions": "0", "vcpu_hour": "0"})
    path = tmp_path / "keel.csv"
    path.write_bytes(body)
    costs.import_focus(ADMIN, path, file_format="csv", filename="keel.csv")
    assert costs.month_cost("2026-10", model="churn") == before
    assert metered_churn == 630_000  # (9,100 + 3,500) churn predictions x 0.00005
