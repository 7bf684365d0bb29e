"""DORA delivery metrics from Python (a method of `keel.sdk.Client`), e.g.::

metrics = keel.dora(team="risk")
print(metrics.frequency, metrics.lead_time, metrics.change_failure, metrics.recovery)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from keel.errors import InvalidInput
from keel.schemas.delivery import DoraOut

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class _Http(Protocol):
    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


class DeliveryCalls:
    """The delivery part of `keel.sdk.Client`."""

    def dora(
        self: _Http,
        *,
        model: str | None = None,
        team: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        failure_days: int = 7,
    ) -> DoraOut:
        """The five DORA metrics of ``model``, ``team`` or (neither) the portfolio over
        [start, end) (default: the last 90 days), with the deployments, failures and rework
        behind them. Buckets follow Four Keys (see `keel.domain.delivery`)."""
        params: dict[str, Any] = {"failure_days": failure_days}
        for field, moment in (("start", start), ("end", end)):
            if moment is None:
                continue
            if not isinstance(moment, datetime) or moment.tzinfo is None:
                raise InvalidInput(
                    f"{field} must be a datetime with a time zone.", {"field": field}
                )
            params[field] = moment.isoformat()
        if model is not None:
            params["model"] = model
        if team is not None:
            params["team"] = team
        return self._parse(DoraOut, self._json("GET", f"{_API}/dora", params=params))
