"""Monitors from Python: define them, run them, read their metric series and verdicts.

These are methods of `keel.sdk.Client` (mixed in), e.g.::

    keel.create_monitor("churn", checks=["drift", "performance"], window="daily",
                        thresholds={"performance": {"roc_auc": 0.75}})
    keel.run_monitors("churn")
    keel.metrics("churn", check="drift", column="income")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.errors import TransportError
from keel.schemas.jobs import JobOut
from keel.schemas.monitoring import (
    MetricPointOut,
    MonitorIn,
    MonitoringStatusOut,
    MonitorOut,
    MonitorPatch,
    RunIn,
    RunOut,
)
from keel.sdk.jobs import raise_if_unsuccessful, wait_for
from keel.sdk.validation import validated

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class _Http(Protocol):
    url: str

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _send(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


def _model(name: str) -> str:
    return f"{_API}/models/{quote(name, safe='')}"


def _when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat()


def _list(http: _Http, model: type[M], data: Any) -> list[M]:
    if not isinstance(data, list):
        raise TransportError(f"The server at {http.url} answered a listing with {data!r}.")
    return [http._parse(model, item) for item in data]


class MonitoringCalls:
    """The monitoring part of `keel.sdk.Client`."""

    def create_monitor(
        self: _Http,
        model: str,
        *,
        name: str = "default",
        checks: Iterable[str] | None = None,
        window: str | int = "hourly",
        version: int | None = None,
        reference_version: int | None = None,
        thresholds: Mapping[str, Any] | None = None,
        schedule: bool = True,
        delay_minutes: int = 5,
    ) -> MonitorOut:
        """Define a monitor on ``model``.

        ``checks`` defaults to all five (drift, quality, performance, fairness, operations);
        ``window`` is ``"hourly"``, ``"daily"`` or minutes (a multiple of 60); ``version`` None
        follows the production alias, else the newest version; ``thresholds`` overrides the
        documented defaults (see docs/monitoring.md); ``schedule=False`` leaves runs to you.
        """
        data: dict[str, Any] = {
            "name": name,
            "window": window,
            "version": version,
            "reference_version": reference_version,
            "thresholds": dict(thresholds or {}),
            "schedule": {"enabled": schedule, "delay_minutes": delay_minutes},
        }
        if checks is not None:
            data["checks"] = [checks] if isinstance(checks, str) else list(checks)
        body = validated(MonitorIn, data, "monitor")
        answer = self._json("POST", f"{_model(model)}/monitors", json=body.model_dump(mode="json"))
        return self._parse(MonitorOut, answer)

    def list_monitors(self: _Http, model: str) -> list[MonitorOut]:
        """The monitors defined on ``model``."""
        return _list(self, MonitorOut, self._json("GET", f"{_model(model)}/monitors"))

    def get_monitor(self: _Http, monitor_id: int) -> MonitorOut:
        return self._parse(MonitorOut, self._json("GET", f"{_API}/monitors/{int(monitor_id)}"))

    def update_monitor(self: _Http, monitor_id: int, **changes: Any) -> MonitorOut:
        """Change fields of a monitor: ``checks``, ``window``, ``version``,
        ``reference_version``, ``thresholds``, ``schedule`` ({"enabled", "delay_minutes"})."""
        body = validated(MonitorPatch, changes, "monitor")
        answer = self._json(
            "PATCH",
            f"{_API}/monitors/{int(monitor_id)}",
            json=body.model_dump(mode="json", exclude_unset=True),
        )
        return self._parse(MonitorOut, answer)

    def delete_monitor(self: _Http, monitor_id: int) -> None:
        """Delete a monitor; the points it recorded stay in the model's series."""
        self._send("DELETE", f"{_API}/monitors/{int(monitor_id)}")

    def start_monitor_run(
        self: _Http, model: str, *, at: datetime | None = None, monitor: int | None = None
    ) -> JobOut:
        """Queue a run of ``model``'s monitors (or only ``monitor``) over their newest window
        complete at ``at`` (default: now); returns the job at once."""
        body = RunIn.model_validate({"at": _when(at), "monitor": monitor})
        answer = self._json(
            "POST", f"{_model(model)}/monitors/run", json=body.model_dump(mode="json")
        )
        return self._parse(JobOut, answer)

    def run_monitors(
        self: _Http,
        model: str,
        *,
        at: datetime | None = None,
        monitor: int | None = None,
        timeout: float | None = None,
        on_progress: Callable[[JobOut], None] | None = None,
    ) -> RunOut:
        """Run ``model``'s monitors (or only ``monitor``) over their newest complete window at
        ``at`` (default now) in a job, wait for it, and return the metric points recorded."""
        job = MonitoringCalls.start_monitor_run(self, model, at=at, monitor=monitor)
        done = raise_if_unsuccessful(
            wait_for(self, job.id, timeout=timeout, on_progress=on_progress)
        )
        return self._parse(RunOut, done.result or {})

    def metrics(
        self: _Http,
        model: str,
        *,
        check: str | None = None,
        column: str | None = None,
        metric: str | None = None,
        since: datetime | None = None,
    ) -> list[MetricPointOut]:
        """The metric series of ``model``, oldest window first, filtered."""
        params = {
            key: value
            for key, value in {
                "check": check,
                "column": column,
                "metric": metric,
                "since": _when(since),
            }.items()
            if value is not None
        }
        data = self._json("GET", f"{_model(model)}/metrics", params=params)
        return _list(self, MetricPointOut, data)

    def monitoring_status(self: _Http, model: str) -> MonitoringStatusOut:
        """The newest verdict of every check, column and metric of ``model``."""
        answer = self._json("GET", f"{_model(model)}/monitoring/status")
        return self._parse(MonitoringStatusOut, answer)
