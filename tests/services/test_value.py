"""Value models, realized value and ROI over a real backend (SQLite and PostgreSQL) and real
telemetry files. The cost side is a small in-test `CostFigures` (the costs service is wired in
at the integration), so the ROI arithmetic is checked by hand here."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from keel.domain.permissions import Grant, Principal, Role
from keel.domain.registry import Model, VersionDraft
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.errors import InvalidInput, NotFound, PermissionDenied
from keel.services.backend import Backend
from keel.services.value import Value

ADMIN = Principal("root", grants=(Grant(Role.ADMIN),))
VIEWER = Principal("vera", grants=(Grant(Role.VIEWER, "risk"),))
SIGNATURE = Signature(
    (
        Column("income", ColumnType.FLOAT),
        Column("churned", ColumnType.INTEGER, ColumnRole.TARGET),
    )
)
MATRIX = {"kind": "classification", "tp": 40, "fp": -5, "tn": 0, "fn": -60}
# Inside the default retention; every row of one scripted window falls in T0's month.
T0 = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
if datetime.now(UTC) - T0 < timedelta(hours=12):  # the first hours of a month: use last month's
    T0 = (T0 - timedelta(days=1)).replace(day=1)
MONTH = f"{T0.year:04d}-{T0.month:02d}"


class Costs:
    """A cost source with one figure per model and month."""

    def __init__(self, figures: dict[tuple[str, str], Decimal]) -> None:
        self.figures = figures

    def month_cost(
        self, month: str, *, model: str | None = None, team: str | None = None
    ) -> Decimal:
        return self.figures.get((month, model or ""), Decimal("0"))

    def budget_status(self, month: str) -> Sequence[object]:
        return []


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    empty_backend.registry.create_team(ADMIN, "risk")
    empty_backend.registry.create_model(ADMIN, Model(name="churn", team="risk", owner="ana"))
    empty_backend.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"model"), "m.bin", VersionDraft(signature=SIGNATURE)
    )
    return empty_backend


def log(backend: Backend, predictions: list[int], labels: list[int | None]) -> None:
    """Predictions p0.. one minute apart from T0, and the labels that are not None."""
    backend.telemetry.log_predictions(
        ADMIN,
        "churn",
        1,
        pa.table(
            {
                "prediction_id": [f"p{i}" for i in range(len(predictions))],
                "ts": pa.array(
                    [T0 + timedelta(minutes=i) for i in range(len(predictions))],
                    pa.timestamp("us", tz="UTC"),
                ),
                "prediction": predictions,
                "income": [1.0] * len(predictions),
            }
        ),
    )
    labelled = [(f"p{i}", y) for i, y in enumerate(labels) if y is not None]
    if not labelled:
        return
    backend.telemetry.log_labels(
        ADMIN,
        "churn",
        pa.table({"prediction_id": [i for i, _ in labelled], "label": [y for _, y in labelled]}),
    )


def test_a_value_model_is_set_shown_and_audited(backend: Backend) -> None:
    with pytest.raises(NotFound, match="keel value set churn"):
        backend.value.value_model("churn")
    stored = backend.value.set_value_model(
        ADMIN, "churn", {**MATRIX, "currency": "USD", "expected_monthly_value": 12000}
    )
    assert stored.amounts == {"tp": 40.0, "fp": -5.0, "tn": 0.0, "fn": -60.0}
    assert backend.value.value_model("churn") == stored
    assert stored.expected_monthly_value == 12000.0
    events = backend.audit.events(ADMIN, action="value.set")
    assert [e.subject_id for e in events] == ["churn"]


def test_a_refused_value_model_writes_nothing(backend: Backend) -> None:
    backend.value.set_value_model(ADMIN, "churn", {"kind": "declared", "monthly": 100})
    with pytest.raises(InvalidInput, match="'fn'"):
        backend.value.set_value_model(ADMIN, "churn", {**MATRIX, "fn": "lots"})
    assert backend.value.value_model("churn").amounts == {"monthly": 100.0}
    assert len(backend.audit.events(ADMIN, action="value.set")) == 1


def test_only_the_team_s_writers_set_a_value_model(backend: Backend) -> None:
    with pytest.raises(PermissionDenied):
        backend.value.set_value_model(VIEWER, "churn", MATRIX)


def test_realized_value_and_roi_checked_by_hand(backend: Backend) -> None:
    backend.value.set_value_model(ADMIN, "churn", {**MATRIX, "expected_monthly_value": 500})
    # 10 predictions, 8 labelled: TP TP TP FP TN TN FN TN, then 2 unlabelled.
    log(backend, [1, 1, 1, 1, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 0, 1, 0, None, None])
    # Labelled values: 40 40 40 -5 0 0 -60 0 -> mean 55/8 = 6.875; times 10 predictions.
    realized = backend.value.realized("churn", T0, T0 + timedelta(hours=1))
    assert (realized.value, realized.predictions, realized.labelled) == (68.75, 10, 8)
    assert realized.low < 68.75 < realized.high
    with_costs = Value(
        backend.value.store,
        backend.registry,
        backend.telemetry,
        Costs({(MONTH, "churn"): Decimal("50.00")}),
    )
    month = with_costs.month("churn", MONTH)
    assert month.cost == Decimal("50.00")
    assert month.roi == pytest.approx((68.75 - 50) / 50)  # 0.375
    assert month.expected_monthly_value == 500.0


def test_without_a_cost_source_roi_says_cost_unknown_never_zero(backend: Backend) -> None:
    # `keel up` wires the costs service in (a bill-less month costs 0: see the next test); a
    # Value built without any cost source must still never report a cost of 0.
    backend.value.set_value_model(ADMIN, "churn", MATRIX)
    log(backend, [1, 0], [1, 0])
    unwired = Value(backend.value.store, backend.registry, backend.telemetry)
    month = unwired.month("churn", MONTH)
    assert month.value is not None and month.value.value == 40.0
    assert (month.cost, month.roi) == (None, None)
    assert "cost unknown" in month.note


def test_a_zero_cost_leaves_roi_undefined(backend: Backend) -> None:
    backend.value.set_value_model(ADMIN, "churn", {"kind": "declared", "monthly": 900})
    free = Value(backend.value.store, backend.registry, backend.telemetry, Costs({}))
    month = free.month("churn", MONTH)
    assert month.value is not None and month.value.value == 900.0
    assert month.roi is None and "ROI undefined" in month.note


def test_regression_value_from_the_error(backend: Backend) -> None:
    backend.value.set_value_model(
        ADMIN, "churn", {"kind": "regression", "per_prediction": 2, "per_unit_error": 0.5}
    )
    log(backend, [1, 0, 1], [1, 1, None])  # errors 0 and 1 -> values 2 and 1.5; mean 1.75 * 3
    assert backend.value.realized("churn", T0, T0 + timedelta(hours=1)).value == 5.25


def test_served_but_unlabelled_means_value_unknown(backend: Backend) -> None:
    backend.value.set_value_model(ADMIN, "churn", MATRIX)
    log(backend, [1, 0], [None, None])
    month = backend.value.month("churn", MONTH)
    assert month.value is None and "no labels yet" in month.note


def test_a_bad_month_is_refused(backend: Backend) -> None:
    backend.value.set_value_model(ADMIN, "churn", MATRIX)
    with pytest.raises(InvalidInput, match="YYYY-MM"):
        backend.value.month("churn", "2026-13")


def test_predictions_of_an_unlabelled_version_are_counted_but_not_valued(
    backend: Backend,
) -> None:
    backend.value.set_value_model(ADMIN, "churn", MATRIX)
    log(backend, [1, 0], [1, 0])  # version 1: 40 + 0 over 2 labelled predictions
    backend.registry.register_version(
        ADMIN, "churn", io.BytesIO(b"model 2"), "m.bin", VersionDraft(signature=SIGNATURE)
    )
    backend.telemetry.log_predictions(
        ADMIN,
        "churn",
        2,
        pa.table(
            {
                "prediction_id": ["v2-a", "v2-b", "v2-c"],
                "ts": pa.array([T0] * 3, pa.timestamp("us", tz="UTC")),
                "prediction": [1, 1, 0],
                "income": [1.0] * 3,
            }
        ),
    )
    month = backend.value.month("churn", MONTH)
    assert month.value is not None
    assert (month.value.value, month.value.predictions, month.value.unpriced) == (40.0, 5, 3)
    assert "3 predictions of versions with no labels yet are not valued" in month.note
