"""Assemble the REST API: routers, error envelope, body limits and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from keel.api.errors import install_error_handlers
from keel.api.job_metrics import install_job_metrics
from keel.api.json_body import StorableJson
from keel.api.limits import BodySizeLimit
from keel.api.metrics import HttpMetrics
from keel.api.model_metrics import ModelMetricsCollector
from keel.api.responses import install_error_responses
from keel.api.routers import aliases, audit, health, models, teams, tokens, users, versions
from keel.api.routers import budgets as budget_routes
from keel.api.routers import costs as cost_routes
from keel.api.routers import delivery as delivery_routes
from keel.api.routers import deployments as deployment_routes
from keel.api.routers import documents as documents_routes
from keel.api.routers import drills as drill_routes
from keel.api.routers import estimation as estimation_routes
from keel.api.routers import evaluation as evaluation_routes
from keel.api.routers import governance as governance_routes
from keel.api.routers import incidents as incidents_routes
from keel.api.routers import jobs as job_routes
from keel.api.routers import maturity as maturity_routes
from keel.api.routers import mlflow_registry as mlflow_routes
from keel.api.routers import monitoring as monitoring_routes
from keel.api.routers import notifications as notification_routes
from keel.api.routers import playbooks as playbook_routes
from keel.api.routers import portfolio as portfolio_routes
from keel.api.routers import profiles as profile_routes
from keel.api.routers import report as report_routes
from keel.api.routers import risk as risk_routes
from keel.api.routers import telemetry as telemetry_routes
from keel.api.routers import value as value_routes
from keel.services.backend import Backend


def _version() -> str:
    try:
        return version("keel-mlops")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(backend: Backend) -> FastAPI:
    """The Keel server over an opened `Backend`. Migrations are the caller's job."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="Keel",
        version=_version(),
        summary="The MLOps control plane: registry, governance, monitoring and operations.",
        # Swagger UI is served offline by keel.web (keel.server); FastAPI's own pages load it,
        # and ReDoc, from a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.state.metrics = CollectorRegistry()
    app.state.metrics.register(ModelMetricsCollector(backend.model_metrics))
    install_job_metrics(app.state.metrics, backend.jobs)
    install_error_handlers(app)
    install_error_responses(app)
    app.include_router(health.router)
    for router in (
        teams.router,
        models.router,
        versions.router,
        aliases.router,
        users.router,
        tokens.router,
        audit.router,
        risk_routes.router,
        documents_routes.router,
        governance_routes.router,
        evaluation_routes.router,
        telemetry_routes.router,
        profile_routes.router,
        monitoring_routes.router,
        incidents_routes.router,
        notification_routes.router,
        playbook_routes.router,
        cost_routes.router,
        budget_routes.router,
        value_routes.router,
        estimation_routes.router,
        delivery_routes.router,
        maturity_routes.router,
        report_routes.router,
        mlflow_routes.router,
        job_routes.router,
        deployment_routes.router,
        drill_routes.router,
        portfolio_routes.router,
    ):
        app.include_router(router)
    # Inside BodySizeLimit (added later, so outside it): it reads bodies already capped.
    app.add_middleware(StorableJson)
    app.add_middleware(
        BodySizeLimit,
        max_request_bytes=backend.settings.max_request_bytes,
        max_artifact_bytes=backend.settings.max_artifact_bytes,
        max_data_upload_bytes=backend.settings.max_upload_bytes,
    )
    app.add_middleware(HttpMetrics, registry=app.state.metrics)
    return app
