"""Wire models for maturity scores and attestations."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from keel.schemas.base import WireIn, WireOut


class EvidenceOut(WireOut):
    kind: str
    id: str
    at: datetime | None
    note: str


class CriterionOut(WireOut):
    id: str
    title: str
    status: str = Field(description="met, missing, needs attestation, or attested.")
    evidence: list[EvidenceOut]
    missing: str
    next_step: str
    attestable: bool


class LevelOut(WireOut):
    scale: str
    level: int
    top: int
    next_needs: list[str] = Field(description="The criteria the next level still needs.")


class MaturityOut(WireOut):
    scope: str = Field(description="model or team.")
    subject: str
    google: LevelOut
    microsoft: LevelOut
    criteria: list[CriterionOut]
    models: list[str] = Field(description="For a team: the models scored.")


class AttestationIn(WireIn):
    criterion: str = Field(max_length=64)
    comment: str = Field(max_length=2000)
    model: str | None = Field(default=None, max_length=128)
    team: str | None = Field(default=None, max_length=128)


class AttestationOut(WireOut):
    id: int
    scope: str
    subject: str
    criterion: str
    comment: str
    attested_by: str
    attested_at: datetime
