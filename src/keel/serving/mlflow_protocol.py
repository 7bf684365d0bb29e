"""MLflow's scoring protocol, as `mlflow models serve` answers it at ``/invocations``.

A JSON body holds exactly one of ``dataframe_split`` (``{"columns", "data"}``),
``dataframe_records`` (a list of ``{column: value}``), ``instances`` or ``inputs`` (rows as
objects or lists, or ``inputs`` as ``{column: [values]}``), and may add ``params`` (ignored: the
models Keel serves take none). A ``text/csv`` body is a table with a header row. The answer is
``{"predictions": [...]}``, one value per row, as MLflow gives it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from keel.domain.signature import Signature
from keel.errors import InvalidInput, KeelError, MalformedUpload
from keel.serving.inputs import positional, records

INPUT_FIELDS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class UnsupportedMediaType(KeelError):
    code = "unsupported_media_type"
    status = 415


def _rows(items: Any, field: str, signature: Signature) -> dict[str, list[Any]]:
    if isinstance(items, dict) and field == "inputs":  # columnar: {column: [values]}
        columns: dict[str, list[Any]] = {}
        for name, values in items.items():
            columns[str(name)] = values if isinstance(values, list) else [values]
        return columns
    if not isinstance(items, list):
        raise MalformedUpload(
            f"{field!r} must be a list of rows.", {"field": field, "expected": "list"}
        )
    if items and all(isinstance(item, dict) for item in items):
        return records(items, field)
    if items and all(not isinstance(item, list | dict) for item in items):
        items = [[item] for item in items]  # one value per row: a single-feature model
    return positional(items, signature)


def _split(body: Any, signature: Signature) -> dict[str, list[Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedUpload(
            "'dataframe_split' must be an object with 'columns' and 'data' (a list of rows), "
            "as pandas' DataFrame.to_dict(orient='split') writes it.",
            {"field": "dataframe_split"},
        )
    data: Sequence[Any] = body["data"]
    names = body.get("columns")
    if names is None:
        return positional(data, signature)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise MalformedUpload(
            "'dataframe_split.columns' must be a list of column names.",
            {"field": "dataframe_split.columns"},
        )
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(names):
            raise InvalidInput(
                f"Row {i} of 'dataframe_split.data' does not have one value per column "
                f"({len(names)} columns).",
                {"field": "dataframe_split.data", "row": i},
            )
    return {name: [row[i] for row in data] for i, name in enumerate(names)}


def parse_json(body: bytes, signature: Signature) -> dict[str, list[Any]]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise MalformedUpload(
            f"The body is not valid JSON ({exc}).", {"field": "body", "expected": "JSON"}
        ) from None
    if not isinstance(document, dict):
        raise MalformedUpload(
            f"The body must be a JSON object with exactly one of {', '.join(INPUT_FIELDS)}.",
            {"field": "body"},
        )
    given = [f for f in INPUT_FIELDS if f in document]
    unknown = sorted(set(document) - {*INPUT_FIELDS, "params"})
    if len(given) != 1 or unknown:
        what = (
            f"unknown field(s) {', '.join(map(repr, unknown))}"
            if unknown
            else f"{len(given)} input fields"
        )
        raise MalformedUpload(
            f"The body must hold exactly one of {', '.join(INPUT_FIELDS)} (and optionally "
            f"'params'); it has {what}.",
            {"field": "body", "expected": list(INPUT_FIELDS)},
        )
    field = given[0]
    if field == "dataframe_split":
        return _split(document[field], signature)
    if field == "dataframe_records":
        items = document[field]
        if not isinstance(items, list):
            raise MalformedUpload(
                "'dataframe_records' must be a list of {column: value} objects.", {"field": field}
            )
        return records(items, field)
    return _rows(document[field], field, signature)


def parse_csv(body: bytes) -> dict[str, list[Any]]:
    try:
        table = pa_csv.read_csv(pa.py_buffer(body))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise MalformedUpload(
            f"The body is not a CSV table with a header row ({exc}).",
            {"field": "body", "expected": "text/csv"},
        ) from None
    return {name: table.column(name).to_pylist() for name in table.column_names}


def parse(body: bytes, content_type: str, signature: Signature) -> dict[str, list[Any]]:
    """The request's named columns, from a JSON or CSV body."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and "json" in media):
        return parse_json(body, signature)
    if media == "text/csv":
        return parse_csv(body)
    raise UnsupportedMediaType(
        f"Content-Type {media or 'none'!r} is not supported; send application/json (with "
        "dataframe_split, dataframe_records, instances or inputs) or text/csv.",
        {"field": "Content-Type", "expected": ["application/json", "text/csv"]},
    )
