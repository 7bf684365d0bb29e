"""Signing in to the dashboard with an API token, seeing it, and signing out."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.testclient import TestClient
from tests.api.conftest import bearer

from keel.domain.permissions import Permission
from keel.web import docs, login, model_page, portfolio, version_page
from keel.web.session import COOKIE


def _set_cookie(response_headers: list[str]) -> str:
    cookies = [c for c in response_headers if c.startswith(f"{COOKIE}=")]
    assert len(cookies) == 1, response_headers
    return cookies[0]


def _sign_in(browser: TestClient, token: str) -> None:
    response = browser.post("/login", data={"token": token})
    assert response.status_code == 303, response.text
    assert browser.cookies.get(COOKIE) == token


def _model(browser: TestClient, admin_token: str, name: str = "churn") -> None:
    headers = bearer(admin_token)
    browser.post("/api/v1/teams", json={"name": "risk"}, headers=headers)
    created = browser.post(
        "/api/v1/models", json={"name": name, "team": "risk", "owner": "ana"}, headers=headers
    )
    assert created.status_code == 201, created.text


def _user_token(browser: TestClient, admin_token: str, name: str, role: str | None) -> str:
    headers = bearer(admin_token)
    assert browser.post("/api/v1/users", json={"name": name}, headers=headers).status_code == 201
    if role:
        grant = {"role": role, "team": "risk"}
        browser.post("/api/v1/teams", json={"name": "risk"}, headers=headers)
        granted = browser.post(f"/api/v1/users/{name}/roles", json=grant, headers=headers)
        assert granted.status_code == 200, granted.text
    created = browser.post("/api/v1/tokens", json={"principal": name}, headers=headers)
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert isinstance(token, str)
    return token


def test_the_dashboard_without_a_session_sends_to_the_login_form(browser: TestClient) -> None:
    response = browser.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    form = browser.get("/login")
    assert form.status_code == 200
    assert form.headers["content-type"].startswith("text/html")
    assert '<form class="stack" method="post" action="/login">' in form.text
    assert 'name="token" type="password"' in form.text


def test_signing_in_sets_a_strict_http_only_cookie_and_shows_the_models(
    browser: TestClient, admin_token: str
) -> None:
    _model(browser, admin_token, "churn")
    response = browser.post("/login", data={"token": admin_token})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = _set_cookie(response.headers.get_list("set-cookie"))
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=strict"} <= attributes
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    page = browser.get("/")
    assert page.status_code == 200
    assert '<a href="/models/churn">churn</a>' in page.text
    assert "Signed in as <strong>admin</strong>" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_over_https_the_cookie_is_secure(app: FastAPI, admin_token: str) -> None:
    with TestClient(app, base_url="https://keel.example", follow_redirects=False) as client:
        response = client.post("/login", data={"token": admin_token})
    cookie = _set_cookie(response.headers.get_list("set-cookie"))
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_a_bad_token_gets_the_form_again_with_401_and_no_cookie(browser: TestClient) -> None:
    garbage = "keel_not-a-real-token-0123456789"
    response = browser.post("/login", data={"token": garbage})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "That token was not accepted" in response.text
    assert garbage not in response.text
    assert "set-cookie" not in response.headers
    assert browser.get("/").status_code == 303


def test_an_empty_form_asks_for_a_token(browser: TestClient) -> None:
    for data in ({"token": "  "}, {}):
        response = browser.post("/login", data=data)
        assert response.status_code == 401
        assert "Paste an API token" in response.text
        assert "set-cookie" not in response.headers


def test_signing_out_clears_the_cookie(browser: TestClient, admin_token: str) -> None:
    _sign_in(browser, admin_token)
    form = browser.get("/").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form)
    assert token is not None, "the sign-out form carries no form token"
    response = browser.post("/logout", data={"csrf_token": token.group(1)})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    cookie = _set_cookie(response.headers.get_list("set-cookie"))
    assert "max-age=0" in cookie.lower()
    assert COOKIE not in browser.cookies
    assert browser.get("/").status_code == 303


def test_a_bearer_header_opens_the_dashboard_too(browser: TestClient, admin_token: str) -> None:
    assert browser.get("/", headers=bearer(admin_token)).status_code == 200
    assert browser.get("/", headers=bearer("keel_wrong")).status_code == 303


def test_a_revoked_token_in_the_cookie_sends_back_to_login_and_drops_it(
    browser: TestClient, admin_token: str
) -> None:
    token = _user_token(browser, admin_token, "vera", "viewer")
    _sign_in(browser, token)
    assert browser.get("/").status_code == 200
    listed = browser.get(
        "/api/v1/tokens", params={"principal": "vera"}, headers=bearer(admin_token)
    )
    token_id = listed.json()[0]["id"]
    revoked = browser.delete(f"/api/v1/tokens/{token_id}", headers=bearer(admin_token))
    assert revoked.status_code == 200
    response = browser.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert "max-age=0" in _set_cookie(response.headers.get_list("set-cookie")).lower()
    assert COOKIE not in browser.cookies


def test_a_token_without_a_role_cannot_sign_in_or_read(
    browser: TestClient, admin_token: str
) -> None:
    token = _user_token(browser, admin_token, "nobody", None)
    response = browser.post("/login", data={"token": token})
    assert response.status_code == 403
    assert "needs the &#39;viewer&#39; role" in response.text
    assert "set-cookie" not in response.headers
    # Presented anyway (a role taken away after signing in): a page saying so, not the data.
    page = browser.get("/", headers=bearer(token))
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "Not allowed" in page.text
    assert "Signed in as <strong>nobody</strong>" in page.text


def test_a_sign_in_posted_from_another_site_is_refused(
    browser: TestClient, admin_token: str
) -> None:
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
    ):
        response = browser.post("/login", data={"token": admin_token}, headers=headers)
        assert response.status_code == 403, headers
        assert "set-cookie" not in response.headers
    # What a browser sends from our own form: its referrer policy turns Origin into "null".
    for headers in (
        {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
        {"Origin": "null"},
        {"Origin": "http://testserver"},
    ):
        response = browser.post("/login", data={"token": admin_token}, headers=headers)
        assert response.status_code == 303, headers


def _declared(route: APIRoute) -> set[Permission]:
    found: set[Permission] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        permission = getattr(dependant.call, "permission", None)
        if isinstance(permission, Permission):
            found.add(permission)
        pending.extend(dependant.dependencies)
    return found


def test_every_page_declares_its_permission_where_the_route_table_looks() -> None:
    declared = {
        f"{method} {route.path}": _declared(route)
        for router in (
            portfolio.router,
            model_page.router,
            version_page.router,
            login.router,
            docs.router,
        )
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert declared == {
        "GET /": {Permission.READ},
        "GET /models/{name}": {Permission.READ},
        "GET /models/{name}/documents": {Permission.READ},
        "GET /models/{name}/versions/{version}": {Permission.READ},
        "GET /models/{name}/versions/{version}/artifact": {Permission.READ},
        "GET /login": {Permission.PUBLIC},
        "POST /login": {Permission.PUBLIC},
        "POST /logout": {Permission.PUBLIC},
        "GET /docs": {Permission.PUBLIC},
    }
