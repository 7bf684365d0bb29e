"""Delivery and maturity: the DORA metrics of the portfolio and of each team, with the
deployments and failures behind the numbers, and the maturity of a chosen model or team, each
criterion with its evidence or its next step (`Delivery`, `MaturityScoring`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from keel.errors import InvalidInput, NotFound
from keel.services.backend import Backend
from keel.web.flash import render
from keel.web.session import Reader, get_backend

router = APIRouter(include_in_schema=False)

BackendDep = Annotated[Backend, Depends(get_backend)]
PERIODS = (30, 90, 180, 365)
DRILLS = ("deployments", "failures", "rework")


@router.get("/delivery", response_class=HTMLResponse)
def delivery(
    request: Request,
    principal: Reader,
    backend: BackendDep,
    days: Annotated[int, Query(ge=1, le=3650)] = 90,
    show: Annotated[str, Query(max_length=32)] = "",
    subject: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    errors: list[str] = []
    if show and show not in DRILLS:
        errors.append(f"The 'show' field must be one of {', '.join(DRILLS)}. Got {show!r}.")
        show = ""
    end = datetime.now(UTC)
    start = end - timedelta(days=days)
    portfolio = backend.delivery.metrics(start=start, end=end)
    teams = backend.delivery.metrics_by_team(start=start, end=end)
    registered = backend.costs.store.models()
    team_names = sorted({m.team for m in registered})
    # A team's score scores each of its models, so the page shows a model's unless asked.
    subject = subject.strip() or (f"model:{registered[0].name}" if registered else "")
    score = None
    if subject:
        scope, _, name = subject.partition(":")
        try:
            if scope == "team":
                score = backend.maturity.score_team(name)
            elif scope == "model":
                score = backend.maturity.score_model(name)
            else:
                errors.append(
                    f"The 'subject' field must be team:NAME or model:NAME. Got {subject!r}."
                )
        except (InvalidInput, NotFound) as bad:
            errors.append(bad.message)
    context: dict[str, Any] = {
        "principal": principal.name,
        "days": days,
        "periods": PERIODS,
        "show": show,
        "portfolio": portfolio,
        "teams": teams,
        "subject": subject,
        "subjects": [f"team:{t}" for t in team_names] + [f"model:{m.name}" for m in registered],
        "score": score,
        "errors": errors,
    }
    return render(request, "delivery.html", context, status=422 if errors else 200)
