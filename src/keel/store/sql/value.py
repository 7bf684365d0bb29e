"""Value models and maturity attestations over SQLAlchemy Core; every write is audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from keel.domain.value import ValueKind, ValueModel
from keel.errors import NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables import models
from keel.store.sql.tables_value import maturity_attestations, value_models


@dataclass(frozen=True)
class Attestation:
    """An admin's word that a maturity criterion holds for a model or team."""

    id: int
    scope: str
    subject: str
    criterion: str
    comment: str
    attested_by: str
    attested_at: datetime


def _value_model(model: str, row: Any) -> ValueModel:
    return ValueModel(
        model=model,
        kind=ValueKind(row.kind),
        currency=row.currency,
        amounts={str(k): float(v) for k, v in dict(row.amounts).items()},
        expected_monthly_value=row.expected_monthly_value,
        updated_by=row.updated_by,
        updated_at=codec.utc(row.updated_at),
    )


def _attestation(row: Any) -> Attestation:
    return Attestation(
        id=int(row.id),
        scope=row.scope,
        subject=row.subject,
        criterion=row.criterion,
        comment=row.comment,
        attested_by=row.attested_by,
        attested_at=codec.utc(row.attested_at),
    )


class SqlValueStore:
    """Where value models and attestations live."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlValueStore(backend={self._engine.dialect.name!r})"

    def set_value_model(self, value: ValueModel, actor: str) -> ValueModel:
        """Store ``value`` as its model's value model (replacing any), audited as value.set."""
        now = datetime.now(UTC)
        fields = {
            "kind": value.kind.value,
            "currency": value.currency,
            "amounts": dict(value.amounts),
            "expected_monthly_value": value.expected_monthly_value,
            "updated_by": actor,
            "updated_at": now,
        }
        with write_transaction(self._engine) as conn:
            model_id = conn.execute(
                select(models.c.id).where(models.c.name == value.model)
            ).scalar()
            if model_id is None:
                raise NotFound(f"No model named {value.model!r}.", {"model": value.model})
            old = conn.execute(
                select(value_models).where(value_models.c.model_id == model_id)
            ).first()
            if old is None:
                conn.execute(value_models.insert().values(model_id=model_id, **fields))
            else:
                conn.execute(
                    update(value_models).where(value_models.c.id == old.id).values(**fields)
                )
            audit.append(
                conn,
                actor=actor,
                action="value.set",
                subject_type="model",
                subject_id=value.model,
                details={
                    "kind": value.kind.value,
                    "currency": value.currency,
                    "amounts": dict(value.amounts),
                    "expected_monthly_value": value.expected_monthly_value,
                    "previous": None
                    if old is None
                    else {"kind": old.kind, "amounts": dict(old.amounts)},
                },
            )
            row = conn.execute(
                select(value_models).where(value_models.c.model_id == model_id)
            ).one()
            return _value_model(value.model, row)

    def value_model(self, model: str) -> ValueModel | None:
        """The model's value model, None when none was set."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(value_models)
                .join(models, models.c.id == value_models.c.model_id)
                .where(models.c.name == model)
            ).first()
            return None if row is None else _value_model(model, row)

    def value_models(self, names: Sequence[str] | None = None) -> list[tuple[ValueModel, int]]:
        """The value models of ``names`` (None: every model's), each with its model's latest
        version number, by model name, in one statement."""
        query = (
            select(value_models, models.c.name.label("model_name"), models.c.latest_version)
            .join(models, models.c.id == value_models.c.model_id)
            .order_by(models.c.name)
        )
        if names is not None:
            query = query.where(models.c.name.in_(list(names)))
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return [(_value_model(r.model_name, r), int(r.latest_version)) for r in rows]

    def attest(
        self, scope: str, subject: str, criterion: str, comment: str, actor: str
    ) -> Attestation:
        """Record an attestation, audited as maturity.attest in the same transaction."""
        now = datetime.now(UTC)
        with write_transaction(self._engine) as conn:
            new_id = conn.execute(
                maturity_attestations.insert()
                .values(
                    scope=scope,
                    subject=subject,
                    criterion=criterion,
                    comment=comment,
                    attested_by=actor,
                    attested_at=now,
                )
                .returning(maturity_attestations.c.id)
            ).scalar_one()
            audit.append(
                conn,
                actor=actor,
                action="maturity.attest",
                subject_type=scope,
                subject_id=subject,
                details={"attestation_id": int(new_id), "criterion": criterion, "comment": comment},
            )
            row = conn.execute(
                select(maturity_attestations).where(maturity_attestations.c.id == new_id)
            ).one()
            return _attestation(row)

    def attestations(self, scope: str, subject: str) -> dict[str, Attestation]:
        """The newest attestation of each criterion for the subject."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                select(maturity_attestations)
                .where(
                    maturity_attestations.c.scope == scope,
                    maturity_attestations.c.subject == subject,
                )
                .order_by(maturity_attestations.c.id)
            ).all()
        return {row.criterion: _attestation(row) for row in rows}
