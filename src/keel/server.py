"""The whole server in one ASGI app: the REST API with the dashboard mounted beside it.

It lives above `keel.api` and `keel.web`, which must not import each other.
"""

from __future__ import annotations

from fastapi import FastAPI

from keel.api.app import create_app
from keel.services.backend import Backend
from keel.web import pages


def build_app(backend: Backend) -> FastAPI:
    app = create_app(backend)
    app.include_router(pages.router)
    return app
