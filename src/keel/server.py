"""The whole server in one ASGI app: the REST API with the dashboard mounted beside it.

It lives above `keel.api` and `keel.web`, which must not import each other.
"""

from __future__ import annotations

from fastapi import FastAPI

from keel.api.app import create_app
from keel.services.backend import Backend
from keel.web import assets, docs, login, pages
from keel.web.headers import SecurityHeaders


def build_app(backend: Backend) -> FastAPI:
    """The API, the dashboard and the offline API docs, with security headers on every answer.

    No CORS middleware, on purpose: browsers refuse other sites' scripts any answer.
    """
    app = create_app(backend)
    for router in (pages.router, login.router, docs.router, assets.router):
        app.include_router(router)
    login.install_login_handlers(app)
    app.add_middleware(SecurityHeaders)
    return app
