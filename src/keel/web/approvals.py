"""The approvals queue: what waits for the signed-in person's sign-off, with the evidence.

Approving and rejecting call `Governance.approve` / `reject`, the same as the API: the service
enforces the role, separation of duties and gates first, and its refusal is shown as it is.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse

from keel.domain.permissions import Permission, Principal, allows
from keel.errors import InvalidInput, KeelError, PermissionDenied
from keel.schemas.base import Id
from keel.services.backend import Backend
from keel.services.governance.pipeline import MAX_COMMENT
from keel.web.csrf import FormToken, check_form_token
from keel.web.flash import redirect_with, render
from keel.web.session import PageDenied, Reader, SignedIn, get_backend

router = APIRouter(include_in_schema=False)

Approver = Annotated[Principal, Depends(SignedIn(Permission.APPROVE))]
BackendDep = Annotated[Backend, Depends(get_backend)]


def _page(
    request: Request,
    principal: Principal,
    backend: Backend,
    *,
    status: int = 200,
    form_error: dict[str, Any] | None = None,
) -> HTMLResponse:
    context = {
        "principal": principal.name,
        "may_approve": allows(principal, Permission.APPROVE),
        "waiting": backend.governance.waiting_for(principal),
        "max_comment": MAX_COMMENT,
        "form_error": form_error,
    }
    return render(request, "approvals.html", context, status=status)


@router.get("/approvals", response_class=HTMLResponse)
def approvals(request: Request, principal: Reader, backend: BackendDep) -> HTMLResponse:
    return _page(request, principal, backend)


def _decide(
    request: Request,
    principal: Principal,
    backend: Backend,
    model: str,
    version: Id,
    comment: str,
    verb: str,
) -> Response:
    decide = backend.governance.approve if verb == "approve" else backend.governance.reject
    try:
        decide(principal, model, version, comment)
    except PermissionDenied as denied:
        raise PageDenied(principal.name, denied.message) from None
    except InvalidInput as invalid:
        form_error = {
            "model": model,
            "version": version,
            "message": invalid.message,
            "comment": comment,
        }
        return _page(request, principal, backend, status=422, form_error=form_error)
    except KeelError as refused:
        return redirect_with(request, "/approvals", refused.message, error=True)
    done = "approved" if verb == "approve" else "rejected"
    return redirect_with(request, "/approvals", f"You {done} {model} version {version}.")


@router.post("/approvals/{model}/{version}/approve")
def approve(
    request: Request,
    model: str,
    version: Id,
    principal: Approver,
    backend: BackendDep,
    comment: Annotated[str, Form()] = "",
    csrf_token: FormToken = "",
) -> Response:
    check_form_token(request, csrf_token)
    return _decide(request, principal, backend, model, version, comment, "approve")


@router.post("/approvals/{model}/{version}/reject")
def reject(
    request: Request,
    model: str,
    version: Id,
    principal: Approver,
    backend: BackendDep,
    comment: Annotated[str, Form()] = "",
    csrf_token: FormToken = "",
) -> Response:
    check_form_token(request, csrf_token)
    return _decide(request, principal, backend, model, version, comment, "reject")
