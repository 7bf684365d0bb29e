"""Risk assessments over SQLAlchemy Core; recording one also sets the model's tier, audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from keel.domain.registry import RiskTier
from keel.domain.risk import Classification, RiskAssessment
from keel.errors import Conflict, NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import models
from keel.store.sql.tables_risk import risk_assessments


def _assessment(model: str, row: Any) -> RiskAssessment:
    return RiskAssessment(
        id=int(row.id),
        model=model,
        tier=RiskTier(row.tier),
        previous_tier=RiskTier(row.previous_tier),
        rationale=row.rationale,
        answers={str(k): bool(v) for k, v in dict(row.answers).items()},
        questionnaire_version=int(row.questionnaire_version),
        assessed_by=row.assessed_by,
        assessed_at=codec.utc(row.assessed_at),
    )


class SqlRiskStore:
    """Where assessments live; the model's ``risk_tier`` column always equals the newest one."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlRiskStore(backend={self._engine.dialect.name!r})"

    def record(
        self,
        model: str,
        classification: Classification,
        questionnaire_version: int,
        actor: str,
        *,
        expected_tier: RiskTier,
    ) -> RiskAssessment:
        """Store the assessment and set the model's tier in one transaction with its audit event.

        ``expected_tier`` is the tier the caller's permission was judged against; if another
        assessment changed it meanwhile, nothing is written (`Conflict`).
        """
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            # Touching the row takes its lock on PostgreSQL, so assessments of one model queue.
            conn.execute(update(models).where(models.c.name == model).values(updated_at=now))
            row = conn.execute(
                select(models.c.id, models.c.risk_tier).where(models.c.name == model)
            ).first()
            if row is None:
                raise NotFound(f"No model named {model!r}.", {"model": model})
            current = RiskTier(row.risk_tier)
            if current != expected_tier:
                raise Conflict(
                    f"Model {model!r}'s risk tier changed to {current!s} while this assessment "
                    "was being judged. Look at `keel risk show` and assess again.",
                    {"model": model, "risk_tier": str(current)},
                )
            assessment_id = conn.execute(
                risk_assessments.insert()
                .values(
                    model_id=row.id,
                    tier=str(classification.tier),
                    previous_tier=str(current),
                    rationale=classification.rationale,
                    answers=dict(classification.answers),
                    questionnaire_version=questionnaire_version,
                    assessed_by=actor,
                    assessed_at=now,
                )
                .returning(risk_assessments.c.id)
            ).scalar_one()
            conn.execute(
                update(models)
                .where(models.c.id == row.id)
                .values(risk_tier=str(classification.tier))
            )
            audit.append(
                conn,
                actor=actor,
                action="risk.assess",
                subject_type="model",
                subject_id=model,
                details={
                    "assessment_id": int(assessment_id),
                    "tier": str(classification.tier),
                    "previous_tier": str(current),
                    "tier_changed": classification.tier != current,
                    "articles": list(classification.articles),
                    "questionnaire_version": questionnaire_version,
                },
            )
            stored = conn.execute(
                select(risk_assessments).where(risk_assessments.c.id == assessment_id)
            ).one()
            return _assessment(model, stored)

    def history(self, model: str) -> list[RiskAssessment]:
        """Every assessment of ``model``, oldest first (`NotFound` for an unknown model)."""
        with read_transaction(self._engine) as conn:
            model_id = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
            if model_id is None:
                raise NotFound(f"No model named {model!r}.", {"model": model})
            rows = conn.execute(
                select(risk_assessments)
                .where(risk_assessments.c.model_id == model_id)
                .order_by(risk_assessments.c.id)
            ).all()
        return [_assessment(model, r) for r in rows]
