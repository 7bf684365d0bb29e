"""The Jinja2 environment every dashboard page renders with (autoescaped HTML)."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from keel.web.assets import asset_url
from keel.web.csrf import csrf_field

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["asset_url"] = asset_url
templates.env.globals["csrf_field"] = csrf_field

# Pages that show what a signed-in caller may read must not be kept by browsers or proxies.
NO_STORE = {"Cache-Control": "no-store"}
