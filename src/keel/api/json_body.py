"""Refuse JSON bodies holding values no store can keep, for every route at once.

Python's JSON decoder accepts integers of any size, lone UTF-16 surrogates ("\\ud800") and the
non-standard NaN / Infinity (or 1e400, which decodes to infinity). None of them can be stored:
SQLite and PostgreSQL hold 64-bit integers, UTF-8 has no surrogates, and JSON has no infinity.
Left alone they pass pydantic (an ``int`` or ``str`` field takes them) and fail deep inside a
driver as a 500. This middleware answers 422 naming the field instead, before any route runs.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.api.errors import error_response
from keel.schemas.base import MAX_INT64

MIN_INT64 = -MAX_INT64 - 1
# Only a body matching this can hold such a value (a 19-digit run, a surrogate escape, a big
# exponent or NaN / Infinity), so ordinary bodies are scanned once in C and never walked.
_SUSPECT = re.compile(rb"\d{19}|\\u[dD][89a-fA-F]|[eE][+]?\d{3}|NaN|Infinity")


def unstorable_value(body: bytes) -> tuple[str, str] | None:
    """The first field holding a value no store can keep, and what is wrong with it.

    >>> unstorable_value(b'{"rows": [{"age": 9223372036854775808}]}')[0]
    'rows.0.age'
    >>> unstorable_value(b'{"name": "ok"}') is None
    True
    """
    if not _SUSPECT.search(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # FastAPI answers malformed JSON itself
    # Iterative, so a deeply nested body cannot exhaust the stack here.
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        field = ".".join(path) or "body"
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and not MIN_INT64 <= value <= MAX_INT64:
            return field, (
                f"integers must lie between {MIN_INT64} and {MAX_INT64} (64 bits); "
                "send a larger number as a decimal (e.g. 1e19) if the field takes one"
            )
        if isinstance(value, float) and not math.isfinite(value):
            return field, "NaN and infinite numbers are not JSON; send a finite number or null"
        if isinstance(value, str) and _has_surrogate(value):
            return field, "the text holds a lone UTF-16 surrogate (\\ud800-\\udfff); send UTF-8"
        if isinstance(value, dict):
            for key, item in reversed(value.items()):
                if _has_surrogate(key):
                    return field, "a key holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, str(i)), item) for i, item in reversed(list(enumerate(value))))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _is_json(scope: Scope) -> bool:
    """True when FastAPI would decode the body as JSON: no content type, or a JSON one."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True


class StorableJson:
    """Pure ASGI middleware: reads a JSON request body (already capped by `BodySizeLimit`, which
    must wrap it), answers 422 when it holds an unstorable value, else replays it to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = unstorable_value(body)
        if problem is not None:
            field, text = problem
            response = error_response(
                422,
                "invalid_input",
                f"Invalid '{field}': {text}.",
                {"problems": [{"field": field, "problem": text}]},
            )
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
