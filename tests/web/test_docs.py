"""The API docs work offline: Swagger UI comes from an installed package, not a CDN."""

from __future__ import annotations

import re

from starlette.testclient import TestClient
from tests.web.html_parts import urls


def test_the_docs_page_loads_nothing_from_elsewhere(browser: TestClient) -> None:
    page = browser.get("/docs")  # public documentation: no token needed
    assert page.status_code == 200
    assert "http://" not in page.text
    assert "https://" not in page.text
    assert 'data-openapi-url="/openapi.json"' in page.text
    assets = urls(page.text)
    assert len(assets) == 4  # stylesheet, icon, Swagger UI, the script starting it
    kinds = {"js": "text/javascript", "css": "text/css", "png": "image/png"}
    for url in assets:
        assert url.startswith("/static/"), url
        response = browser.get(url)
        assert response.status_code == 200, url
        extension = url.split("?", 1)[0].rsplit(".", 1)[1]
        assert response.headers["content-type"].startswith(kinds[extension]), url


def test_swagger_ui_reads_the_openapi_version_fastapi_writes(browser: TestClient) -> None:
    # Swagger UI 4 refuses OpenAPI 3.1 ("Unable to render this definition"); 5 reads it.
    assert browser.get("/openapi.json").json()["openapi"].startswith("3.1")
    script = next(u for u in urls(browser.get("/docs").text) if "swagger-ui-bundle" in u)
    found = re.search(r'PACKAGE_VERSION:"(\d+)\.', browser.get(script).text)
    assert found is not None
    assert int(found.group(1)) >= 5


def test_asset_urls_change_with_their_content(browser: TestClient) -> None:
    # Browsers keep assets for a day; a new release must not be hidden behind an old copy.
    for url in urls(browser.get("/docs").text):
        assert re.search(r"\?v=[0-9a-f]{12}$", url), url


def test_only_the_named_static_files_are_served(browser: TestClient) -> None:
    for path in (
        "/static/keel/nothing.css",
        "/static/swagger-ui/index.html",
        "/static/keel/..%2F..%2Fserver.py",
        "/static/..%2F..%2F..%2Fpyproject.toml",
    ):
        assert browser.get(path).status_code == 404, path


def test_no_cdn_backed_viewer_is_left(browser: TestClient) -> None:
    assert browser.get("/redoc").status_code == 404
    assert browser.get("/docs/oauth2-redirect").status_code == 404
