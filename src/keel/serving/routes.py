"""The gateway's HTTP routes: MLflow's scoring protocol and the Open Inference Protocol (V2).

Prediction routes need the ``predict`` permission in the model's team (a ``predictor`` service
account, or a contributor, approver or admin); V2's health routes are public. Every answer names
the version and the arm that answered (``X-Keel-Version``, ``X-Keel-Arm``) and the prediction id
of each row (``X-Keel-Prediction-Ids``, comma-separated, in row order; V2 also in its body).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.signature import ColumnRole
from keel.errors import NotReady
from keel.services.backend import Backend
from keel.serving import inference_v2, mlflow_protocol
from keel.serving.gateway import Answer, Gateway

router = APIRouter(tags=["serving"])
_bearer = HTTPBearer(auto_error=False, description="A token with predict rights on the model.")
_V2_TYPES = {"float": "FP64", "integer": "INT64", "boolean": "BOOL"}


class Caller:
    """The permission a serving route declares (the route table test reads ``permission``)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    # async, as every dependency of these routes: FastAPI runs a plain `def` dependency in its
    # thread pool, two thread hops per request for a dictionary look-up.
    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if self.permission == Permission.PUBLIC:
            return Principal("anonymous")
        callers = _gateway(request).callers
        token = credentials.credentials if credentials else None
        principal = callers.remembered(token)
        if principal is None:  # ask the identity store, off the event loop
            principal = await asyncio.to_thread(callers.principal, token)
        authorize(principal, self.permission)  # in some team; the model's team is checked next
        return principal


Predictor = Annotated[Principal, Depends(Caller(Permission.PREDICT))]
Anyone = Annotated[Principal, Depends(Caller(Permission.PUBLIC))]


def _gateway(request: Request) -> Gateway:
    gateway = request.app.state.gateway
    assert isinstance(gateway, Gateway)
    return gateway


async def _gateway_dependency(request: Request) -> Gateway:
    return _gateway(request)


GatewayDep = Annotated[Gateway, Depends(_gateway_dependency)]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _json(body: Any, answer: Answer | None = None) -> Response:
    try:
        text = json.dumps(body, allow_nan=False, separators=(",", ":"))
    except ValueError:  # NaN or infinity from the model: JSON has neither, so null
        text = json.dumps(_finite(body), separators=(",", ":"))
    headers = {}
    if answer is not None:
        headers = {
            "X-Keel-Version": str(answer.version),
            "X-Keel-Arm": answer.arm,
            "X-Keel-Prediction-Ids": ",".join(answer.prediction_ids),
        }
    return Response(text, media_type="application/json", headers=headers)


@router.post("/models/{name}/invocations", summary="Predict (MLflow scoring protocol)")
async def invocations(
    name: str, request: Request, caller: Predictor, gateway: GatewayDep
) -> Response:
    gateway.authorize(caller, name)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    answer = await gateway.predict(
        name,
        lambda signature: mlflow_protocol.parse(body, content_type, signature),
        request.headers,
    )
    return _json({"predictions": answer.predictions}, answer)


@router.post("/v2/models/{name}/infer", summary="Predict (Open Inference Protocol V2)")
async def infer(name: str, request: Request, caller: Predictor, gateway: GatewayDep) -> Response:
    gateway.authorize(caller, name)
    body = await request.body()
    request_id: list[str | None] = [None]

    def parse(signature: Any) -> Any:
        columns, request_id[0] = inference_v2.parse(body, signature)
        return columns

    answer = await gateway.predict(name, parse, request.headers)
    payload = inference_v2.answer(
        name,
        answer.version,
        request_id[0],
        answer.predictions,
        answer.scores,
        answer.prediction_ids,
    )
    return _json(payload, answer)


@router.get("/v2/models/{name}/ready", summary="Whether the model is loaded and answering")
async def model_ready(name: str, caller: Predictor, gateway: GatewayDep) -> Response:
    gateway.authorize(caller, name)
    if not await gateway.ready(name):
        raise NotReady(
            f"Model {name!r} is not ready: a version it serves could not be loaded.",
            {"model": name},
        )
    return _json({"name": name, "ready": True})


@router.get("/v2/models/{name}", summary="The model's metadata (Open Inference Protocol V2)")
async def model_metadata(name: str, caller: Predictor, gateway: GatewayDep) -> Response:
    gateway.authorize(caller, name)
    plan = gateway.plan(name)
    signature = gateway.signature(name, plan.live[0].version)
    inputs = [
        {"name": c.name, "datatype": _V2_TYPES.get(str(c.dtype), "BYTES"), "shape": [-1]}
        for c in signature.columns
        if c.role in (ColumnRole.FEATURE, ColumnRole.PROTECTED_ATTRIBUTE)
    ]
    return _json(
        {
            "name": name,
            "versions": [str(v) for v in plan.versions],
            "platform": "keel",
            "inputs": inputs,
            "outputs": [{"name": "predict", "datatype": "BYTES", "shape": [-1]}],
        }
    )


@router.get("/v2/health/live", summary="The gateway is up")
async def live(_: Anyone) -> Response:
    return _json({"live": True})


@router.get("/v2/health/ready", summary="The gateway can reach its metadata store")
async def ready(_: Anyone, request: Request) -> Response:
    backend = request.app.state.backend
    assert isinstance(backend, Backend)
    backend.check_ready()
    return _json({"ready": True})
