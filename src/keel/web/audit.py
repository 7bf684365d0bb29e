"""The audit trail for admins: a searchable log (query parameters, so a search is a link), and
whether the hash chain verifies, as `keel audit verify` reports it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from keel.domain.permissions import Permission, Principal
from keel.services.backend import Backend
from keel.web.flash import render
from keel.web.session import SignedIn, get_backend

router = APIRouter(include_in_schema=False)

Admin = Annotated[Principal, Depends(SignedIn(Permission.ADMIN))]
BackendDep = Annotated[Backend, Depends(get_backend)]
PAGE = 100
Text = Annotated[str, Query(max_length=256)]


@router.get("/audit", response_class=HTMLResponse)
def audit(
    request: Request,
    principal: Admin,
    backend: BackendDep,
    actor: Text = "",
    action: Text = "",
    subject_type: Text = "",
    subject_id: Text = "",
    since: Annotated[str, Query(max_length=10)] = "",
    after: Annotated[str, Query(max_length=18)] = "",
) -> HTMLResponse:
    filters = {
        "actor": actor.strip(),
        "action": action.strip(),
        "subject_type": subject_type.strip(),
        "subject_id": subject_id.strip(),
        "since": since.strip(),
    }
    errors: list[str] = []
    since_at: datetime | None = None
    if filters["since"]:
        try:
            since_at = datetime.combine(
                date.fromisoformat(filters["since"]), datetime.min.time(), UTC
            )
        except ValueError:
            errors.append(
                f"The 'since' field must be a date as YYYY-MM-DD. Got {filters['since']!r} instead."
            )
    if after and not after.isdigit():
        errors.append(f"The 'after' field must be an event number. Got {after!r} instead.")
    events = []
    if not errors:
        events = backend.audit.events(
            principal,
            actor=filters["actor"] or None,
            action=filters["action"] or None,
            subject_type=filters["subject_type"] or None,
            subject_id=filters["subject_id"] or None,
            since=since_at,
            after_seq=int(after or 0),
            limit=PAGE,
        )
    more = {k: v for k, v in filters.items() if v}
    context = {
        "principal": principal.name,
        "filters": filters,
        "events": events,
        "errors": errors,
        "next_after": events[-1].seq if len(events) == PAGE else None,
        "more": more,
        "verification": backend.audit.verify(principal),
    }
    return render(request, "audit.html", context, status=422 if errors else 200)
