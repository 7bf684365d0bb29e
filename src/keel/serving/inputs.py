"""A prediction request's rows, checked against the version's signature.

Both protocols end here: the MLflow scoring body (`keel.serving.mlflow_protocol`) and the Open
Inference Protocol body (`keel.serving.inference_v2`) become named columns of Python values, and
`request_rows` turns them into an Arrow table in the signature's types, or refuses them with a
422 that names the column and the type it expects.

- every feature the signature lists must be there (a nullable one may be absent: all missing);
- a column the signature does not list is refused, except ``prediction_id`` (the caller's ids);
- protected attributes may be sent: they are logged with the prediction, never given to the model.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.domain.telemetry import PREDICTION_ID
from keel.errors import InvalidInput
from keel.services.telemetry_validation import ARROW_TYPES, conform

MODEL_ROLES = (ColumnRole.FEATURE,)
LOGGED_ROLES = (ColumnRole.FEATURE, ColumnRole.PROTECTED_ATTRIBUTE)
MAX_ID_CHARS = 200
# Printable ASCII without spaces or commas: ids travel back in a comma-separated header.
_ID = re.compile(r"[!-+\--~]{1," + str(MAX_ID_CHARS) + "}")


@dataclass(frozen=True)
class RequestRows:
    """The rows of one request: what the model reads, what is logged, and their ids."""

    features: pa.Table  # the signature's features, in its order and types
    logged: pa.Table  # features and protected attributes
    prediction_ids: list[str]

    @property
    def rows(self) -> int:
        return len(self.prediction_ids)


def _column_values(name: str, values: Sequence[Any], column: Column) -> pa.ChunkedArray:
    if column.dtype is ColumnType.FLOAT and all(type(v) is float or v is None for v in values):
        # The common case, four times cheaper than inferring and conforming: JSON floats for a
        # float column. NaN becomes null, as `conform` makes it; anything else (ints, bools,
        # text) takes the general path below, which also words the errors.
        return pa.chunked_array([pa.array(values, pa.float64(), from_pandas=True)])
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        raise InvalidInput(
            f"Column {name!r} mixes values of different kinds; the signature expects "
            f"{column.dtype}. Send one {column.dtype} value (or null) per row.",
            {"field": name, "column": name, "expected": str(column.dtype)},
        ) from None
    return conform(name, pa.chunked_array([array]), column.dtype)


def _ids(given: Sequence[Any] | None, rows: int) -> list[str]:
    if given is None:
        stem = uuid.uuid4().hex
        return [f"{stem}-{i}" for i in range(rows)]
    ids: list[str] = []
    for value in given:
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise InvalidInput(
                "Every prediction_id must be a non-empty string (or an integer); leave the "
                "column out to have Keel generate ids.",
                {"field": PREDICTION_ID, "column": PREDICTION_ID, "expected": "string"},
            )
        text = str(value)
        if not _ID.fullmatch(text):
            raise InvalidInput(
                f"A prediction_id is 1-{MAX_ID_CHARS} printable ASCII characters without "
                f"spaces or commas; got {text[:50]!r}.",
                {"field": PREDICTION_ID, "column": PREDICTION_ID, "expected": "string"},
            )
        ids.append(text)
    return ids


def request_rows(
    columns: Mapping[str, Sequence[Any]],
    signature: Signature,
    *,
    prediction_ids: list[str] | None = None,
) -> RequestRows:
    """The request's named columns (all of one length) as `RequestRows`, or `InvalidInput`.
    ``prediction_ids`` (a shadow's copy of a live request) replaces the request's own."""
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise InvalidInput(
            "The request's columns have different numbers of values; send one value per row "
            "in every column.",
            {"field": "inputs"},
        )
    rows = lengths.pop() if lengths else 0
    if rows == 0:
        raise InvalidInput("The request has no rows; send at least one row.", {"field": "inputs"})
    by_name = {c.name: c for c in signature.columns if c.role in LOGGED_ROLES}
    for name in columns:
        if name != PREDICTION_ID and name not in by_name:
            raise InvalidInput(
                f"Column {name!r} is not an input of this model. Its inputs are: "
                f"{', '.join(c.name for c in signature.features) or 'none declared'}.",
                {"field": name, "column": name},
            )
    logged: dict[str, pa.ChunkedArray] = {}
    for name, column in by_name.items():
        if name in columns:
            logged[name] = _column_values(name, columns[name], column)
        elif column.nullable:
            logged[name] = pa.chunked_array([pa.nulls(rows, ARROW_TYPES[column.dtype])])
        else:
            raise InvalidInput(
                f"Column {name!r} is missing; the model needs it as {column.dtype}.",
                {"field": name, "column": name, "expected": str(column.dtype)},
            )
        if not column.nullable and logged[name].null_count:
            raise InvalidInput(
                f"Column {name!r} has missing values; the signature says it is never empty "
                f"(expected {column.dtype}).",
                {"field": name, "column": name, "expected": str(column.dtype)},
            )
    logged_table = pa.table(logged) if logged else pa.table({})
    feature_names = [c.name for c in signature.features]
    return RequestRows(
        features=logged_table.select(feature_names),
        logged=logged_table,
        prediction_ids=prediction_ids or _ids(columns.get(PREDICTION_ID), rows),
    )


def positional(rows: Sequence[Sequence[Any]], signature: Signature) -> dict[str, list[Any]]:
    """Rows given as lists of values, matched to the signature's features in order."""
    names = [c.name for c in signature.features]
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple) or len(row) != len(names):
            raise InvalidInput(
                f"Row {i} has {len(row) if isinstance(row, list | tuple) else 'no'} values; the "
                f"model takes {len(names)} features in this order: {', '.join(names)}.",
                {"field": "inputs", "row": i},
            )
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


def records(items: Sequence[Any], field: str) -> dict[str, list[Any]]:
    """Rows given as ``{column: value}`` objects, as columns (a column a row lacks is null)."""
    names: dict[str, None] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(
                f"Every item of {field!r} must be an object of column: value (item {i} is not).",
                {"field": field, "row": i},
            )
        names.update(dict.fromkeys(item))
    return {name: [item.get(name) for item in items] for name in names}
