"""The dashboard's pages, rendered on the server (no CDN: everything works offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from keel.domain.permissions import Permission
from keel.domain.registry import ModelQuery
from keel.services.backend import Backend

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def _backend(request: Request) -> Backend:
    backend = request.app.state.backend
    assert isinstance(backend, Backend)
    return backend


class _Page:
    """The dashboard reads what the API's READ permission allows."""

    permission = Permission.READ

    def __call__(self) -> None:
        return None


@router.get("/", response_class=HTMLResponse, dependencies=[Depends(_Page())])
def home(request: Request, backend: Annotated[Backend, Depends(_backend)]) -> HTMLResponse:
    page = backend.registry.list_models(ModelQuery(), limit=50)
    return templates.TemplateResponse(
        request, "home.html", {"models": page.items, "more": page.next_cursor is not None}
    )
