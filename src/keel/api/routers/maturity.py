"""Maturity scores of models and teams, and attestations of what Keel cannot observe."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from keel.api.deps import Admin, Reader, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.maturity import Level
from keel.schemas.maturity import (
    AttestationIn,
    AttestationOut,
    CriterionOut,
    EvidenceOut,
    LevelOut,
    MaturityOut,
)
from keel.services.backend import Backend
from keel.services.maturity import MaturityScore, MaturityScoring

router = APIRouter(prefix=API_PREFIX, tags=["maturity"])


def get_maturity(backend: Annotated[Backend, Depends(get_backend)]) -> MaturityScoring:
    return backend.maturity


MaturityDep = Annotated[MaturityScoring, Depends(get_maturity)]


def level_out(level: Level) -> LevelOut:
    return LevelOut(
        scale=level.scale, level=level.level, top=level.top, next_needs=list(level.next_needs)
    )


def maturity_out(score: MaturityScore) -> MaturityOut:
    return MaturityOut(
        scope=score.scope,
        subject=score.subject,
        google=level_out(score.google),
        microsoft=level_out(score.microsoft),
        criteria=[
            CriterionOut(
                id=r.criterion.id,
                title=r.criterion.title,
                status=r.status.value,
                evidence=[
                    EvidenceOut(kind=e.kind, id=e.id, at=e.at, note=e.note) for e in r.evidence
                ],
                missing=r.missing,
                next_step="" if r.holds else r.criterion.next_step,
                attestable=r.criterion.attestable,
            )
            for r in score.results
        ],
        models=list(score.models),
    )


@router.get(
    "/maturity",
    summary="Maturity of a model, a team, or (neither) every model and team, from evidence",
)
def maturity(
    scoring: MaturityDep,
    _: Reader,
    model: Annotated[str | None, Query(max_length=128)] = None,
    team: Annotated[str | None, Query(max_length=128)] = None,
) -> list[MaturityOut]:
    return [maturity_out(s) for s in scoring.scores(model=model, team=team)]


@router.post(
    "/maturity/attestations",
    status_code=201,
    summary="Attest a criterion Keel cannot observe (admins; audited)",
)
def attest(body: AttestationIn, scoring: MaturityDep, caller: Admin) -> AttestationOut:
    a = scoring.attest(caller, body.criterion, body.comment, model=body.model, team=body.team)
    return AttestationOut(
        id=a.id,
        scope=a.scope,
        subject=a.subject,
        criterion=a.criterion,
        comment=a.comment,
        attested_by=a.attested_by,
        attested_at=a.attested_at,
    )
