"""Who is looking at the dashboard: an API token held in an HttpOnly cookie (or sent as a bearer
header), checked on every page like the API's `Requires` does.

The cookie is ``SameSite=Strict``, so a cross-site request never carries it: a page elsewhere
cannot submit a form or load a page as the signed-in user. That is the dashboard's CSRF defence.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from keel.domain.permissions import Permission, Principal, authorize
from keel.errors import PermissionDenied, Unauthenticated
from keel.services.backend import Backend

COOKIE = "keel_session"


def get_backend(request: Request) -> Backend:
    backend = request.app.state.backend
    assert isinstance(backend, Backend)
    return backend


def presented_token(request: Request) -> str | None:
    """The bearer token of the request if it has one, else the session cookie's."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE) or None


class LoginRequired(Exception):
    """No usable token: answered with a redirect to the login form."""

    def __init__(self, *, stale_cookie: bool) -> None:
        super().__init__("login required")
        self.stale_cookie = stale_cookie


class PageDenied(Exception):
    """A valid token without the role a page needs: answered with an HTML 403."""

    def __init__(self, principal: str, message: str) -> None:
        super().__init__(message)
        self.principal = principal
        self.message = message


class SignedIn:
    """Declares the permission a page needs (the route-table test reads ``permission``) and
    enforces it: a redirect to the login form without a valid token, a 403 page without the role.
    """

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(
        self, request: Request, backend: Annotated[Backend, Depends(get_backend)]
    ) -> Principal:
        token = presented_token(request)
        try:
            principal = backend.identity.authenticate(token)
        except Unauthenticated:
            raise LoginRequired(stale_cookie=COOKIE in request.cookies) from None
        try:
            authorize(principal, self.permission)
        except PermissionDenied as denied:
            raise PageDenied(principal.name, denied.message) from None
        return principal


class Public:
    """Declares a page anyone may open (the login form itself)."""

    permission = Permission.PUBLIC

    def __call__(self) -> None:
        return None


def set_session(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="strict", secure=secure)


def clear_session(response: Response, *, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)


Reader = Annotated[Principal, Depends(SignedIn(Permission.READ))]
