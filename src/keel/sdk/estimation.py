"""Performance estimated before labels arrive, from Python (methods of `keel.sdk.Client`)::

keel.estimator("churn", 3).state  # 'fitted' once the reference's estimation-fit job ran
window = keel.estimated_performance("churn", 3, start, end, metrics=["accuracy", "roc_auc"])
for m in window.metrics:
    print(m.metric, m.estimate, m.lower, m.upper, m.realized, m.estimation_error)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.errors import InvalidInput
from keel.schemas.estimation import EstimatorOut, WindowEstimateOut

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class _Http(Protocol):
    url: str

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


def _version_path(model: str, version: int) -> str:
    return f"{_API}/models/{quote(model, safe='')}/versions/{int(version)}"


class EstimationCalls:
    """The estimation part of `keel.sdk.Client`."""

    def estimator(self: _Http, model: str, version: int) -> EstimatorOut:
        """The version's estimator (CBPE or DLE) and its fit state."""
        answer = self._json("GET", f"{_version_path(model, version)}/estimator")
        return self._parse(EstimatorOut, answer)

    def estimated_performance(
        self: _Http,
        model: str,
        version: int,
        start: datetime,
        end: datetime,
        *,
        metrics: Sequence[str] = (),
    ) -> WindowEstimateOut:
        """Estimate [start, end) without labels; each metric carries its band, and the realized
        value and estimation error once labels arrived."""
        for field, moment in (("start", start), ("end", end)):
            if not isinstance(moment, datetime) or moment.tzinfo is None:
                raise InvalidInput(
                    f"{field} must be a datetime with a time zone (e.g. datetime.now(UTC)).",
                    {"field": field},
                )
        params: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat()}
        if metrics:
            params["metrics"] = list(metrics)
        answer = self._json(
            "GET", f"{_version_path(model, version)}/estimated-performance", params=params
        )
        return self._parse(WindowEstimateOut, answer)
