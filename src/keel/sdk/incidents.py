"""Alert rules and incidents from Python.

These are methods of `keel.sdk.Client` (mixed in), e.g.::

    keel.apply_alert_rules("churn", [{"name": "income-psi", "check": "drift",
                                      "column": "income", "metric": "psi",
                                      "comparison": ">", "threshold": 0.2, "severity": "P2"}])
    for incident in keel.list_incidents(model="churn", status="open"):
        keel.acknowledge_incident(incident.id, "looking")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.errors import TransportError
from keel.schemas.incidents import (
    AlertRuleIn,
    AlertRuleOut,
    AlertRulesApplyIn,
    CommentIn,
    IncidentActionIn,
    IncidentOut,
    IncidentStatsOut,
    PostmortemIn,
)
from keel.sdk.validation import validated

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class _Http(Protocol):
    url: str

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _send(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


def _rules_path(model: str) -> str:
    return f"{_API}/models/{quote(model, safe='')}/alert-rules"


def _list(http: _Http, model: type[M], data: Any) -> list[M]:
    if not isinstance(data, list):
        raise TransportError(f"The server at {http.url} answered a listing with {data!r}.")
    return [http._parse(model, item) for item in data]


class IncidentCalls:
    """The alerts and incidents part of `keel.sdk.Client`."""

    # -- alert rules ---------------------------------------------------------------------------

    def list_alert_rules(self: _Http, model: str) -> list[AlertRuleOut]:
        """``model``'s alert rules (the monitor defaults and any added)."""
        return _list(self, AlertRuleOut, self._json("GET", _rules_path(model)))

    def create_alert_rule(self: _Http, model: str, **fields: Any) -> AlertRuleOut:
        """Add a rule: ``name``, ``check`` and optionally ``column``, ``metric``,
        ``comparison`` (>, >=, <, <= or status), ``threshold``, ``windows``, ``severity``,
        ``labels``, ``auto_resolve``, ``version``."""
        body = validated(AlertRuleIn, fields, "alert rule")
        answer = self._json("POST", _rules_path(model), json=body.model_dump(mode="json"))
        return self._parse(AlertRuleOut, answer)

    def apply_alert_rules(
        self: _Http, model: str, rules: Sequence[Mapping[str, Any]]
    ) -> list[AlertRuleOut]:
        """Create or update (by name) every rule in ``rules``, all or nothing."""
        body = AlertRulesApplyIn(rules=[dict(r) for r in rules])
        return _list(
            self,
            AlertRuleOut,
            self._json("PUT", _rules_path(model), json=body.model_dump(mode="json")),
        )

    def delete_alert_rule(self: _Http, rule_id: int) -> None:
        """Remove a rule; the incidents it opened stay."""
        self._send("DELETE", f"{_API}/alert-rules/{int(rule_id)}")

    # -- incidents -----------------------------------------------------------------------------

    def list_incidents(
        self: _Http,
        *,
        model: str | None = None,
        team: str | None = None,
        status: str | None = None,
        limit: int = 100,
        drill: bool = False,
    ) -> list[IncidentOut]:
        """Incidents newest first; ``status`` is triggered, acknowledged, resolved or open.
        Drills' incidents are left out, or listed alone with ``drill=True``."""
        params = {
            k: v
            for k, v in {"model": model, "team": team, "status": status, "limit": limit}.items()
            if v is not None
        }
        if drill:
            params["drill"] = "true"
        return _list(self, IncidentOut, self._json("GET", f"{_API}/incidents", params=params))

    def get_incident(self: _Http, incident_id: int) -> IncidentOut:
        """One incident with its timeline."""
        return self._parse(IncidentOut, self._json("GET", f"{_API}/incidents/{int(incident_id)}"))

    def acknowledge_incident(self: _Http, incident_id: int, comment: str = "") -> IncidentOut:
        body = IncidentActionIn(comment=comment).model_dump()
        answer = self._json("POST", f"{_API}/incidents/{int(incident_id)}/ack", json=body)
        return self._parse(IncidentOut, answer)

    def resolve_incident(self: _Http, incident_id: int, comment: str = "") -> IncidentOut:
        body = IncidentActionIn(comment=comment).model_dump()
        answer = self._json("POST", f"{_API}/incidents/{int(incident_id)}/resolve", json=body)
        return self._parse(IncidentOut, answer)

    def comment_incident(self: _Http, incident_id: int, text: str) -> IncidentOut:
        body = CommentIn(text=text).model_dump()
        answer = self._json("POST", f"{_API}/incidents/{int(incident_id)}/comments", json=body)
        return self._parse(IncidentOut, answer)

    def set_postmortem(self: _Http, incident_id: int, markdown: str) -> IncidentOut:
        """Attach (or replace) the incident's post-mortem, a markdown document."""
        body = PostmortemIn(markdown=markdown).model_dump()
        answer = self._json("PUT", f"{_API}/incidents/{int(incident_id)}/postmortem", json=body)
        return self._parse(IncidentOut, answer)

    def incident_stats(
        self: _Http, *, model: str | None = None, team: str | None = None
    ) -> IncidentStatsOut:
        """MTTA and MTTR (seconds) over a model's or team's incidents."""
        params = {k: v for k, v in {"model": model, "team": team}.items() if v is not None}
        return self._parse(
            IncidentStatsOut, self._json("GET", f"{_API}/incidents/stats", params=params)
        )
