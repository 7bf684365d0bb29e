"""Render every failure as ``{"error": {"code", "message", "details"}}`` with its status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from keel.errors import KeelError

log = logging.getLogger("keel.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


async def _keel_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KeelError)
    if exc.status >= 500:
        log.error("%s: %s", exc.code, exc.message)
    return error_response(exc.status, exc.code, exc.message, exc.details)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        field = _field(tuple(err.get("loc", ())))
        if err.get("type") == "json_invalid":
            message = "The request body is not valid JSON in UTF-8."
            problems.append({"field": "body", "problem": message})
            continue
        problems.append({"field": field, "problem": str(err.get("msg", "invalid"))})
    first = problems[0] if problems else {"field": "body", "problem": "invalid"}
    message = f"Invalid '{first['field']}': {first['problem']}."
    if len(problems) > 1:
        message += f" ({len(problems) - 1} more problem(s) in details.)"
    return error_response(422, "invalid_input", message, {"problems": problems})


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        # FastAPI says only "error parsing the body"; say what is wrong and where.
        return error_response(
            400,
            "malformed_body",
            f"The request body is not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} at "
            f"position {cause.start}). Send JSON encoded as UTF-8.",
            {"field": "body", "position": cause.start},
        )
    return error_response(exc.status_code, code, str(exc.detail))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Log the type only: an exception's text can carry connection strings or tokens.
    log.exception("unexpected %s", type(exc).__name__)
    return error_response(500, "internal_error", "Keel hit an unexpected error; see server logs.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KeelError, _keel_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
