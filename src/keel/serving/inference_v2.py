"""The Open Inference Protocol (KServe V2) over REST: inference requests and answers.

Inputs are tensors. Keel reads them the way KServe's and MLServer's pandas codec do: one tensor
per column, named after the signature's column, with shape ``[rows]`` or ``[rows, 1]``; or a single
tensor of shape ``[rows, features]`` whose columns are the signature's features in order. Outputs
are ``predict`` (and ``score`` for classifiers); the prediction ids are in ``parameters``.
"""

from __future__ import annotations

import json
from typing import Any

from keel.domain.signature import Signature
from keel.domain.telemetry import PREDICTION_ID
from keel.errors import InvalidInput, MalformedUpload
from keel.serving.inputs import positional

_V2_TYPES = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
_V2_TYPES |= {"FP16", "FP32", "FP64", "BYTES"}


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        flat.extend(_flat(item) if isinstance(item, list) else [item])
    return flat


def _tensor(item: Any, i: int) -> tuple[str, list[int], list[Any]]:
    where = f"inputs[{i}]"
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise MalformedUpload(
            f"{where} must be an object with name, shape, datatype and data.", {"field": where}
        )
    shape, datatype = item.get("shape"), item.get("datatype")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise MalformedUpload(
            f"{where}.shape must be a list of non-negative integers.", {"field": f"{where}.shape"}
        )
    if datatype not in _V2_TYPES:
        raise MalformedUpload(
            f"{where}.datatype must be one of {', '.join(sorted(_V2_TYPES))}.",
            {"field": f"{where}.datatype"},
        )
    data = _flat(item.get("data"))
    size = 1
    for n in shape:
        size *= n
    if size != len(data):
        raise InvalidInput(
            f"{where} ({item['name']!r}) has {len(data)} values but its shape {shape} holds "
            f"{size}.",
            {"field": f"{where}.data", "column": item["name"]},
        )
    if datatype == "BYTES":
        data = [v.decode() if isinstance(v, bytes) else v for v in data]
    return item["name"], shape, data


def parse(body: bytes, signature: Signature) -> tuple[dict[str, list[Any]], str | None]:
    """The request's named columns and its ``id`` (if given)."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise MalformedUpload(
            f"The body is not valid JSON ({exc}).", {"field": "body", "expected": "JSON"}
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise MalformedUpload(
            "The body must be an inference request: an object with a list of 'inputs'.",
            {"field": "inputs"},
        )
    request_id = document.get("id")
    tensors = [_tensor(item, i) for i, item in enumerate(document["inputs"])]
    names = {c.name for c in signature.columns}
    if len(tensors) == 1 and tensors[0][0] not in names and len(tensors[0][1]) == 2:
        _, (rows, width), data = tensors[0]
        matrix = [data[r * width : (r + 1) * width] for r in range(rows)]
        return positional(matrix, signature), _id(request_id)
    columns: dict[str, list[Any]] = {}
    for name, shape, data in tensors:
        if len(shape) == 2 and shape[1] != 1:
            raise InvalidInput(
                f"Input {name!r} has shape {shape}; a column takes shape [rows] or [rows, 1].",
                {"field": name, "column": name},
            )
        columns[name] = data
    return columns, _id(request_id)


def _id(value: Any) -> str | None:
    return None if value is None else str(value)[:200]


def _datatype(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INT64"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "FP64"
    return "BYTES"


def answer(
    model: str,
    version: int,
    request_id: str | None,
    predictions: list[Any],
    scores: list[float | None] | None,
    prediction_ids: list[str],
) -> dict[str, Any]:
    """The inference response body."""
    outputs = [
        {
            "name": "predict",
            "shape": [len(predictions)],
            "datatype": _datatype(predictions),
            "data": predictions,
        }
    ]
    if scores is not None:
        outputs.append(
            {"name": "score", "shape": [len(scores)], "datatype": "FP64", "data": scores}
        )
    body: dict[str, Any] = {
        "model_name": model,
        "model_version": str(version),
        "outputs": outputs,
        "parameters": {PREDICTION_ID + "s": prediction_ids},
    }
    if request_id is not None:
        body["id"] = request_id
    return body
