"""Value and ROI: what each model earns, from labelled telemetry through its value model.

* Realized value of a window is estimated from the labelled predictions of every version that
  served in it (see `keel.stats.value` for the estimate and its 95% interval); versions add up
  as independent estimates.
* ROI of a model and month is ``(value - cost) / cost``. The cost comes from a `CostFigures`
  source (the costs service); without one, or with a zero cost, ROI is unknown, never 0.
* A ``declared`` value model earns its ``monthly`` value in every month
  (exact: its interval is the value itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import numpy as np

from keel.domain.names import check_name
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.value import ValueKind, ValueModel, month_bounds, parse_value_model
from keel.errors import NotFound
from keel.services.registry import Registry
from keel.services.telemetry import Telemetry
from keel.stats.value import ValueEstimate, error_values, matrix_values, window_value
from keel.store.sql.value import SqlValueStore


class CostFigures(Protocol):
    """What value and the executive report need from the costs service."""

    def month_cost(
        self, month: str, *, model: str | None = None, team: str | None = None
    ) -> Decimal: ...

    def budget_status(self, month: str) -> Sequence[object]: ...


@dataclass(frozen=True)
class MonthRoi:
    """A model's month: value (with interval), cost, ROI, and the business case beside them."""

    model: str
    month: str
    currency: str
    value: ValueEstimate | None
    cost: Decimal | None
    roi: float | None
    expected_monthly_value: float | None
    note: str


def _empty(predictions: int = 0) -> ValueEstimate:
    return ValueEstimate(0.0, 0.0, 0.0, predictions, 0, unpriced=predictions)


class Value:
    """Value models, realized value and ROI."""

    def __init__(
        self,
        store: SqlValueStore,
        registry: Registry,
        telemetry: Telemetry,
        costs: CostFigures | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.telemetry = telemetry
        self.costs = costs

    def set_value_model(self, by: Principal, model: str, raw: dict[str, object]) -> ValueModel:
        """Check and store the model's value model (writers of its team; audited)."""
        owner = self.registry.get_model(check_name(model, "model"))
        authorize(by, Permission.WRITE, owner.team)
        return self.store.set_value_model(parse_value_model(owner.name, raw), by.name)

    def value_model(self, model: str) -> ValueModel:
        """The model's value model; `NotFound` with the command that sets one."""
        owner = self.registry.get_model(check_name(model, "model"))
        found = self.store.value_model(owner.name)
        if found is None:
            raise NotFound(
                f"Model {owner.name!r} has no value model yet. Set one with `keel value set "
                f"{owner.name} --kind classification --tp ... --fp ... --tn ... --fn ...` "
                "(or --kind regression / declared).",
                {"model": owner.name},
            )
        return found

    def realized(self, model: str, start: datetime, end: datetime) -> ValueEstimate:
        """The value the model earned in [start, end), with its 95% interval."""
        value = self.value_model(model)
        return self._realized(value, start, end)

    def _realized(
        self,
        value: ValueModel,
        start: datetime,
        end: datetime,
        latest_version: int | None = None,
    ) -> ValueEstimate:
        if latest_version is None:
            latest_version = self.registry.get_model(value.model).latest_version
        if value.kind is ValueKind.DECLARED:
            return _empty()
        total: ValueEstimate | None = None
        for version in range(1, latest_version + 1):
            rows = self.telemetry.labelled_predictions(
                value.model, version, start, end, include_unlabelled=True
            )
            if rows.num_rows == 0:
                continue
            labels = rows.column("label").to_numpy(zero_copy_only=False).astype(np.float64)
            predictions = rows.column("prediction").to_numpy(zero_copy_only=False)
            keep = ~np.isnan(labels)
            amounts = value.amounts
            if value.kind is ValueKind.CLASSIFICATION:
                per_row = matrix_values(
                    predictions[keep],
                    labels[keep],
                    amounts["tp"],
                    amounts["fp"],
                    amounts["tn"],
                    amounts["fn"],
                )
            else:
                per_row = error_values(
                    predictions[keep],
                    labels[keep],
                    amounts["per_prediction"],
                    amounts["per_unit_error"],
                )
            if per_row.size == 0:  # served, but nothing labelled yet: no value to claim
                estimate = _empty(rows.num_rows)
            else:
                estimate = window_value(per_row, rows.num_rows)
            total = estimate if total is None else total.plus(estimate)
        return total or _empty()

    def month(self, model: str, month: str) -> MonthRoi:
        """Value, cost and ROI of ``model`` in ``month`` (YYYY-MM)."""
        value = self.value_model(model)
        cost = None if self.costs is None else self.costs.month_cost(month, model=value.model)
        return self._month(value, month, cost)

    def portfolio_month(
        self, month: str, model_costs: Mapping[str, Decimal] | None
    ) -> list[MonthRoi]:
        """`month` for every model with a value model, by name, from one reading of the value
        models; ``model_costs`` is every model's cost of the month (None: cost unknown), read
        once by the caller (`keel.services.costs.portfolio`), so no query is made per model."""
        month_bounds(month)
        return [
            self._month(
                value,
                month,
                None if model_costs is None else model_costs.get(value.model, Decimal(0)),
                latest_version,
            )
            for value, latest_version in self.store.value_models()
        ]

    def months_of(
        self, latest: Mapping[str, int], month: str, costs: Mapping[str, Decimal]
    ) -> dict[str, MonthRoi]:
        """`month` for many models at once (a dashboard page): ``latest`` maps each model to its
        newest version number and ``costs`` gives their month's cost (a missing model cost 0).
        Value models are read in one statement; models without one are left out."""
        return {
            value.model: self._month(
                value, month, costs.get(value.model, Decimal(0)), latest[value.model]
            )
            for value, _ in self.store.value_models(list(latest))
        }

    def _month(
        self,
        value: ValueModel,
        month: str,
        cost: Decimal | None,
        latest_version: int | None = None,
    ) -> MonthRoi:
        start, end = month_bounds(month)
        notes: list[str] = []
        if value.kind is ValueKind.DECLARED:
            earned = value.amounts["monthly"]
            realized = ValueEstimate(earned, earned, earned, 0, 0)
            notes.append("declared monthly value")
        else:
            realized = self._realized(value, start, end, latest_version)
            if realized.predictions and not realized.labelled:
                notes.append("no labels yet: value unknown")
            elif realized.unpriced:
                notes.append(
                    f"{realized.unpriced} predictions of versions with no labels yet are not valued"
                )
        if cost is None:
            notes.append("cost unknown: no cost source is connected")
        known_value = realized if realized.labelled or value.kind is ValueKind.DECLARED else None
        roi: float | None = None
        if cost is not None and known_value is not None:
            if cost > 0:
                roi = (known_value.value - float(cost)) / float(cost)
            else:
                notes.append("no cost recorded: ROI undefined")
        return MonthRoi(
            model=value.model,
            month=month,
            currency=value.currency,
            value=known_value,
            cost=cost,
            roi=roi,
            expected_monthly_value=value.expected_monthly_value,
            note="; ".join(notes),
        )

    def series(self, model: str, months: Sequence[str]) -> list[MonthRoi]:
        """`month` for each month, in the order given: the chart of value, cost and ROI."""
        return [self.month(model, m) for m in months]
