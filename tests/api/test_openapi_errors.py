"""The OpenAPI document lists the error statuses each operation answers, in Keel's envelope."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR = {"$ref": "#/components/schemas/ErrorOut"}


def _operation(app: FastAPI, path: str, method: str) -> dict[str, Any]:
    return dict(app.openapi()["paths"][path][method])


def _errors(operation: dict[str, Any]) -> set[int]:
    return {int(s) for s in operation["responses"] if int(s) >= 400}


def test_every_error_is_the_keel_envelope(app: FastAPI) -> None:
    document = app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    envelope = document["components"]["schemas"]["ErrorOut"]
    assert envelope["required"] == ["error"]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == ERROR, (
                        method,
                        path,
                        status,
                    )


def test_statuses_follow_what_the_route_does(app: FastAPI) -> None:
    version = _operation(app, "/api/v1/models/{name}/versions/{version}", "get")
    assert _errors(version) == {401, 403, 404, 422}
    create = _operation(app, "/api/v1/models", "post")
    assert _errors(create) == {400, 401, 403, 404, 409, 413, 415, 422}
    tokens = _operation(app, "/api/v1/tokens/{token_id}", "delete")
    assert _errors(tokens) == {401, 403, 404, 409, 422}
    health = [op for path, op in app.openapi()["paths"].items() if "health" in path]
    assert health and all(_errors(op["get"]) == set() for op in health)
