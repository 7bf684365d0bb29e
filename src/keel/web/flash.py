"""After a form's POST: a redirect (303) back to the page, which then shows what happened once.

The message rides in a short-lived cookie (HttpOnly, SameSite=Strict, path /), not in the URL,
so a link cannot make Keel's page show a text of someone else's choosing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from keel.web.rendering import NO_STORE, templates

FLASH_COOKIE = "keel_flash"
_MAX_CHARS = 1000  # a cookie holds about 4 KB; the services' messages are one or two sentences


def redirect_with(
    request: Request, url: str, message: str, *, error: bool = False
) -> RedirectResponse:
    """A 303 to ``url`` that shows ``message`` there (as an error when ``error``)."""
    response = RedirectResponse(url, status_code=303, headers=NO_STORE)
    text = message if len(message) <= _MAX_CHARS else message[: _MAX_CHARS - 1] + "…"
    value = quote(json.dumps({"text": text, "error": error}))
    response.set_cookie(
        FLASH_COOKIE,
        value,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=60,
    )
    return response


def _taken(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        found = json.loads(unquote(raw))
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("text"), str):
        return None
    return {"text": found["text"], "error": bool(found.get("error"))}


def render(
    request: Request, template: str, context: dict[str, Any], *, status: int = 200
) -> HTMLResponse:
    """The page, with the flash message left by the last action (shown once, then dropped)."""
    flash = _taken(request)
    response: HTMLResponse = templates.TemplateResponse(
        request, template, {"flash": flash, **context}, status_code=status, headers=NO_STORE
    )
    if flash is not None or FLASH_COOKIE in request.cookies:
        response.delete_cookie(
            FLASH_COOKIE,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response
