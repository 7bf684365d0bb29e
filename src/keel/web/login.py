"""Signing in to the dashboard with an API token, and signing out."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from keel.domain.permissions import Permission, authorize
from keel.errors import PermissionDenied, Unauthenticated
from keel.services.backend import Backend
from keel.web.csrf import FormToken, check_form_token
from keel.web.rendering import NO_STORE, templates
from keel.web.session import (
    LoginRequired,
    PageDenied,
    Public,
    clear_session,
    get_backend,
    set_session,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(Public())])

# Far longer than any token Keel issues; anything longer is refused before it is hashed.
MAX_TOKEN_CHARS = 512
REFUSED = "That token was not accepted: it is unknown, revoked or expired."
CROSS_SITE = "Sign-in forms are accepted only from Keel's own pages."


def _form(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
    response: HTMLResponse = templates.TemplateResponse(
        request, "login.html", {"error": error}, status_code=status, headers=NO_STORE
    )
    return response


def _cross_site(request: Request) -> bool:
    """Whether the browser says the form was posted from another site (login CSRF: signing a
    victim in as the attacker). Browsers send ``Origin: null`` on same-origin posts from our
    pages, whose referrer policy is ``no-referrer``, so ``Sec-Fetch-Site`` is asked first."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return False
    return urlsplit(origin).netloc != request.headers.get("host")


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _form(request)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    backend: Annotated[Backend, Depends(get_backend)],
    token: Annotated[str, Form()] = "",
) -> Response:
    if _cross_site(request):
        return _form(request, 403, CROSS_SITE)
    token = token.strip()
    if not token:
        return _form(request, 401, "Paste an API token to sign in.")
    if len(token) > MAX_TOKEN_CHARS:
        return _form(request, 401, REFUSED)
    try:
        principal = backend.identity.authenticate(token)
        authorize(principal, Permission.READ)
    except Unauthenticated:
        return _form(request, 401, REFUSED)
    except PermissionDenied as denied:
        return _form(request, 403, denied.message)
    response = RedirectResponse("/", status_code=303, headers=NO_STORE)
    set_session(response, token, secure=_https(request))
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: FormToken = "") -> Response:
    check_form_token(request, csrf_token)
    response = RedirectResponse("/login", status_code=303, headers=NO_STORE)
    clear_session(response, secure=_https(request))
    return response


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    response = RedirectResponse("/login", status_code=303, headers=NO_STORE)
    if exc.stale_cookie:
        clear_session(response, secure=_https(request))
    return response


async def _page_denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageDenied)
    context = {"principal": exc.principal, "message": exc.message}
    response: HTMLResponse = templates.TemplateResponse(
        request, "denied.html", context, status_code=403, headers=NO_STORE
    )
    return response


def install_login_handlers(app: FastAPI) -> None:
    """Answer `LoginRequired` and `PageDenied` as a browser expects, not as API errors."""
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(PageDenied, _page_denied)
