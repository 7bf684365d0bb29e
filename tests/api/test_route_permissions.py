"""Security by default: every route declares the permission it needs."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from keel.domain.permissions import Permission

# Served by FastAPI itself: the OpenAPI document and its viewers.
DOCS_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# Health and metrics; signing in and out of the dashboard; the API's own documentation and
# the static files it is drawn with (no data in any of them).
PUBLIC_ROUTES = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/login",
    "/logout",
    "/docs",
    "/static/{name:path}",
    "/v2/health/live",
    "/v2/health/ready",
}


def _declared(dependant: Dependant) -> set[Permission]:
    found: set[Permission] = set()
    for dep in dependant.dependencies:
        permission = getattr(dep.call, "permission", None)
        if isinstance(permission, Permission):
            found.add(permission)
        found |= _declared(dep)
    return found


def _permissions(app: FastAPI) -> dict[str, set[Permission]]:
    """``"METHOD /path" -> declared permissions`` for every route the app serves.

    Since FastAPI 0.137 ``app.routes`` holds included routers unflattened; `iter_route_contexts`
    yields the effective routes with their prefixed paths.
    """
    table: dict[str, set[Permission]] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for method in context.methods or ():
                table[f"{method} {context.path}"] = _declared(route.dependant)
        else:
            assert context.path in DOCS_ROUTES, f"unexpected route {context.path}"
    return table


def test_the_route_table_sees_every_router(app: FastAPI) -> None:
    # Guards against the walk going quiet (and every check below passing vacuously).
    table = _permissions(app)
    for expected in [
        "GET /",
        "GET /healthz",
        "POST /api/v1/teams",
        "POST /api/v1/models",
        "POST /api/v1/models/{name}/versions",
        "GET /api/v1/models/{name}/versions/{version}/artifact",
        "PUT /api/v1/models/{name}/aliases/{alias}",
    ]:
        assert expected in table


def test_every_route_declares_exactly_one_permission(app: FastAPI) -> None:
    table = _permissions(app)
    missing = sorted(name for name, perms in table.items() if not perms)
    assert missing == [], f"routes without a declared permission: {missing}"
    ambiguous = sorted(name for name, perms in table.items() if len(perms) > 1)
    assert ambiguous == [], f"routes declaring several permissions: {ambiguous}"


def test_only_health_metrics_sign_in_and_docs_are_public(app: FastAPI) -> None:
    public = {
        name.split(" ", 1)[1] for name, p in _permissions(app).items() if Permission.PUBLIC in p
    }
    assert public == PUBLIC_ROUTES


def test_writes_need_write_approve_or_admin(app: FastAPI) -> None:
    # Any authenticated caller may manage its own tokens; every other write needs a role.
    own_tokens = {"POST /api/v1/tokens", "DELETE /api/v1/tokens/{token_id}"}
    signing_in = {"POST /login", "POST /logout"}
    # MLflow's protocol reads the latest versions with a POST (model_registry.proto).
    mlflow_reads = {"POST /api/2.0/mlflow/registered-models/get-latest-versions"}
    # Predicting is a POST that changes nothing but telemetry: it needs predict, never write.
    predicting = {"POST /models/{name}/invocations", "POST /v2/models/{name}/infer"}
    # Exporting a compliance document on request queues a job that renders what
    # GET .../documents shows a reader: a read, like that GET.
    exports = {"POST /api/v1/models/{name}/documents/exports"}
    for name, perms in _permissions(app).items():
        if name.split(" ", 1)[0] in {"POST", "PUT", "PATCH", "DELETE"}:
            allowed = {Permission.WRITE, Permission.APPROVE, Permission.ADMIN}
            if name in mlflow_reads or name in exports:
                allowed = {Permission.READ}
            if name in own_tokens:
                allowed = {Permission.AUTHENTICATED}
            if name in signing_in:
                allowed = {Permission.PUBLIC}
            if name in predicting:
                allowed = {Permission.PREDICT}
            assert perms and perms <= allowed, name


def test_the_check_catches_an_undeclared_route(app: FastAPI) -> None:
    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    assert _permissions(app)["GET /api/v1/forgotten"] == set()
