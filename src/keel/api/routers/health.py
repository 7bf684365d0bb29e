"""Liveness, readiness and Prometheus metrics: the only public routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from keel.api.deps import Public, get_backend
from keel.services.backend import Backend

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Is the process up?")
def healthz(_: Public) -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Can it serve requests (database migrated, stores reachable)?")
def readyz(_: Public, backend: Annotated[Backend, Depends(get_backend)]) -> dict[str, object]:
    return {"status": "ready", "checks": backend.check_ready()}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(_: Public, request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
