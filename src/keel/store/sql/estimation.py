"""Label-free performance estimators over SQLAlchemy Core; setting and fitting are audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from keel.domain.estimation import EstimationMethod, Estimator, EstimatorState
from keel.errors import NotFound
from keel.store.sql import audit, codec
from keel.store.sql.engine import read_transaction, write_transaction
from keel.store.sql.tables_estimation import estimators


def _estimator(row: Any) -> Estimator:
    params = dict(row.params) if row.params else None
    return Estimator(
        model=row.model,
        version=int(row.version),
        state=EstimatorState(row.state),
        method=EstimationMethod(row.method),
        reference_rows=int(row.reference_rows),
        set_by=row.set_by,
        set_at=codec.utc(row.set_at),
        job_id=row.job_id,
        fitted_at=codec.utc(row.fitted_at) if row.fitted_at is not None else None,
        error=row.error,
        summary=params.get("summary") if params else None,
    )


class SqlEstimatorStore:
    """Where each model version's estimator and its reference rows live."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlEstimatorStore(backend={self._engine.dialect.name!r})"

    def set_reference(
        self,
        model: str,
        version: int,
        method: EstimationMethod,
        rows: int,
        data: bytes,
        actor: str,
    ) -> Estimator:
        """Store the estimation reference rows (replacing any estimator), state ``queued``."""
        fields = {
            "state": EstimatorState.QUEUED.value,
            "method": method.value,
            "reference_rows": rows,
            "reference_data": data,
            "params": None,
            "error_model": None,
            "error": None,
            "job_id": None,
            "set_by": actor,
            "set_at": datetime.now(UTC),
            "fitted_at": None,
        }
        with write_transaction(self._engine) as conn:
            where = (estimators.c.model == model) & (estimators.c.version == version)
            old = conn.execute(select(estimators.c.id).where(where)).first()
            if old is None:
                conn.execute(estimators.insert().values(model=model, version=version, **fields))
            else:
                conn.execute(update(estimators).where(estimators.c.id == old.id).values(**fields))
            audit.append(
                conn,
                actor=actor,
                action="estimation.reference_set",
                subject_type="model_version",
                subject_id=f"{model}/{version}",
                details={"method": method.value, "rows": rows},
            )
            return _estimator(conn.execute(select(estimators).where(where)).one())

    def set_job(self, model: str, version: int, job_id: int) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(estimators)
                .where((estimators.c.model == model) & (estimators.c.version == version))
                .values(job_id=job_id)
            )

    def get(self, model: str, version: int) -> Estimator | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(estimators).where(
                    (estimators.c.model == model) & (estimators.c.version == version)
                )
            ).first()
        return None if row is None else _estimator(row)

    def reference_data(self, model: str, version: int) -> tuple[Estimator, bytes]:
        """The estimator and its reference rows (Parquet bytes)."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(estimators).where(
                    (estimators.c.model == model) & (estimators.c.version == version)
                )
            ).first()
        if row is None or row.reference_data is None:
            raise NotFound(
                f"Version {version} of {model!r} has no estimation reference; set the "
                "reference with the model's predictions, scores and labels first.",
                {"model": model, "version": version},
            )
        return _estimator(row), bytes(row.reference_data)

    def fitted(self, model: str, version: int) -> tuple[Estimator, dict[str, Any], bytes | None]:
        """A fitted estimator's numbers (and DLE's error model file)."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(estimators).where(
                    (estimators.c.model == model)
                    & (estimators.c.version == version)
                    & (estimators.c.state == EstimatorState.FITTED.value)
                )
            ).first()
        if row is None:
            raise NotFound(
                f"Version {version} of {model!r} has no fitted estimator.",
                {"model": model, "version": version},
            )
        model_file = bytes(row.error_model) if row.error_model is not None else None
        return _estimator(row), dict(row.params), model_file

    def record_fit(
        self,
        model: str,
        version: int,
        set_at: datetime,
        params: dict[str, Any],
        error_model: bytes | None,
        actor: str,
    ) -> bool:
        """Store a fit of the reference set at ``set_at``; False when a newer reference replaced
        it meanwhile (the fit is dropped: the newer reference's own job fits it)."""
        return self._finish(model, version, set_at, actor, params=params, model_file=error_model)

    def record_failure(
        self, model: str, version: int, set_at: datetime, error: str, actor: str
    ) -> bool:
        return self._finish(model, version, set_at, actor, error=error)

    def _finish(
        self,
        model: str,
        version: int,
        set_at: datetime,
        actor: str,
        *,
        params: dict[str, Any] | None = None,
        model_file: bytes | None = None,
        error: str | None = None,
    ) -> bool:
        state = EstimatorState.FAILED if error is not None else EstimatorState.FITTED
        with write_transaction(self._engine) as conn:
            row = conn.execute(
                select(estimators.c.id, estimators.c.set_at).where(
                    (estimators.c.model == model) & (estimators.c.version == version)
                )
            ).first()
            # Compared here, not in SQL: SQLite keeps datetimes as text.
            done = row is not None and codec.utc(row.set_at) == set_at
            if row is not None and done:
                conn.execute(
                    update(estimators)
                    .where(estimators.c.id == row.id)
                    .values(
                        state=state.value,
                        params=params,
                        error_model=model_file,
                        error=error,
                        fitted_at=datetime.now(UTC),
                    )
                )
                audit.append(
                    conn,
                    actor=actor,
                    action=f"estimation.{state.value}",
                    subject_type="model_version",
                    subject_id=f"{model}/{version}",
                    details={"error": error} if error else (params or {}).get("summary", {}),
                )
        return bool(done)
