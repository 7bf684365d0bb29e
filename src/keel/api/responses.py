"""Declare in the OpenAPI document the error statuses each route answers, in Keel's envelope.

Derived from the route itself, so a new route is documented without anyone remembering to:
- 401 without a valid token, 403 without the role (or for another user's things): every route
  but the public ones;
- 404 where the path names something (a model, a version, an incident...), or a body may;
- 409 where a request changes state (a duplicate name, a lifecycle rule);
- 400 (body not UTF-8), 413 (over the size limit), 415 (wrong media type) where there is a body;
- 422 (Keel's envelope, replacing FastAPI's own schema) where there is any input to validate;
- on the MLflow-compatible routes, MLflow's statuses instead: 400 for invalid input and conflicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from keel.api.deps import Requires
from keel.api.mlflow_wire import MlflowRoute
from keel.domain.permissions import Permission
from keel.schemas.errors import ErrorDetail, ErrorOut

_REF = {"$ref": "#/components/schemas/ErrorOut"}
_DESCRIPTIONS = {
    400: (
        "The body could not be read (not UTF-8, malformed multipart); on the MLflow routes, "
        "MLflow's INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS or INVALID_STATE."
    ),
    401: "No valid API token.",
    403: "The token's user lacks the role this route needs.",
    404: "Something named in the request does not exist.",
    409: "The request conflicts with the current state (a duplicate, a lifecycle rule).",
    413: "The body is over the server's size limit.",
    415: "The body's media type is not one this route takes.",
    422: "The input is invalid; details name the field(s).",
}
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _permissions(dependant: Dependant) -> Iterator[Permission]:
    for sub in dependant.dependencies:
        if isinstance(sub.call, Requires):
            yield sub.call.permission
        yield from _permissions(sub)


def error_statuses(route: APIRoute, method: str) -> list[int]:
    """The error statuses ``method`` on ``route`` can answer."""
    statuses: set[int] = set()
    permissions = set(_permissions(route.dependant))
    if permissions - {Permission.PUBLIC}:
        # 403 even where any token will do: one's own tokens only, unless an admin.
        statuses |= {401, 403}
    has_body = route.body_field is not None
    has_input = bool(route.dependant.path_params or route.dependant.query_params or has_body)
    if route.dependant.path_params or has_body:
        statuses.add(404)
    if method in _WRITES:
        statuses.add(409)
    if has_body:
        statuses |= {400, 413, 415}
    if has_input:
        statuses.add(422)
    if isinstance(route, MlflowRoute):  # MLflow's codes: invalid, existing, invalid state
        statuses = (statuses - {409, 422}) | {400, 404}
    return sorted(statuses)


def install_error_responses(app: FastAPI) -> None:
    """Make ``app.openapi()`` list each operation's error statuses with the `ErrorOut` schema."""

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _declare(app, generate())  # FastAPI's document, which it caches; amended in place
        assert app.openapi_schema is not None
        return app.openapi_schema

    # FastAPI's documented way to customise the document.
    app.openapi = openapi  # type: ignore[method-assign]


def _declare(app: FastAPI, document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorDetail"] = ErrorDetail.model_json_schema()
    schemas["ErrorOut"] = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["ErrorOut"].pop("$defs", None)
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema or not context.path:
            continue
        for method in context.methods or ():
            operation = document["paths"].get(context.path, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if isinstance(route, MlflowRoute):
                responses.pop("422", None)  # FastAPI's; MLflow answers invalid input with 400
            for status in error_statuses(route, method):
                responses[str(status)] = {
                    "description": _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": _REF}},
                }
    if "#/components/schemas/HTTPValidationError" not in json.dumps(document["paths"]):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
