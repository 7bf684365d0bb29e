"""The dashboard's pages, rendered on the server (no CDN: everything works offline)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from keel.domain.registry import ModelQuery
from keel.services.backend import Backend
from keel.web.rendering import NO_STORE, templates
from keel.web.session import Reader, get_backend

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, principal: Reader, backend: Annotated[Backend, Depends(get_backend)]
) -> HTMLResponse:
    page = backend.registry.list_models(ModelQuery(), limit=50)
    context = {
        "principal": principal.name,
        "models": page.items,
        "more": page.next_cursor is not None,
    }
    response: HTMLResponse = templates.TemplateResponse(
        request, "home.html", context, headers=NO_STORE
    )
    return response
