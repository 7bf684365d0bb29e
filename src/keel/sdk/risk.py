"""The EU AI Act risk questionnaire and a model's assessments, as `Client` methods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from keel.errors import InvalidInput, TransportError
from keel.schemas.risk import QuestionnaireOut, RiskAssessmentIn, RiskAssessmentOut

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"


class RiskMixin:
    """Risk classification; mixed into `keel.sdk.Client`."""

    if TYPE_CHECKING:

        def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M: ...
        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...
        def _parse(self, model: type[M], data: Any) -> M: ...
        def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...

    def risk_questionnaire(self) -> QuestionnaireOut:
        """The questions (id, EU AI Act article, text) an assessment answers with true/false."""
        return self._call(QuestionnaireOut, "GET", f"{_API}/risk/questionnaire")

    def assess_risk(self, model: str, answers: Mapping[str, bool]) -> RiskAssessmentOut:
        """Answer the questionnaire for ``model``; the result's ``tier`` becomes its risk tier.

        Every question must be answered (the Art. 6(3) follow-ups only after an Annex III yes).
        Changing the model's tier needs the approver role in its team: a contributor gets
        `keel.errors.PermissionDenied` unless the answers confirm the current tier.
        """
        if not isinstance(answers, Mapping):
            raise InvalidInput(
                "answers must map question ids to True or False (see risk_questionnaire()).",
                {"field": "answers"},
            )
        body = RiskAssessmentIn(answers=dict(answers))
        return self._call(
            RiskAssessmentOut,
            "POST",
            f"{_API}/models/{quote(model, safe='')}/risk-assessments",
            json=body.model_dump(mode="json"),
        )

    def risk_assessments(self, model: str) -> list[RiskAssessmentOut]:
        """Every assessment of ``model``, oldest first; the last one set its current tier."""
        data = self._json("GET", f"{_API}/models/{quote(model, safe='')}/risk-assessments")
        if not isinstance(data, list):
            raise TransportError(f"The server answered a list of assessments with {data!r}.")
        return [self._parse(RiskAssessmentOut, item) for item in data]
