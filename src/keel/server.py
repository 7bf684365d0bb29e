"""The whole server in one ASGI app: the REST API with the dashboard and the prediction gateway
mounted beside it; and the gateway alone, for `keel serve`.

It lives above `keel.api`, `keel.web` and `keel.serving`, which must not import each other.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from keel.api.app import create_app
from keel.api.errors import install_error_handlers
from keel.api.limits import BodySizeLimit
from keel.api.metrics import HttpMetrics
from keel.api.routers import health
from keel.services.backend import Backend
from keel.serving.app import install_gateway
from keel.web import (
    approvals,
    assets,
    audit,
    costs,
    delivery,
    deployments,
    docs,
    incidents,
    login,
    model_page,
    portfolio,
    version_page,
)
from keel.web.headers import SecurityHeaders


def build_app(backend: Backend) -> FastAPI:
    """The API, the dashboard and the offline API docs, with security headers on every answer.

    No CORS middleware, on purpose: browsers refuse other sites' scripts any answer.
    """
    app = create_app(backend)
    install_gateway(app, backend)
    for router in (
        portfolio.router,
        model_page.router,
        version_page.router,
        login.router,
        docs.router,
        assets.router,
    ):
        app.include_router(router)
    for router in (
        approvals.router,
        incidents.router,
        deployments.router,
        costs.router,
        delivery.router,
        audit.router,
    ):
        app.include_router(router)
    login.install_login_handlers(app)
    app.add_middleware(SecurityHeaders)
    return app


def build_gateway_app(backend: Backend) -> FastAPI:
    """The prediction gateway alone (`keel serve`): prediction routes, health and metrics."""
    app = FastAPI(
        title="Keel gateway",
        summary="Predictions from Keel's deployed models (MLflow scoring and Open Inference V2).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.backend = backend
    app.state.metrics = CollectorRegistry()
    install_error_handlers(app)
    app.include_router(health.router)
    install_gateway(app, backend)
    app.add_middleware(
        BodySizeLimit,
        max_request_bytes=backend.settings.max_request_bytes,
        max_artifact_bytes=backend.settings.max_artifact_bytes,
        max_data_upload_bytes=backend.settings.max_upload_bytes,
    )
    app.add_middleware(HttpMetrics, registry=app.state.metrics)
    app.add_middleware(SecurityHeaders)
    return app
