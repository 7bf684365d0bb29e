"""Deployments from Python.

These are methods of `keel.sdk.Client` (mixed in), e.g.::

    keel.deploy("credit", 2, strategy="canary", plan=yaml.safe_load(open("canary.yaml")))
    keel.deployment("credit").state            # progressing, paused, promoted, aborted
    keel.pause_deployment("credit", reason="marketing push")
    keel.resume_deployment("credit")
    keel.abort_deployment("credit", reason="p99 up")
    keel.promote_deployment("credit")          # skip the remaining steps
    keel.shadow_report("credit").agreement
    print(keel.export_deployment("credit", format="argo-rollouts"))
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.errors import TransportError
from keel.schemas.deployments import (
    DeployIn,
    DeploymentDetailOut,
    DeploymentOut,
    ExportOut,
    MoveIn,
    ShadowReportOut,
)

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class _Http(Protocol):
    url: str

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


def _deployment(name: str) -> str:
    return f"{_API}/models/{quote(name, safe='')}/deployment"


class DeploymentCalls:
    """The deployments part of `keel.sdk.Client`."""

    def deploy(
        self: _Http,
        model: str,
        version: int,
        *,
        strategy: str = "canary",
        plan: dict[str, Any] | None = None,
        justification: str | None = None,
    ) -> DeploymentOut:
        """Start a deployment (409 listing the blockers when the version may not serve)."""
        body = DeployIn(
            version=version, strategy=strategy, plan=plan, justification=justification
        ).model_dump(mode="json")
        path = f"{_API}/models/{quote(model, safe='')}/deployments"
        return self._parse(DeploymentOut, self._json("POST", path, json=body))

    def deployments(
        self: _Http, model: str | None = None, *, active: bool = False
    ) -> list[DeploymentOut]:
        """Deployments newest first: of one model, or of all (``active`` ones only)."""
        if model is None:
            path = f"{_API}/deployments" + ("?active=true" if active else "")
        else:
            path = f"{_API}/models/{quote(model, safe='')}/deployments"
        data = self._json("GET", path)
        if not isinstance(data, list):
            raise TransportError(f"The server at {self.url} answered a listing with {data!r}.")
        found = [self._parse(DeploymentOut, item) for item in data]
        return [d for d in found if d.state in ("progressing", "paused")] if active else found

    def deployment(self: _Http, model: str) -> DeploymentDetailOut:
        """The model's newest deployment, its timeline and what serves now."""
        return self._parse(DeploymentDetailOut, self._json("GET", _deployment(model)))

    def pause_deployment(self: _Http, model: str, *, reason: str = "") -> DeploymentOut:
        body = MoveIn(reason=reason).model_dump(mode="json")
        return self._parse(
            DeploymentOut, self._json("POST", f"{_deployment(model)}/pause", json=body)
        )

    def resume_deployment(self: _Http, model: str) -> DeploymentOut:
        return self._parse(DeploymentOut, self._json("POST", f"{_deployment(model)}/resume"))

    def abort_deployment(self: _Http, model: str, *, reason: str = "") -> DeploymentOut:
        """All traffic back to the stable version."""
        body = MoveIn(reason=reason).model_dump(mode="json")
        return self._parse(
            DeploymentOut, self._json("POST", f"{_deployment(model)}/abort", json=body)
        )

    def promote_deployment(self: _Http, model: str) -> DeploymentOut:
        """Promote the candidate now, through the gates."""
        return self._parse(DeploymentOut, self._json("POST", f"{_deployment(model)}/promote"))

    def shadow_report(self: _Http, model: str) -> ShadowReportOut:
        """The newest shadow's pairs: agreement, score, latency and performance differences."""
        return self._parse(ShadowReportOut, self._json("GET", f"{_deployment(model)}/shadow"))

    def export_deployment(self: _Http, model: str, *, format: str = "kserve") -> str:
        """Kubernetes manifests (YAML) of the newest deployment: kserve or argo-rollouts."""
        answer = self._json("GET", f"{_deployment(model)}/export", params={"format": format})
        return self._parse(ExportOut, answer).manifests
