"""Incidents: the open and recent ones (filtered), and each one's timeline with its actions
(acknowledge, resolve, comment, the post-mortem), through `Incidents` as the API does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from keel.domain.incidents import MAX_COMMENT, MAX_POSTMORTEM, Incident
from keel.domain.permissions import Permission, Principal, allows
from keel.errors import InvalidInput, KeelError, NotFound, PermissionDenied
from keel.schemas.base import Id
from keel.services.backend import Backend
from keel.web.csrf import FormToken, check_form_token
from keel.web.flash import redirect_with, render
from keel.web.session import PageDenied, Reader, SignedIn, get_backend

router = APIRouter(include_in_schema=False)

Writer = Annotated[Principal, Depends(SignedIn(Permission.WRITE))]
BackendDep = Annotated[Backend, Depends(get_backend)]
STATUSES = ("open", "triggered", "acknowledged", "resolved", "all")
SHOWN = 100


@router.get("/incidents", response_class=HTMLResponse)
def incidents(
    request: Request,
    principal: Reader,
    backend: BackendDep,
    status: Annotated[str, Query(max_length=32)] = "open",
    model: Annotated[str, Query(max_length=128)] = "",
    team: Annotated[str, Query(max_length=128)] = "",
) -> HTMLResponse:
    filters = {"status": status, "model": model.strip(), "team": team.strip()}
    error: str | None = None
    found: list[Incident] = []
    try:
        found = backend.incidents.list(
            model=filters["model"] or None,
            team=filters["team"] or None,
            status=None if status == "all" else status,
            by=principal,
            limit=SHOWN,
        )
    except (InvalidInput, NotFound) as bad:
        error = bad.message
    context = {
        "principal": principal.name,
        "incidents": found,
        "filters": filters,
        "statuses": STATUSES,
        "shown": SHOWN,
        "error": error,
    }
    return render(request, "incidents.html", context, status=422 if error else 200)


def _detail(
    request: Request,
    principal: Principal,
    backend: Backend,
    incident_id: Id,
    *,
    status: int = 200,
    form_error: dict[str, Any] | None = None,
) -> HTMLResponse:
    try:
        incident = backend.incidents.get_visible(principal, incident_id)
    except NotFound:
        missing: dict[str, Any] = {
            "principal": principal.name,
            "heading": "No such incident",
            "message": f"There is no incident {incident_id}. See the open ones on the incidents "
            "page.",
            "back": "/incidents",
        }
        return render(request, "missing.html", missing, status=404)
    except PermissionDenied as denied:
        raise PageDenied(principal.name, denied.message) from None
    team = backend.incidents.store.team_of(incident.model)
    context = {
        "principal": principal.name,
        "incident": incident,
        "may_write": allows(principal, Permission.WRITE, team),
        "max_comment": MAX_COMMENT,
        "max_postmortem": MAX_POSTMORTEM,
        "form_error": form_error or {},
    }
    return render(request, "incident.html", context, status=status)


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident(
    request: Request, incident_id: Id, principal: Reader, backend: BackendDep
) -> HTMLResponse:
    return _detail(request, principal, backend, incident_id)


def _act(
    request: Request,
    principal: Principal,
    backend: Backend,
    incident_id: Id,
    form: str,
    text: str,
    action: Callable[[], object],
    done: str,
) -> Response:
    """Run ``action``; a refusal is shown as the service words it, and writes nothing."""
    here = f"/incidents/{incident_id}"
    try:
        action()
    except NotFound:
        return _detail(request, principal, backend, incident_id)
    except PermissionDenied as denied:
        raise PageDenied(principal.name, denied.message) from None
    except InvalidInput as invalid:
        form_error = {"form": form, "message": invalid.message, "text": text}
        return _detail(request, principal, backend, incident_id, status=422, form_error=form_error)
    except KeelError as refused:
        return redirect_with(request, here, refused.message, error=True)
    return redirect_with(request, here, done)


@router.post("/incidents/{incident_id}/acknowledge")
def acknowledge(
    request: Request,
    incident_id: Id,
    principal: Writer,
    backend: BackendDep,
    comment: Annotated[str, Form()] = "",
    csrf_token: FormToken = "",
) -> Response:
    check_form_token(request, csrf_token)
    return _act(
        request,
        principal,
        backend,
        incident_id,
        "status",
        comment,
        lambda: backend.incidents.acknowledge(principal, incident_id, comment),
        f"You acknowledged incident {incident_id}.",
    )


@router.post("/incidents/{incident_id}/resolve")
def resolve(
    request: Request,
    incident_id: Id,
    principal: Writer,
    backend: BackendDep,
    comment: Annotated[str, Form()] = "",
    csrf_token: FormToken = "",
) -> Response:
    check_form_token(request, csrf_token)
    return _act(
        request,
        principal,
        backend,
        incident_id,
        "status",
        comment,
        lambda: backend.incidents.resolve(principal, incident_id, comment),
        f"You resolved incident {incident_id}.",
    )


@router.post("/incidents/{incident_id}/comment")
def comment(
    request: Request,
    incident_id: Id,
    principal: Writer,
    backend: BackendDep,
    text: Annotated[str, Form()] = "",
    csrf_token: FormToken = "",
) -> Response:
    check_form_token(request, csrf_token)
    return _act(
        request,
        principal,
        backend,
        incident_id,
        "comment",
        text,
        lambda: backend.incidents.comment(principal, incident_id, text),
        "Your comment is on the timeline.",
    )


@router.post("/incidents/{incident_id}/postmortem")
def postmortem(
    request: Request,
    incident_id: Id,
    principal: Writer,
    backend: BackendDep,
    markdown: Annotated[str, Form()] = "",
    csrf_token: FormToken = "",
) -> Response:
    check_form_token(request, csrf_token)
    return _act(
        request,
        principal,
        backend,
        incident_id,
        "postmortem",
        markdown,
        lambda: backend.incidents.set_postmortem(principal, incident_id, markdown),
        "The post-mortem is saved.",
    )
