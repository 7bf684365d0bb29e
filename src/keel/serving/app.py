"""Mount the gateway on an app: its routes, and its `Gateway` in ``app.state.gateway``."""

from __future__ import annotations

import os

from fastapi import FastAPI

from keel.services.backend import Backend
from keel.serving.gateway import Gateway, GatewayOptions
from keel.serving.metrics import GatewayMetrics
from keel.serving.plans import PlanSource
from keel.serving.routes import router


def install_gateway(
    app: FastAPI,
    backend: Backend,
    *,
    plans: PlanSource | None = None,
    options: GatewayOptions | None = None,
) -> Gateway:
    """Serve predictions from ``app`` (whose ``state.metrics`` registry gets the gateway's
    metrics). The caller closes the returned gateway when the app stops."""
    gateway = Gateway(
        backend,
        GatewayMetrics(app.state.metrics),
        plans=plans,
        options=options or GatewayOptions.from_env(os.environ),
    )
    app.state.gateway = gateway
    app.include_router(router)
    return gateway
