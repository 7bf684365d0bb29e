"""The executive report of a scripted month (the current one: records are stamped now), with
costs and budgets from a small in-test `CostFigures`; rendered as Markdown and offline HTML."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import pyarrow as pa
import pytest

from keel.domain.incidents import Severity
from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import InvalidInput
from keel.services.backend import Backend
from keel.services.report import ExecutiveReports
from keel.services.report_render import render_html, render_markdown
from keel.services.value import Value

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
SIGNATURE = Signature(
    (Column("income", ColumnType.FLOAT), Column("churned", ColumnType.INTEGER, ColumnRole.TARGET))
)


@dataclass(frozen=True)
class BudgetStatus:
    scope: str
    limit: Decimal
    spent: Decimal
    status: str


class Costs:
    def month_cost(
        self, month: str, *, model: str | None = None, team: str | None = None
    ) -> Decimal:
        return Decimal("100.00") if model == "churn" else Decimal("250.00")

    def budget_status(self, month: str) -> Sequence[object]:
        return [BudgetStatus("team risk", Decimal("200"), Decimal("250.00"), "over")]


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    b = empty_backend
    b.registry.create_team(ADMIN, "risk")
    b.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    b.registry.create_model(ADMIN, Model(name="draft", team="risk", owner="ana"))
    b.governance.apply_policy(ADMIN, "tier: unassessed\nchecks: {}\n")
    b.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"m"), "m.bin", VersionDraft(signature=SIGNATURE)
    )
    b.governance.promote(ADMIN, "churn", 1)
    b.value.set_value_model(
        ADMIN, "churn", {"kind": "declared", "monthly": 80, "expected_monthly_value": 300}
    )
    incident, _ = b.incidents.trigger(
        ADMIN, key="k", model="churn", version=1, title="latency <script>", severity=Severity.P1
    )
    assert incident.id
    b.telemetry.log_predictions(
        ADMIN,
        "churn",
        1,
        pa.table(
            {
                "prediction_id": ["a"],
                "ts": pa.array(
                    [datetime.now(UTC) - timedelta(minutes=1)], pa.timestamp("us", tz="UTC")
                ),
                "prediction": [1],
                "income": [1.0],
            }
        ),
    )
    return b


def this_month() -> str:
    return f"{datetime.now(UTC):%Y-%m}"


def test_the_month_report_has_every_part(backend: Backend) -> None:
    value = Value(backend.value.store, backend.registry, backend.telemetry, Costs())
    reports = ExecutiveReports(
        backend.registry, backend.incidents, value, backend.delivery,
        backend.maturity, backend.compliance, costs=Costs(),
    )  # fmt: skip
    report = reports.month(this_month())
    assert [(p.model, p.version) for p in report.production] == [("churn", 1)]
    assert report.production_by_tier == {"unassessed": 1}
    assert (report.incidents.opened, report.incidents.by_severity) == (1, {"P1": 1})
    assert report.incidents.open_at_month_end == 1
    assert report.costs.total == Decimal("250.00")
    assert report.costs.budgets[0]["status"] == "over"
    [churn] = report.value
    assert churn.cost == Decimal("100.00") and churn.roi == pytest.approx(-0.2)
    assert len(report.dora.deployments) == 1 and report.dora_by_team[0].scope == "team risk"
    assert report.maturity_distribution("google") == {0: 2}
    assert report.compliance and report.compliance[0].model == "churn"
    assert report.actions[0].startswith("Resolve P1 incident")
    assert "Bring spend back under budget" in report.actions[1]
    assert "returned -20%" in report.actions[2]

    markdown = render_markdown(report)
    for title in (
        "Models in production by risk tier", "Incidents", "Cost, budgets and forecast",
        "Budget status", "Value and ROI", "Delivery (DORA", "Maturity distribution",
        "Compliance gaps", "Top actions",
    ):  # fmt: skip
        assert f"## {title}" in markdown
    assert "| churn | 80.00 |" in markdown

    page = render_html(report)
    assert "<style>" in page and "@media print" in page
    assert not re.search(r"(src|href)\s*=", page), "the page must not load anything"
    assert "http://" not in page and "https://" not in page
    assert "latency &lt;script&gt;" in page and "<script>" not in page


def test_without_a_cost_source_the_report_says_cost_unknown(backend: Backend) -> None:
    # `keel up` wires the costs service in; a report built without one says so.
    unwired = Value(backend.value.store, backend.registry, backend.telemetry)
    reports = ExecutiveReports(
        backend.registry, backend.incidents, unwired, backend.delivery,
        backend.maturity, backend.compliance,
    )  # fmt: skip
    report = reports.month(this_month())
    assert report.costs.total is None and "cost unknown" in report.costs.note
    assert report.value[0].cost is None and "cost unknown" in report.value[0].note
    assert "Set a value model" not in " ".join(report.actions)  # churn has one
    with pytest.raises(InvalidInput, match="YYYY-MM"):
        reports.month("November")


def test_the_report_reads_costs_and_roi_from_an_imported_focus_bill(
    backend: Backend, tmp_path: Path
) -> None:
    """As `keel up` wires it: the report and ROI take costs from the costs service."""
    sample = files("keel.services.costs.examples").joinpath("focus-sample.csv").read_bytes()
    bill = tmp_path / "bill.csv"
    bill.write_bytes(sample)
    backend.costs.import_focus(ADMIN, bill, file_format="csv", filename="bill.csv")
    month = "2026-10"  # the sample bill's month
    report = backend.reports.month(month)
    assert report.costs.total == backend.costs.month_cost(month)
    assert report.costs.total > 0
    churn_cost = backend.costs.month_cost(month, model="churn")
    assert churn_cost > 0
    churn = backend.value.month("churn", month)
    assert churn.cost == churn_cost
