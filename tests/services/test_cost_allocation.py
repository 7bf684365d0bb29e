"""Story 1 of issue 14, allocation to the cent: the sample FOCUS bill (tagged, team-only,
untagged and shared rows; Usage, Purchase, Credit, Tax) allocates to models and teams, and the
allocations plus unallocated equal the bill's EffectiveCost to the cent. Importing it twice
changes nothing; a malformed file is refused naming row and column, and writes nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from keel.domain.costs import AllocationSource
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnType, Signature
from keel.errors import InvalidInput, PermissionDenied
from keel.services.backend import Backend
from keel.services.costs.examples import focus_sample

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
APPROVER = Principal("april", grants=(Grant(Role.APPROVER, "risk"),))
OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)


def log_predictions(backend: Backend, model: str, rows: int, at: datetime) -> None:
    stamps = [at + timedelta(seconds=i) for i in range(rows)]
    table = pa.table(
        {
            "prediction": pa.array([1.0] * rows),
            "x": pa.array([0.5] * rows),
            "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        }
    )
    backend.telemetry.log_predictions(ADMIN, model, 1, table)


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    b = empty_backend
    b.registry.create_team(ADMIN, "risk")
    b.registry.create_team(ADMIN, "growth")
    draft = VersionDraft(signature=Signature((Column("x", ColumnType.FLOAT),)))
    for name, team in (("churn", "risk"), ("fraud", "risk"), ("ranker", "growth")):
        b.registry.create_model(ADMIN, Model(name=name, team=team, owner="ana"))
        b.registry.register_version(ADMIN, name, io.BytesIO(name.encode()), "m.bin", draft)
    # The GPU pool is split by predictions: churn 300, fraud 100, ranker none.
    log_predictions(b, "churn", 300, OCTOBER + timedelta(hours=3))
    log_predictions(b, "fraud", 100, OCTOBER + timedelta(days=2))
    b.costs.set_split_rule(ADMIN, "GPU cluster", "predictions")
    b.costs.set_split_rule(ADMIN, "Tax", "even")
    b.costs.set_split_rule(ADMIN, "shared-network", "even")
    return b


def write_sample(tmp_path: Path, text: str | None = None, name: str = "bill.csv") -> Path:
    path = tmp_path / name
    path.write_text(text if text is not None else focus_sample(), encoding="utf-8")
    return path


def test_the_sample_bill_allocates_to_the_cent(backend: Backend, tmp_path: Path) -> None:
    first = backend.costs.import_focus(
        ADMIN, write_sample(tmp_path), file_format="csv", filename="bill.csv"
    )
    assert (first.rows, first.replayed) == (10, False)
    assert first.effective_micros == 621_085_000

    costs = backend.costs
    # By hand: churn 120.50 + 80.255 - 10 (credit) + 75 (3/4 of GPU) + 11.11 (tax / 3) + 4
    assert costs.month_cost("2026-10", model="churn") == Decimal("280.865")
    assert costs.month_cost("2026-10", model="fraud") == Decimal("240.11")  # 200 + 25 + 11.11 + 4
    assert costs.month_cost("2026-10", model="ranker") == Decimal("15.11")
    assert costs.month_cost("2026-10", team="growth") == Decimal("45.11")  # ranker + 30 tagged
    assert costs.month_cost("2026-10", team="risk") == Decimal("520.975")
    assert costs.month_cost("2026-10") == Decimal("621.085")

    allocations = costs.month_allocations("2026-10")
    unallocated = {
        a.reason: a.amount for a in allocations if a.source == AllocationSource.UNALLOCATED
    }
    assert unallocated == {
        "no split rule for this pool": Decimal("50"),  # the support plan (Purchase)
        "unknown model 'ghost'": Decimal("5"),
    }
    # A 33.33 tax split three ways still sums exactly: 11.11 each.
    tax = sorted(a.amount for a in allocations if a.pool == "Tax")
    assert tax == [Decimal("11.11")] * 3
    assert sum(a.micros for a in allocations) == first.effective_micros

    again = costs.import_focus(ADMIN, write_sample(tmp_path), file_format="csv", filename="b.csv")
    assert (again.id, again.replayed) == (first.id, True)
    assert costs.month_cost("2026-10") == Decimal("621.085")
    assert len(costs.imports()) == 1


def test_parquet_imports_like_csv(backend: Backend, tmp_path: Path) -> None:
    table = pacsv.read_csv(
        io.BytesIO(focus_sample().encode()),
        convert_options=pacsv.ConvertOptions(column_types={"EffectiveCost": pa.string()}),
    )
    path = tmp_path / "bill.parquet"
    pq.write_table(table, path)
    imported = backend.costs.import_focus(
        ADMIN, path, file_format="parquet", filename="bill.parquet"
    )
    assert imported.effective_micros == 621_085_000
    assert backend.costs.month_cost("2026-10", model="churn") == Decimal("280.865")


def _replace_cell(column: str, row: int, value: str) -> str:
    lines = focus_sample().splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


def _rename_header(old: str, new: str) -> str:
    lines = focus_sample().splitlines()
    lines[0] = lines[0].replace(old, new)
    return "\n".join(lines) + "\n"


def _drop_column(column: str) -> str:
    lines = focus_sample().splitlines()
    index = lines[0].split(",").index(column)
    out = []
    for line in lines:
        cells = line.split(",")
        # EffectiveCost sits before the quoted Tags, so plain splitting finds it.
        out.append(",".join(cells[:index] + cells[index + 1 :]))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(
    ("text", "row", "column"),
    [
        (_drop_column("EffectiveCost"), 0, "EffectiveCost"),
        (_rename_header("x_CostCenter", "CostCenter"), 0, "CostCenter"),
        (_replace_cell("ChargeCategory", 4, "Discount"), 4, "ChargeCategory"),
        (
            _replace_cell("ChargePeriodStart", 6, "2026-10-01T00:00:00+02:00"),
            6,
            "ChargePeriodStart",
        ),
        (_replace_cell("BillingPeriodEnd", 2, "2026-11-01T00:00:00"), 2, "BillingPeriodEnd"),
        (_replace_cell("EffectiveCost", 9, "twelve"), 9, "EffectiveCost"),
        (_replace_cell("BillingCurrency", 3, "EUR"), 3, "BillingCurrency"),
    ],
    ids=[
        "missing-column",
        "unprefixed-custom",
        "charge-category",
        "non-utc",
        "no-zone",
        "bad-number",
        "currency",
    ],
)
def test_a_malformed_bill_is_refused_naming_row_and_column_and_writes_nothing(
    backend: Backend, tmp_path: Path, text: str, row: int, column: str
) -> None:
    head = backend.audit.log.head()
    with pytest.raises(InvalidInput) as refused:
        backend.costs.import_focus(
            ADMIN, write_sample(tmp_path, text), file_format="csv", filename="bad.csv"
        )
    assert refused.value.details["row"] == row
    assert refused.value.details["column"] == column
    assert column in str(refused.value)
    assert backend.costs.imports() == []
    assert backend.costs.month_cost("2026-10") == Decimal(0)
    assert backend.audit.log.head() == head


def test_only_admins_import_bills(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(PermissionDenied):
        backend.costs.import_focus(
            APPROVER, write_sample(tmp_path), file_format="csv", filename="bill.csv"
        )
    assert backend.costs.imports() == []
