"""A CSRF token on every state-changing dashboard form, checked on every POST.

The session cookie is ``SameSite=Strict`` already; the token is the second, independent defence
(an older browser, a sibling subdomain). It is stateless: ``HMAC(key, session token)``, so it is
bound to the signed-in session (a token taken from another user's page is worthless here) and
every API replica computes the same one. The key is derived from the audit key file
(`AuditKey.subkey`), never the audit key itself, so a leaked CSRF key signs no audit event.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import Form, Request
from jinja2 import pass_context
from markupsafe import Markup

from keel.services.backend import Backend
from keel.web.session import PageDenied, get_backend, presented_token

FIELD = "csrf_token"
_PURPOSE = "dashboard-csrf"
REFUSED = (
    "This form was refused: it did not carry the dashboard's form token for your session (it "
    "was sent from another site, or from a page opened before you signed in again). Reload the "
    "page and submit the form again."
)


def form_token(backend: Backend, session_token: str) -> str:
    """The form token of the session whose API token is ``session_token``."""
    key = backend.audit.key.subkey(_PURPOSE)
    return hmac.new(key, session_token.encode(), hashlib.sha256).hexdigest()


def _expected(request: Request) -> str | None:
    session = presented_token(request)
    if session is None:
        return None
    return form_token(get_backend(request), session)


@pass_context
def csrf_field(context: Any) -> Markup:
    """The hidden input a state-changing form carries (a Jinja global): nothing without a
    session, as on the sign-in form."""
    expected = _expected(context["request"])
    if expected is None:
        return Markup("")
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, expected)


# An action's form field; the action calls `check_form_token` first thing in its body (after
# FastAPI has validated its path, so a bad id still gets the API's 422 naming the field).
FormToken = Annotated[str, Form(alias=FIELD)]


def check_form_token(request: Request, sent: str) -> None:
    """Refuse (a 403 page) a POST that does not carry this session's form token."""
    session = presented_token(request)
    if session is None:
        return  # no session: the route's own sign-in check has answered (a redirect to /login)
    expected = form_token(get_backend(request), session)
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PageDenied("", REFUSED)
