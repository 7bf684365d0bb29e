"""Estimation as a use case: set the estimation reference (which queues the fit as a job), read
the estimator, and estimate a window on demand or for the ``estimated_performance`` check.

Setting a version's reference with the model's predictions, scores and labels in it stores those
rows and queues an ``estimation-fit`` job; the worker fits CBPE's calibration or DLE's error
model and stores it. A newer reference replaces the estimator; a job fitting an older one
records nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pyarrow as pa

from keel.domain.estimation import EstimationMethod, Estimator, EstimatorState
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.telemetry import LABEL, PREDICTION, SCORE
from keel.errors import InvalidInput, KeelError, NotFound
from keel.services.estimation import reference as estimation_reference
from keel.services.estimation.reference import FittedEstimator
from keel.services.estimation.window import WindowEstimate, estimate_window
from keel.services.jobs import Handler, JobContext, Jobs
from keel.services.monitoring_checks import TelemetryReader
from keel.services.registry import Registry
from keel.store.sql.estimation import SqlEstimatorStore

ESTIMATION_FIT = "estimation-fit"


@dataclass(frozen=True)
class PreparedReference:
    """A reference's estimation rows, checked and ready to store."""

    model: str
    team: str | None
    version: int
    method: EstimationMethod
    rows: pa.Table


class Estimation:
    """Label-free performance estimators of model versions."""

    def __init__(
        self, store: SqlEstimatorStore, registry: Registry, telemetry: TelemetryReader
    ) -> None:
        self.store = store
        self.registry = registry
        self.telemetry = telemetry
        self._loaded: dict[tuple[str, int], tuple[datetime, FittedEstimator]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Estimation(store={self.store!r})"

    # -- the reference and its fit -------------------------------------------------------------

    def prepare_reference(
        self, by: Principal, model: str, version: int, table: pa.Table
    ) -> PreparedReference | None:
        """Check a reference's estimation rows before anything is stored: None when it carries
        no predictions and labels (estimation is left as it was); a clear error when it carries
        them but estimation cannot use them."""
        owner = self.registry.get_model(model)
        authorize(by, Permission.WRITE, owner.team)
        signature = self.registry.get_version(owner.name, version).signature
        found = estimation_reference.estimation_rows(table, signature)
        if found is None:
            return None
        method, rows = found
        if rows.num_rows == 0:
            raise InvalidInput(
                "The reference's label column is empty; estimation learns from labelled rows.",
                {"field": LABEL},
            )
        return PreparedReference(owner.name, owner.team, version, method, rows)

    def reference_set(self, by: Principal, jobs: Jobs, prepared: PreparedReference) -> Estimator:
        """Store the estimation rows of a new reference and queue their fit."""
        data = estimation_reference.to_parquet(prepared.rows)
        stored = self.store.set_reference(
            prepared.model, prepared.version, prepared.method, prepared.rows.num_rows, data, by.name
        )
        payload = {
            "model": prepared.model,
            "version": prepared.version,
            "set_at": stored.set_at.isoformat(),
        }
        job = jobs.submit(by, ESTIMATION_FIT, payload, team=prepared.team)
        self.store.set_job(prepared.model, prepared.version, job.id)
        return replace(stored, job_id=job.id)

    def fit_job(self) -> Handler:
        """The ``estimation-fit`` job: fit the estimator of the reference the job was queued
        for (a reference replaced meanwhile is left to its own job)."""

        def handle(context: JobContext) -> Mapping[str, Any]:
            payload = context.job.payload
            model, version = str(payload["model"]), int(payload["version"])
            set_at = datetime.fromisoformat(str(payload["set_at"]))
            estimator, data = self.store.reference_data(model, version)
            if estimator.set_at != set_at:
                return {"model": model, "version": version, "superseded": True}
            context.progress(f"fitting the {estimator.method} estimator of {model} v{version}")
            actor = str(payload.get("requested_by") or context.job.created_by)
            try:
                fitted = estimation_reference.fit(
                    estimator.method, estimation_reference.from_parquet(data)
                )
            except KeelError as exc:
                context.check()
                self.store.record_failure(model, version, set_at, exc.message, actor)
                raise
            context.check()
            model_file = fitted.dle.to_bytes() if fitted.dle is not None else None
            self.store.record_fit(model, version, set_at, fitted.params(), model_file, actor)
            return {"model": model, "version": version, **fitted.summary()}

        return handle

    # -- reading -------------------------------------------------------------------------------

    def estimator(self, by: Principal, model: str, version: int) -> Estimator:
        authorize(by, Permission.READ)
        owner = self.registry.get_model(model)
        self.registry.get_version(owner.name, version)
        found = self.store.get(owner.name, version)
        if found is None:
            raise NotFound(
                f"Version {version} of {owner.name!r} has no estimator: set its reference with "
                f"the model's '{PREDICTION}', '{SCORE}' (classifiers) and label columns.",
                {"model": owner.name, "version": version},
            )
        return found

    def fitted(self, model: str, version: int) -> FittedEstimator:
        """The version's fitted estimator (loaded once per fit)."""
        found = self.store.get(model, version)
        if found is None or found.state != EstimatorState.FITTED:
            state = "none" if found is None else f"{found.state}"
            reason = f": {found.error}" if found is not None and found.error else ""
            raise InvalidInput(
                f"Version {version} of {model!r} has no fitted estimator (state: {state}"
                f"{reason}). Set its reference with predictions, scores and labels, and let "
                "the estimation-fit job finish.",
                {"model": model, "version": version, "state": state},
            )
        with self._lock:
            cached = self._loaded.get((model, version))
            if cached is not None and cached[0] == found.set_at:
                return cached[1]
        estimator, params, model_file = self.store.fitted(model, version)
        loaded = estimation_reference.load(estimator.method, params, model_file)
        with self._lock:
            self._loaded[(model, version)] = (estimator.set_at, loaded)
        return loaded

    def window_estimate(
        self,
        model: str,
        version: int,
        reference_version: int,
        start: datetime,
        end: datetime,
        metrics: Sequence[str] = (),
    ) -> WindowEstimate:
        """Estimate ``version``'s window [start, end) with ``reference_version``'s estimator."""
        fitted = self.fitted(model, reference_version)
        features: list[str] = []
        if fitted.dle is not None:
            features = [*fitted.dle.encoding.numeric, *fitted.dle.encoding.categorical]
        table = self.telemetry.labelled_predictions(
            model, version, start, end, columns=features, include_unlabelled=True
        )
        return estimate_window(fitted, table, metrics)

    def estimate(
        self,
        by: Principal,
        model: str,
        version: int,
        start: datetime,
        end: datetime,
        metrics: Sequence[str] = (),
    ) -> WindowEstimate:
        """On demand: the estimate of a window, and the realized values of its labelled rows."""
        authorize(by, Permission.READ)
        owner = self.registry.get_model(model)
        self.registry.get_version(owner.name, version)
        if end <= start:
            raise InvalidInput("The window's 'end' must be after its 'start'.", {"field": "end"})
        return self.window_estimate(owner.name, version, version, start, end, metrics)
