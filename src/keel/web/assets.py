"""Static files the pages load, served from installed packages: nothing comes from a CDN.

Only the files named here are served, so no request path ever reaches the file system. Their
URLs carry a digest of their content, so browsers may keep them and still see a new release.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from keel.errors import NotFound
from keel.web.session import Public

STATIC_PREFIX = "/static"
_KEEL = Path(__file__).parent / "static"
# Swagger UI 5 (the 4.x of `swagger-ui-bundle` cannot read OpenAPI 3.1, which FastAPI writes):
# the `fastapi-swagger` package ships swagger-ui-dist's files unchanged; only they are used.
_SWAGGER_UI = Path(str(files("fastapi_swagger.resources")))
# Charts: Plotly's own minified bundle, as the installed `plotly` package ships it.
_PLOTLY = Path(str(files("plotly"))) / "package_data"

ASSETS: dict[str, Path] = {
    "keel/keel.css": _KEEL / "keel.css",
    "keel/docs.js": _KEEL / "docs.js",
    "keel/charts.js": _KEEL / "charts.js",
    "plotly/plotly.min.js": _PLOTLY / "plotly.min.js",
    "swagger-ui/swagger-ui-bundle.js": _SWAGGER_UI / "swagger-ui-bundle.js",
    "swagger-ui/swagger-ui.css": _SWAGGER_UI / "swagger-ui.css",
    "swagger-ui/favicon-32x32.png": _SWAGGER_UI / "favicon-32x32.png",
}

router = APIRouter(include_in_schema=False, dependencies=[Depends(Public())])


@cache
def asset_url(name: str) -> str:
    """The URL a page links to for asset ``name`` (a key of `ASSETS`)."""
    digest = hashlib.sha256(ASSETS[name].read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{name}?v={digest}"


@router.get(STATIC_PREFIX + "/{name:path}")
def asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise NotFound(f"No static file {name!r}.", {"asset": name})
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})
