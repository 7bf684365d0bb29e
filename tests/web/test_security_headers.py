"""Every answer says nosniff; every page forbids framing, inline code and other origins; no
other site's script may read an answer (no CORS)."""

from __future__ import annotations

import httpx
import pytest
from starlette.testclient import TestClient
from tests.api.conftest import bearer
from tests.web.html_parts import inline_code

CSP = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


def _assert_page_headers(response: httpx.Response, what: str) -> None:
    headers = response.headers
    assert headers["content-type"].startswith("text/html"), what
    assert headers["content-security-policy"] == CSP, what
    assert headers["x-content-type-options"] == "nosniff", what
    assert headers["x-frame-options"] == "DENY", what
    assert headers["referrer-policy"] == "no-referrer", what


def test_every_html_page_carries_the_security_headers(
    browser: TestClient, admin_token: str
) -> None:
    pages = {
        "login form": browser.get("/login"),
        "refused sign-in": browser.post("/login", data={"token": "keel_nope"}),
        "docs": browser.get("/docs"),
        "dashboard": browser.get("/", headers=bearer(admin_token)),
    }
    no_role = browser.post("/api/v1/users", json={"name": "nobody"}, headers=bearer(admin_token))
    assert no_role.status_code == 201
    token = browser.post(
        "/api/v1/tokens", json={"principal": "nobody"}, headers=bearer(admin_token)
    ).json()["token"]
    pages["not allowed"] = browser.get("/", headers=bearer(token))
    for what, response in pages.items():
        assert response.status_code in (200, 401, 403), what
        _assert_page_headers(response, what)
        # The policy forbids inline code: a page that needed it would break in browsers.
        assert inline_code(response.text) == [], what


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/api/v1/models"),  # 401 without a token
        ("GET", "/api/v1/nowhere"),  # 404
        ("GET", "/"),  # 303 to the login form
        ("POST", "/logout"),
        ("GET", "/static/keel/keel.css"),
        ("GET", "/static/swagger-ui/swagger-ui-bundle.js"),
    ],
)
def test_every_answer_says_nosniff(browser: TestClient, method: str, path: str) -> None:
    response = browser.request(method, path)
    assert response.headers["x-content-type-options"] == "nosniff"
    if not response.headers.get("content-type", "").startswith("text/html"):
        assert "content-security-policy" not in response.headers


def test_cross_origin_requests_get_no_cors_grant(browser: TestClient, admin_token: str) -> None:
    evil = {"Origin": "https://evil.example"}
    simple = browser.get("/api/v1/models", headers={**evil, **bearer(admin_token)})
    assert simple.status_code == 200
    preflight = browser.options(
        "/api/v1/models",
        headers={
            **evil,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code >= 400
    for response in (simple, preflight, browser.get("/healthz", headers=evil)):
        assert not any(h.lower().startswith("access-control-") for h in response.headers)
