"""Deployments: the rollouts in progress with each step's analysis, and the recent ones; pause,
resume and abort through `Deployments`, as the API does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse

from keel.domain.deployments import Deployment, DeploymentEvent
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
RECENT = 20
MAX_REASON = 2000  # as the API's MoveIn.reason
_ANALYSED = ("measured", "advanced", "paused", "aborted", "promoted")


@dataclass(frozen=True)
class StepView:
    number: int
    weight: float
    min_duration_s: float | None
    min_requests: int | None
    where: str  # done, current or to come
    analysis: dict[str, Any] | None  # the step's latest measurement (details of the event)


@dataclass(frozen=True)
class RolloutView:
    deployment: Deployment
    steps: tuple[StepView, ...]
    events: tuple[DeploymentEvent, ...] = field(default=())


def _steps(found: Deployment, events: Sequence[DeploymentEvent]) -> tuple[StepView, ...]:
    latest: dict[int, dict[str, Any]] = {}
    for event in events:
        step = event.details.get("step")
        if event.kind in _ANALYSED and isinstance(step, int) and "verdict" in event.details:
            latest[step] = dict(event.details)
    views = []
    for index, step in enumerate(found.plan.steps):
        if found.state.active:
            where = (
                "done" if index < found.step else ("current" if index == found.step else "to come")
            )
        else:
            where = "done" if index <= found.step else "not reached"
        views.append(
            StepView(
                index + 1,
                step.weight,
                step.min_duration_s,
                step.min_requests,
                where,
                latest.get(index),
            )
        )
    return tuple(views)


@router.get("/deployments", response_class=HTMLResponse)
def deployments(request: Request, principal: Reader, backend: BackendDep) -> HTMLResponse:
    active = backend.deployments.list(active_only=True)
    events = backend.deployments.events_of([d.id for d in active])
    rollouts = [RolloutView(d, _steps(d, events[d.id]), tuple(events[d.id][-5:])) for d in active]
    recent = [d for d in backend.deployments.list()[: RECENT + len(active)] if not d.state.active]
    context = {
        "principal": principal.name,
        "rollouts": rollouts,
        "recent": recent[:RECENT],
        "may_write": allows(principal, Permission.WRITE),
        "max_reason": MAX_REASON,
    }
    return render(request, "deployments.html", context)


def _move(
    request: Request,
    principal: Principal,
    backend: Backend,
    deployment_id: Id,
    verb: str,
    reason: str,
) -> Response:
    try:
        if len(reason) > MAX_REASON:
            raise InvalidInput(
                f"The 'reason' field is {len(reason)} characters long; the limit is {MAX_REASON}.",
                {"field": "reason"},
            )
        found = backend.deployments.store.get(deployment_id)
        if not found.state.active:
            return redirect_with(
                request,
                "/deployments",
                f"Deployment {deployment_id} of {found.model} is {found.state}: only a rollout "
                "in progress can be paused, resumed or aborted.",
                error=True,
            )
        service = backend.deployments
        if verb == "pause":
            service.pause(principal, found.model, reason)
        elif verb == "resume":
            service.resume(principal, found.model)
        else:
            service.abort(principal, found.model, reason)
    except PermissionDenied as denied:
        raise PageDenied(principal.name, denied.message) from None
    except NotFound as missing:
        return redirect_with(request, "/deployments", missing.message, error=True)
    except KeelError as refused:
        return redirect_with(request, "/deployments", refused.message, error=True)
    done = {"pause": "paused", "resume": "resumed", "abort": "aborted"}[verb]
    return redirect_with(request, "/deployments", f"You {done} the rollout of {found.model}.")


@router.post("/deployments/{deployment_id}/pause")
def pause(
    request: Request,
    deployment_id: Id,
    principal: Writer,
    backend: BackendDep,
    reason: Annotated[str, Form()] = "",
    csrf_token: FormToken = "",
) -> Response:
    check_form_token(request, csrf_token)
    return _move(request, principal, backend, deployment_id, "pause", reason)


@router.post("/deployments/{deployment_id}/resume")
def resume(
    request: Request,
    deployment_id: Id,
    principal: Writer,
    backend: BackendDep,
    csrf_token: FormToken = "",
) -> Response:
    check_form_token(request, csrf_token)
    return _move(request, principal, backend, deployment_id, "resume", "")


@router.post("/deployments/{deployment_id}/abort")
def abort(
    request: Request,
    deployment_id: Id,
    principal: Writer,
    backend: BackendDep,
    reason: Annotated[str, Form()] = "",
    csrf_token: FormToken = "",
) -> Response:
    check_form_token(request, csrf_token)
    return _move(request, principal, backend, deployment_id, "abort", reason)
