"""Wire models for the EU AI Act risk questionnaire and assessments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from keel.domain.registry import RiskTier
from keel.domain.risk import Category
from keel.schemas.base import WireIn, WireOut


class QuestionOut(WireOut):
    id: str
    category: Category
    area: str
    article: str
    text: str
    follow_up: bool = Field(
        description="Asked (and required) only when some Annex III area is answered yes."
    )


class QuestionnaireOut(WireOut):
    version: int
    questions: list[QuestionOut]


class RiskAssessmentIn(WireIn):
    """Answers to the questionnaire: ``{question id: true | false}``.

    The values are checked by the server (unknown ids, non-boolean and missing answers are
    refused naming the question), so they are taken as sent here.
    """

    answers: dict[str, Any] = Field(max_length=200)


class RiskAssessmentOut(WireOut):
    id: int
    model: str
    tier: RiskTier
    previous_tier: RiskTier
    rationale: str
    answers: dict[str, bool]
    questionnaire_version: int
    assessed_by: str
    assessed_at: datetime
