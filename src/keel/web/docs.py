"""The interactive API documentation (Swagger UI), served offline from an installed package."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from keel.web.rendering import templates
from keel.web.session import Public

router = APIRouter(include_in_schema=False, dependencies=[Depends(Public())])


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    context = {"title": f"{request.app.title} API", "openapi_url": request.app.openapi_url}
    response: HTMLResponse = templates.TemplateResponse(request, "docs.html", context)
    return response
