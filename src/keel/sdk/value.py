"""Value models, realized value and ROI from Python (methods of `keel.sdk.Client`), e.g.::

keel.set_value_model("churn", kind="classification", tp=40, fp=-5, tn=0, fn=-60)
for month in keel.roi("churn", "2026-09", "2026-11"):
    print(month.month, month.value, month.cost, month.roi)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.errors import InvalidInput, TransportError
from keel.schemas.value import MonthRoiOut, ValueEstimateOut, ValueModelIn, ValueModelOut
from keel.sdk.validation import validated

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class _Http(Protocol):
    url: str

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


def _model_path(model: str) -> str:
    return f"{_API}/models/{quote(model, safe='')}"


class ValueCalls:
    """The value part of `keel.sdk.Client`."""

    def set_value_model(self: _Http, model: str, **fields: Any) -> ValueModelOut:
        """Set ``model``'s value model: ``kind`` (classification, regression or declared),
        ``currency`` and the kind's amounts (``tp``/``fp``/``tn``/``fn``;
        ``per_prediction``/``per_unit_error``; ``monthly``), and optionally the business case
        ``expected_monthly_value``. The server names any field that is wrong."""
        body = validated(ValueModelIn, fields, "value model")
        answer = self._json(
            "PUT",
            f"{_model_path(model)}/value-model",
            json=body.model_dump(mode="json", exclude_none=True),
        )
        return self._parse(ValueModelOut, answer)

    def value_model(self: _Http, model: str) -> ValueModelOut:
        """``model``'s value model (`keel.errors.NotFound` when none is set)."""
        return self._parse(ValueModelOut, self._json("GET", f"{_model_path(model)}/value-model"))

    def realized_value(self: _Http, model: str, start: datetime, end: datetime) -> ValueEstimateOut:
        """The value ``model`` earned in [start, end) with its 95% interval."""
        for field, moment in (("start", start), ("end", end)):
            if not isinstance(moment, datetime) or moment.tzinfo is None:
                raise InvalidInput(
                    f"{field} must be a datetime with a time zone (e.g. datetime.now(UTC)).",
                    {"field": field},
                )
        params = {"start": start.isoformat(), "end": end.isoformat()}
        answer = self._json("GET", f"{_model_path(model)}/value", params=params)
        return self._parse(ValueEstimateOut, answer)

    def roi(self: _Http, model: str, first: str, last: str | None = None) -> list[MonthRoiOut]:
        """Value, cost and ROI of ``model`` for each month from ``first`` to ``last``
        (YYYY-MM; ``last`` defaults to ``first``). An unknown cost or value is None."""
        params = {"from": first, "to": last or first}
        data = self._json("GET", f"{_model_path(model)}/roi", params=params)
        if not isinstance(data, list):
            raise TransportError(f"The server at {self.url} answered a series with {data!r}.")
        return [self._parse(MonthRoiOut, item) for item in data]
