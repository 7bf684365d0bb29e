"""Wire models for value models, realized value and ROI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from keel.domain.value import ValueKind
from keel.schemas.base import WireIn, WireOut


class ValueModelIn(WireIn):
    """A value model. The server checks the fields of each kind and names any that is wrong:

    * classification: ``tp``, ``fp``, ``tn``, ``fn`` (value of each outcome; negative = cost);
    * regression: ``per_prediction`` and ``per_unit_error`` (cost of one unit of |error|);
    * declared: ``monthly``.
    """

    kind: str
    currency: str = "EUR"
    expected_monthly_value: Any = Field(
        default=None, description="The business case: what the model is expected to earn a month."
    )
    tp: Any = None
    fp: Any = None
    tn: Any = None
    fn: Any = None
    per_prediction: Any = None
    per_unit_error: Any = None
    monthly: Any = None


class ValueModelOut(WireOut):
    model: str
    kind: ValueKind
    currency: str
    amounts: dict[str, float]
    expected_monthly_value: float | None
    updated_by: str
    updated_at: datetime | None


class ValueEstimateOut(WireOut):
    value: float = Field(description="Estimated value earned in the window, in the currency.")
    low: float = Field(description="Lower end of the 95% interval.")
    high: float = Field(description="Upper end of the 95% interval.")
    predictions: int
    labelled: int
    unpriced: int = Field(
        default=0, description="Predictions of versions with no label yet, valued at nothing."
    )


class MonthRoiOut(WireOut):
    model: str
    month: str
    currency: str
    value: ValueEstimateOut | None = Field(description="None while the value is unknown.")
    cost: str | None = Field(description="Decimal string; None when the cost is unknown.")
    roi: float | None = Field(description="(value - cost) / cost; None when either is unknown.")
    expected_monthly_value: float | None
    note: str
