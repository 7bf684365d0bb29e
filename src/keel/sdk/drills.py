"""Incident drills from Python.

These are methods of `keel.sdk.Client` (mixed in), e.g.::

    drill = keel.run_drill("churn", "drift")   # waits for the drill job
    keel.acknowledge_drill(drill.id)           # a person is on it
    report = keel.resolve_drill(drill.id)      # the drill is over: all four times are known
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.errors import TransportError
from keel.schemas.drills import (
    DrillActionIn,
    DrillIn,
    DrillOut,
    DrillScheduleIn,
    DrillScheduleOut,
)
from keel.schemas.jobs import JobOut
from keel.sdk.jobs import raise_if_unsuccessful, wait_for

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class _Http(Protocol):
    url: str

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _send(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


def _model(name: str) -> str:
    return f"{_API}/models/{quote(name, safe='')}"


def _list(http: _Http, model: type[M], data: Any) -> list[M]:
    if not isinstance(data, list):
        raise TransportError(f"The server at {http.url} answered a listing with {data!r}.")
    return [http._parse(model, item) for item in data]


class DrillCalls:
    """The incident drills part of `keel.sdk.Client`."""

    def start_drill(
        self: _Http, model: str, scenario: str, *, live: bool = False, alias: str = "production"
    ) -> JobOut:
        """Queue a drill of ``scenario`` on ``model``; returns the job at once."""
        body = DrillIn(scenario=scenario, live=live, alias=alias).model_dump(mode="json")
        return self._parse(JobOut, self._json("POST", f"{_model(model)}/drills", json=body))

    def run_drill(
        self: _Http,
        model: str,
        scenario: str,
        *,
        live: bool = False,
        alias: str = "production",
        timeout: float | None = None,
        on_progress: Callable[[JobOut], None] | None = None,
    ) -> DrillOut:
        """Run a drill and wait for its job; returns the drill's report so far (a person then
        acknowledges and resolves its incident)."""
        job = DrillCalls.start_drill(self, model, scenario, live=live, alias=alias)
        done = raise_if_unsuccessful(
            wait_for(self, job.id, timeout=timeout, on_progress=on_progress)
        )
        return DrillCalls.get_drill(self, int((done.result or {})["drill"]))

    def list_drills(self: _Http, *, model: str | None = None, limit: int = 100) -> list[DrillOut]:
        """Drills and their reports, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if model is not None:
            params["model"] = model
        return _list(self, DrillOut, self._json("GET", f"{_API}/drills", params=params))

    def get_drill(self: _Http, drill_id: int) -> DrillOut:
        """One drill's report."""
        return self._parse(DrillOut, self._json("GET", f"{_API}/drills/{int(drill_id)}"))

    def acknowledge_drill(self: _Http, drill_id: int, comment: str = "") -> DrillOut:
        """Acknowledge the drill's incident (times the acknowledgement)."""
        body = DrillActionIn(comment=comment).model_dump(mode="json")
        answer = self._json("POST", f"{_API}/drills/{int(drill_id)}/ack", json=body)
        return self._parse(DrillOut, answer)

    def resolve_drill(self: _Http, drill_id: int, comment: str = "") -> DrillOut:
        """Resolve the drill's incident: the drill is over."""
        body = DrillActionIn(comment=comment).model_dump(mode="json")
        answer = self._json("POST", f"{_API}/drills/{int(drill_id)}/resolve", json=body)
        return self._parse(DrillOut, answer)

    def schedule_drill(
        self: _Http, model: str, scenario: str, every_days: int, *, alias: str = "production"
    ) -> DrillScheduleOut:
        """Run a drill of ``scenario`` every ``every_days`` days (never live)."""
        body = DrillScheduleIn(every_days=every_days, alias=alias).model_dump(mode="json")
        path = f"{_model(model)}/drill-schedules/{quote(scenario, safe='')}"
        return self._parse(DrillScheduleOut, self._json("PUT", path, json=body))

    def drill_schedules(self: _Http) -> list[DrillScheduleOut]:
        """Every drill schedule."""
        return _list(self, DrillScheduleOut, self._json("GET", f"{_API}/drill-schedules"))

    def unschedule_drill(self: _Http, model: str, scenario: str) -> None:
        """Stop the model's scheduled drill of ``scenario``."""
        self._send("DELETE", f"{_model(model)}/drill-schedules/{quote(scenario, safe='')}")
