"""EU AI Act risk classification: the questionnaire, and assessments of a model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from keel.api.deps import Reader, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.risk import Questionnaire, RiskAssessment
from keel.schemas.risk import QuestionnaireOut, QuestionOut, RiskAssessmentIn, RiskAssessmentOut
from keel.services.backend import Backend
from keel.services.risk import RiskClassification

router = APIRouter(prefix=API_PREFIX, tags=["risk"])


def get_risk(backend: Annotated[Backend, Depends(get_backend)]) -> RiskClassification:
    return backend.risk


RiskDep = Annotated[RiskClassification, Depends(get_risk)]


def questionnaire_out(questionnaire: Questionnaire) -> QuestionnaireOut:
    return QuestionnaireOut(
        version=questionnaire.version,
        questions=[
            QuestionOut(
                id=q.id,
                category=q.category,
                area=q.area,
                article=q.article,
                text=q.text,
                follow_up=q.follow_up,
            )
            for q in questionnaire.questions
        ],
    )


def assessment_out(assessment: RiskAssessment) -> RiskAssessmentOut:
    return RiskAssessmentOut(
        id=assessment.id,
        model=assessment.model,
        tier=assessment.tier,
        previous_tier=assessment.previous_tier,
        rationale=assessment.rationale,
        answers=dict(assessment.answers),
        questionnaire_version=assessment.questionnaire_version,
        assessed_by=assessment.assessed_by,
        assessed_at=assessment.assessed_at,
    )


@router.get("/risk/questionnaire", summary="The EU AI Act risk questionnaire")
def get_questionnaire(risk: RiskDep, _: Reader) -> QuestionnaireOut:
    return questionnaire_out(risk.questionnaire())


@router.post(
    "/models/{name}/risk-assessments",
    status_code=201,
    summary="Assess a model's risk tier (changing the tier needs an approver)",
)
def assess(name: str, body: RiskAssessmentIn, risk: RiskDep, caller: Writer) -> RiskAssessmentOut:
    return assessment_out(risk.assess(caller, name, body.answers))


@router.get("/models/{name}/risk-assessments", summary="A model's risk assessments, oldest first")
def list_assessments(name: str, risk: RiskDep, _: Reader) -> list[RiskAssessmentOut]:
    return [assessment_out(a) for a in risk.history(name)]
