"""MLflow's wire format for the compatible registry API: proto-JSON bodies and error codes.

An error carries both shapes in one body: MLflow's ``error_code`` and ``message`` (what MLflow
clients read) and Keel's ``{"error": {"code", "message", "details"}}`` (with, for a refused
promotion, Keel's list of blockers).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from keel.errors import (
    Conflict,
    InvalidInput,
    KeelError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
)
from keel.services.mlflow_compat import (
    ModelView,
    ResourceAlreadyExists,
    VersionView,
    recorded_route,
)

# MLflow's error codes (databricks.proto) and the HTTP status MLflow's server gives each.
_CODES: tuple[tuple[type[KeelError], str, int], ...] = (
    (ResourceAlreadyExists, "RESOURCE_ALREADY_EXISTS", 400),
    (NotFound, "RESOURCE_DOES_NOT_EXIST", 404),
    (Unauthenticated, "UNAUTHENTICATED", 401),
    (PermissionDenied, "PERMISSION_DENIED", 403),
    (PayloadTooLarge, "INVALID_PARAMETER_VALUE", 400),
    (InvalidInput, "INVALID_PARAMETER_VALUE", 400),
    (Conflict, "INVALID_STATE", 400),
)


def mlflow_error(exc: KeelError) -> JSONResponse:
    code, status = "INTERNAL_ERROR", 500
    for kind, mlflow_code, mlflow_status in _CODES:
        if isinstance(exc, kind):
            code, status = mlflow_code, mlflow_status
            break
    body = {
        "error_code": code,
        "message": exc.message,
        "error": {"code": exc.code, "message": exc.message, "details": exc.details},
    }
    return JSONResponse(body, status_code=status)


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    problems = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query"))
            or "body",
            "problem": str(e.get("msg", "invalid")),
        }
        for e in exc.errors()
    ]
    first = problems[0] if problems else {"field": "body", "problem": "invalid"}
    return mlflow_error(
        InvalidInput(
            f"Invalid value for parameter '{first['field']}': {first['problem']}.",
            {"problems": problems},
        )
    )


class MlflowRoute(APIRoute):
    """Answers errors in MLflow's shape, and names the route in every audit event it causes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        methods = ",".join(sorted(self.methods or ()))
        route = f"{methods} {self.path}"

        async def mlflow_handler(request: Request) -> Response:
            # Set here, the route reaches the worker thread a sync endpoint runs in (the thread
            # gets a copy of this context), and with it every audit event the request appends.
            with recorded_route(route):
                try:
                    return await handle(request)
                except KeelError as exc:
                    return mlflow_error(exc)
                except RequestValidationError as exc:
                    return _validation_error(exc)

        return mlflow_handler


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items())]


def version_json(version: VersionView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": _ms(version.created_at),
        "last_updated_timestamp": _ms(version.created_at),
        "user_id": version.user_id,
        "current_stage": version.current_stage,
        "description": version.description,
        "source": version.source,
        "run_id": version.run_id,
        "status": version.status,
        "tags": _tags(version.tags),
        "run_link": version.run_link,
        "aliases": list(version.aliases),
    }
    return {k: v for k, v in body.items() if v not in ("", [])}


def model_json(model: ModelView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": _ms(model.created_at),
        "last_updated_timestamp": _ms(model.updated_at),
        "user_id": model.user_id,
        "description": model.description,
        "latest_versions": [version_json(v) for v in model.latest_versions],
        "tags": _tags(model.tags),
        "aliases": [
            {"alias": alias, "version": str(version)}
            for alias, version in sorted(model.aliases.items())
        ],
    }
    return {k: v for k, v in body.items() if v not in ("", [])}


def tag_map(tags: list[Any]) -> dict[str, str]:
    return {t.key: t.value for t in tags}
