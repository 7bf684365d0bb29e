"""A page that says what went wrong, for a browser: a bad parameter (400) or nothing there (404),
with the service's own message (it names the parameter or the thing and the fix)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from keel.errors import InvalidInput, KeelError, NotFound
from keel.web.rendering import NO_STORE, templates

HEADINGS = {400: "Keel cannot show that", 404: "Not found"}


def problem_page(request: Request, principal: str, error: KeelError) -> HTMLResponse:
    """The HTML answer to ``error``: 400 for bad input, 404 for something that does not exist."""
    status = 404 if isinstance(error, NotFound) else 400
    assert isinstance(error, InvalidInput | NotFound), error
    context = {"principal": principal, "heading": HEADINGS[status], "message": error.message}
    response: HTMLResponse = templates.TemplateResponse(
        request, "problem.html", context, status_code=status, headers=NO_STORE
    )
    return response
