"""The prediction gateway: a request's plan, its arm, its worker, its log and its metrics.

For each request: the model's `ServingPlan` (cached ≤ 1 s; none means 404), the arm that answers
(`keel.domain.traffic.pick_arm`, sticky on the plan's route key), the rows checked against that
version's signature (422 naming the column), the version's worker (loaded on first use, only when
its security gate passed), and the answer. Every request's rows are logged to telemetry off the
response path with the arm, the latency and, when the model failed, the error. A request the plan
mirrors is also sent to the shadow arm in the background; its answer is logged with arm "shadow"
and the same prediction ids, and never returned.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from keel.domain.incidents import Severity
from keel.domain.permissions import Grant, Permission, Principal, PrincipalKind, Role, authorize
from keel.domain.signature import Signature
from keel.domain.telemetry import (
    ARM,
    ERROR,
    LATENCY_MS,
    PREDICTION,
    PREDICTION_ID,
    SCORE,
    TIMESTAMP,
)
from keel.domain.traffic import Arm, RouteKeySource, ServingPlan, mirrors, pick_arm
from keel.errors import NotFound
from keel.services.backend import Backend
from keel.services.costs.compute_meter import ComputeMeter
from keel.services.model_workers import ModelUnavailable, ModelWorker, ModelWorkers, Outcome
from keel.services.servable import ServableVersions
from keel.services.telemetry_validation import UTC_MICROS
from keel.serving.callers import RecentCallers
from keel.serving.inputs import RequestRows, request_rows
from keel.serving.metrics import GatewayMetrics
from keel.serving.plans import MAX_AGE_S, CachedPlans, PlanSource
from keel.serving.prediction_log import PredictionLog

log = logging.getLogger("keel.serving")

# Who writes the gateway's telemetry and opens its incidents.
GATEWAY = Principal("keel-gateway", PrincipalKind.SERVICE, grants=(Grant(Role.ADMIN),))
# (signature) -> the request's named columns; protocols parse with the answering version's one.
Parser = Callable[[Signature], Mapping[str, list[Any]]]


@dataclass(frozen=True)
class GatewayOptions:
    timeout_s: float = 10.0  # per request, inside the worker: a model that hangs past it is killed
    memory_mb: int = 2048  # each worker's address-space limit
    log_predictions: bool = True  # False only for benchmarks: every prediction is logged
    compute_flush_s: float = 60.0  # how often serving compute-seconds are written (and on close)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewayOptions:
        return cls(
            timeout_s=float(env.get("KEEL_PREDICT_TIMEOUT_S", cls.timeout_s)),
            memory_mb=int(env.get("KEEL_MODEL_WORKER_MEMORY_MB", cls.memory_mb)),
            log_predictions=env.get("KEEL_PREDICTION_LOGGING", "on").strip().lower() != "off",
        )


@dataclass(frozen=True)
class Answer:
    model: str
    version: int
    arm: str
    predictions: list[Any]
    scores: list[float | None] | None
    prediction_ids: list[str]


def _plan_source(backend: Backend) -> PlanSource:
    """What serves each model: the deployments service reads it from the metadata store."""
    return backend.deployments


def _values(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _log_table(
    rows: RequestRows, arm: str, outcome: Outcome | None, error: str | None, latency_ms: float
) -> pa.Table:
    n = rows.rows
    if outcome is not None and error is None:
        prediction = _values(outcome.predictions)
        score = pa.array(outcome.scores if outcome.scores is not None else [None] * n, pa.float64())
    else:
        prediction, score = pa.nulls(n), pa.nulls(n, pa.float64())
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        PREDICTION_ID: pa.array(rows.prediction_ids, pa.string()),
        TIMESTAMP: pa.array([datetime.now(UTC)] * n, UTC_MICROS),
        PREDICTION: prediction,
        SCORE: score,
        LATENCY_MS: pa.array([latency_ms] * n, pa.float64()),
        ERROR: pa.array([error] * n, pa.string()),
        ARM: pa.array([arm] * n, pa.string()),
    }
    for name in rows.logged.column_names:
        columns[name] = rows.logged.column(name)
    return pa.table(columns)


class Gateway:
    """Answers prediction requests for every model that has a deployment."""

    def __init__(
        self,
        backend: Backend,
        metrics: GatewayMetrics,
        *,
        plans: PlanSource | None = None,
        options: GatewayOptions | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.backend = backend
        self.options = options or GatewayOptions()
        self.metrics = metrics
        self.plans = CachedPlans(plans if plans is not None else _plan_source(backend))
        self.servable = ServableVersions(backend.registry, backend.governance, backend.evaluation)
        # Serving compute-seconds per version, for costs (no write per request: batched).
        self.compute = ComputeMeter(
            backend.costs.compute_usage, flush_s=self.options.compute_flush_s
        )
        self.workers = ModelWorkers(
            self.servable,
            timeout_s=self.options.timeout_s,
            memory_mb=self.options.memory_mb,
            on_batch=lambda spec, seconds: self.compute.add(spec.model, spec.version, seconds),
        )
        self.log = PredictionLog(self._write, self._log_failed)
        self.callers = RecentCallers(backend.identity.authenticate)
        self._draw = draw
        self._teams: dict[str, tuple[float, str]] = {}
        self._background: set[asyncio.Task[None]] = set()

    def use_plans(self, plans: PlanSource) -> None:
        """Serve from another plan source (tests; a gateway built before deployments existed)."""
        self.plans = CachedPlans(plans)

    def close(self) -> None:
        self.workers.close()
        self.log.close()
        self.compute.close()

    # -- who and what -------------------------------------------------------------------------

    def authorize(self, by: Principal, model: str) -> None:
        """Raise unless ``by`` may predict with ``model`` (predict in its team); 404 when the
        model does not exist."""
        now = time.monotonic()
        known = self._teams.get(model)
        if known is None or now - known[0] >= MAX_AGE_S:  # a model may move to another team
            known = self._teams[model] = (now, self.backend.registry.get_model(model).team)
        authorize(by, Permission.PREDICT, known[1])

    def plan(self, model: str) -> ServingPlan:
        found = self.plans.serving_plan(model)
        if found is None:
            raise NotFound(
                f"Model {model!r} has no deployment, so nothing serves it. Deploy a version "
                f"first (keel deploy {model} VERSION).",
                {"model": model},
            )
        return found

    def signature(self, model: str, version: int) -> Signature:
        return self.servable.signature(model, version)

    async def worker(self, model: str, version: int) -> ModelWorker:
        found = self.workers.loaded(model, version)
        if found is not None:
            return found
        return await asyncio.to_thread(self.workers.worker, model, version)

    async def ready(self, model: str) -> bool:
        """Whether every version the model's plan serves is loaded (loading them if needed)."""
        plan = self.plan(model)
        for version in plan.versions:
            try:
                worker = await self.worker(model, version)
            except ModelUnavailable:
                return False
            if not worker.ready:
                return False
        return True

    # -- answering ----------------------------------------------------------------------------

    def _route_key(
        self, plan: ServingPlan, headers: Mapping[str, str], columns: Mapping[str, list[Any]]
    ) -> str | None:
        key = plan.route_key
        if key is None:
            return None
        if key.source == RouteKeySource.HEADER:
            return headers.get(key.name.lower())
        values = columns.get(key.name)
        return None if not values or values[0] is None else str(values[0])

    async def predict(self, model: str, parse: Parser, headers: Mapping[str, str]) -> Answer:
        """Answer one request; `ModelUnavailable` (503) when the model failed it."""
        started = time.perf_counter()
        plan = self.plan(model)
        first = plan.live[0]
        columns = parse(self.signature(model, first.version))
        key = self._route_key(plan, headers, columns)
        arm = pick_arm(plan, key, self._draw())
        if arm.version != first.version:
            columns = parse(self.signature(model, arm.version))
        rows = request_rows(columns, self.signature(model, arm.version))
        outcome = await self._answer(model, arm, rows, started)
        if mirrors(plan, key, self._draw()) and plan.shadow is not None:
            self._mirror(model, plan.shadow, parse, rows.prediction_ids)
        return Answer(
            model,
            arm.version,
            str(arm.name),
            outcome.predictions,
            outcome.scores,
            rows.prediction_ids,
        )

    async def _answer(self, model: str, arm: Arm, rows: RequestRows, started: float) -> Outcome:
        outcome: Outcome | None = None
        error: ModelUnavailable | None = None
        try:
            worker = await self.worker(model, arm.version)
            outcome = await asyncio.wrap_future(worker.submit(rows.features))
            if outcome.error is not None:
                error = ModelUnavailable(
                    f"{model} v{arm.version} could not answer: the model raised {outcome.error}.",
                    {"model": model, "version": arm.version, "cause": "model_error"},
                )
        except ModelUnavailable as exc:
            error = exc
        seconds = time.perf_counter() - started
        self.metrics.observe(model, arm.version, str(arm.name), seconds, error is not None)
        if self.options.log_predictions:
            message = None if error is None else f"{error.details.get('cause')}: {error.message}"
            table = _log_table(rows, str(arm.name), outcome, message, seconds * 1000)
            self.log.record(model, arm.version, table)
        if error is not None:
            raise error
        assert outcome is not None
        return outcome

    def _mirror(self, model: str, shadow: Arm, parse: Parser, ids: list[str]) -> None:
        async def run() -> None:
            started = time.perf_counter()
            try:
                signature = self.signature(model, shadow.version)
                rows = request_rows(parse(signature), signature, prediction_ids=ids)
                await self._answer(model, shadow, rows, started)
            except Exception as exc:  # a shadow never fails its live request
                log.info("shadow %s v%s: %s", model, shadow.version, exc)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the log ------------------------------------------------------------------------------

    def _write(self, model: str, version: int, table: pa.Table) -> None:
        self.backend.telemetry.log_predictions(GATEWAY, model, version, table)

    def _log_failed(self, model: str, version: int, rows: int, reason: str) -> None:
        self.metrics.log_failures.labels(model, reason).inc(rows)
        self.backend.incidents.trigger(
            GATEWAY,
            key=f"prediction-log:{model}",
            model=model,
            version=version,
            title=f"Predictions of {model} are not being logged ({reason})",
            severity=Severity.P2,
        )
