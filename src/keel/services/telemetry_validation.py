"""Check a batch of predictions or labels against a version's signature, and put it in the stored
layout: fixed columns first, then the signature's features and protected attributes, each in one
Arrow type per Keel type, so every file of a version has the same schema.

Everything here is vectorised with `pyarrow.compute`: a batch of a million rows is checked in a few
passes over its columns, never row by row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.domain.telemetry import (
    ARM,
    DEFAULT_ARM,
    ERROR,
    LABEL,
    LABEL_COLUMNS,
    LATENCY_MS,
    PREDICTION,
    PREDICTION_COLUMNS,
    PREDICTION_ID,
    SCORE,
    TIMESTAMP,
)
from keel.errors import InvalidInput

UTC_MICROS = pa.timestamp("us", tz="UTC")
ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.INTEGER: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.STRING: pa.string(),
    ColumnType.CATEGORICAL: pa.string(),
    ColumnType.DATETIME: UTC_MICROS,
}
# The roles whose columns are logged with each prediction (and profiled).
LOGGED_ROLES = (ColumnRole.FEATURE, ColumnRole.PROTECTED_ATTRIBUTE)


def logged_columns(signature: Signature) -> tuple[Column, ...]:
    """The signature's feature and protected-attribute columns, in signature order."""
    return tuple(c for c in signature.columns if c.role in LOGGED_ROLES)


def _describe(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype):
        return f"integer ({dtype})"
    if pa.types.is_floating(dtype):
        return f"float ({dtype})"
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return f"datetime ({dtype})"
    if pa.types.is_null(dtype):
        return "null (no values)"
    return str(dtype)


def _wrong_type(name: str, expected: str, got: pa.DataType, fix: str) -> InvalidInput:
    return InvalidInput(
        f"Column {name!r} must hold {expected} values, got {_describe(got)}. {fix}",
        {"field": name, "column": name, "expected": expected, "got": _describe(got)},
    )


def _nan_to_null(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """NaN counts as missing: stored as null, so profiles and queries count it once."""
    nan = pc.is_nan(values)
    if not pc.any(nan).as_py():
        return values
    return pc.if_else(nan, pa.scalar(None, values.type), values)


def conform(name: str, values: pa.ChunkedArray, kind: ColumnType) -> pa.ChunkedArray:
    """``values`` as the stored Arrow type of ``kind``, or `InvalidInput` naming the column, the
    expected type and the type it got."""
    got = values.type
    target = ARROW_TYPES[kind]
    if pa.types.is_dictionary(got):
        values = values.cast(got.value_type)
        got = values.type
    if pa.types.is_null(got):
        return pa.chunked_array([pa.nulls(len(values), target)])
    if kind is ColumnType.FLOAT:
        if pa.types.is_floating(got) or pa.types.is_integer(got):
            return _nan_to_null(values.cast(pa.float64()))
        raise _wrong_type(name, "float", got, "Send numbers (int or float).")
    if kind is ColumnType.INTEGER:
        if pa.types.is_integer(got):
            try:
                return values.cast(pa.int64())
            except pa.ArrowInvalid:
                raise _wrong_type(
                    name, "integer", got, "Values must fit in a signed 64-bit integer."
                ) from None
        if pa.types.is_floating(got):
            # pandas turns an integer column with a missing value into floats; take it back when
            # every value is whole.
            values = _nan_to_null(values.cast(pa.float64()))
            whole = pc.equal(pc.floor(values), values)
            if pc.all(whole).as_py() is not False:
                try:
                    return values.cast(pa.int64())
                except pa.ArrowInvalid:
                    pass
            raise _wrong_type(
                name, "integer", got, "Some values have a fractional part; send whole numbers."
            )
        raise _wrong_type(name, "integer", got, "Send whole numbers.")
    if kind is ColumnType.BOOLEAN:
        if pa.types.is_boolean(got):
            return values
        raise _wrong_type(name, "boolean", got, "Send true/false values.")
    if kind in (ColumnType.STRING, ColumnType.CATEGORICAL):
        if pa.types.is_string(got) or pa.types.is_large_string(got):
            return values.cast(pa.string())
        raise _wrong_type(
            name, kind.value, got, "Send text values (convert codes with str() first)."
        )
    assert kind is ColumnType.DATETIME
    return _timestamps(name, values)


# Text Keel reads as times, tried in order: with an offset, then without one (taken as UTC); with
# up to microseconds, then with nanoseconds (truncated like any nanosecond time).
_TEXT_TIME_TYPES = (
    UTC_MICROS,
    pa.timestamp("us"),
    pa.timestamp("ns", tz="UTC"),
    pa.timestamp("ns"),
)


def _timestamps(name: str, values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Times as UTC microseconds. Naive times are taken as UTC, as Keel shows times; times
    finer than a microsecond (pandas writes nanoseconds) are truncated to the microsecond."""
    got = values.type
    if pa.types.is_timestamp(got):
        if got.tz is None:
            values = values.cast(pa.timestamp(got.unit, tz="UTC"))
        try:
            # Only nanoseconds can lose data going to microseconds, and never overflow.
            return values.cast(UTC_MICROS, safe=got.unit != "ns")
        except pa.ArrowInvalid:
            raise _wrong_type(
                name,
                "datetime",
                got,
                "Some times are out of range (years 1677-2262 in nanoseconds, 0001-9999 "
                "otherwise); check their unit.",
            ) from None
    if pa.types.is_date(got):
        return values.cast(pa.timestamp("us")).cast(UTC_MICROS)
    if pa.types.is_string(got) or pa.types.is_large_string(got):
        for text_type in _TEXT_TIME_TYPES:
            try:
                parsed = pc.cast(values, text_type)
            except pa.ArrowInvalid:
                continue
            return _timestamps(name, parsed)
        raise _wrong_type(
            name,
            "datetime",
            got,
            "Send ISO 8601 times such as 2024-05-01T12:00:00Z, or Arrow timestamps.",
        )
    raise _wrong_type(name, "datetime", got, "Send ISO 8601 strings or timestamps.")


def _outcome(name: str, values: pa.ChunkedArray, declared: ColumnType | None) -> pa.ChunkedArray:
    """A prediction or label: the signature's type when it declares one; otherwise numbers and
    booleans as float64 (so they compare with each other) and text as string."""
    if declared is not None:
        return conform(name, values, declared)
    got = values.type
    if pa.types.is_dictionary(got):
        values = values.cast(got.value_type)
        got = values.type
    if pa.types.is_integer(got) or pa.types.is_floating(got) or pa.types.is_boolean(got):
        return _nan_to_null(values.cast(pa.float64()))
    if pa.types.is_string(got) or pa.types.is_large_string(got) or pa.types.is_null(got):
        return values.cast(pa.string())
    raise _wrong_type(name, "number, boolean or string", got, "Send the model's output as is.")


def _ids(values: pa.ChunkedArray, batch_id: str) -> pa.ChunkedArray:
    got = values.type
    castable = (pa.types.is_integer, pa.types.is_null, pa.types.is_large_string)
    if any(check(got) for check in castable) or pa.types.is_dictionary(got):
        values = values.cast(pa.string())
    elif not pa.types.is_string(got):
        raise _wrong_type(PREDICTION_ID, "string", got, "Send ids as strings (or integers).")
    if values.null_count:
        values = pc.coalesce(values, new_ids(batch_id, len(values)))
    return values


def new_ids(batch_id: str, rows: int) -> pa.Array:
    """Prediction ids for rows that came without one: 32 hex-and-digit characters, the batch's
    random uuid followed by the row number, unique without drawing a uuid per row."""
    numbers = pc.utf8_lpad(pa.array(np.arange(rows, dtype=np.int64)).cast(pa.string()), 10, "0")
    return pc.binary_join_element_wise(pa.scalar(batch_id[:22]), numbers, "")


def _require(table: pa.Table, name: str, expected: Iterable[str]) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise InvalidInput(
            f"Column {name!r} is required but missing. Expected columns: {', '.join(expected)}.",
            {"field": name, "column": name, "expected": list(expected)},
        )
    return table.column(name)


def without_pandas_index(table: pa.Table) -> pa.Table:
    """``table`` without the index columns pandas wrote into it (``DataFrame.to_parquet`` stores
    a non-default index as ``__index_level_0__`` and lists it in the schema's pandas metadata):
    an index is row bookkeeping, not a column the user meant to log."""
    metadata = table.schema.metadata or {}
    raw = metadata.get(b"pandas")
    if raw is None:
        return table
    try:
        index = json.loads(raw).get("index_columns", [])
    except (ValueError, AttributeError):
        return table  # metadata we cannot read: validate the columns as they are
    names = {c for c in index if isinstance(c, str)} & set(table.column_names)
    return table.drop_columns(sorted(names)) if names else table


def _no_unknown(table: pa.Table, expected: list[str]) -> None:
    seen: set[str] = set()
    for name in table.column_names:
        if name in seen:
            raise InvalidInput(
                f"Column {name!r} appears twice; send each column once.",
                {"field": name, "column": name},
            )
        seen.add(name)
        if name not in expected:
            raise InvalidInput(
                f"Column {name!r} is not in this version's signature. Expected columns: "
                f"{', '.join(expected)}. Drop it, or register a version whose signature has it.",
                {"field": name, "column": name, "expected": expected},
            )


def _check_missing(name: str, values: pa.ChunkedArray, nullable: bool) -> None:
    if not nullable and values.null_count:
        raise InvalidInput(
            f"Column {name!r} has {values.null_count} missing value(s) (null or NaN), but the "
            "signature says it is not nullable. Fill them in, or register a version whose "
            "signature marks the column nullable.",
            {"field": name, "column": name, "missing": values.null_count},
        )


def _check_names(columns: Iterable[Column]) -> None:
    reserved = set(PREDICTION_COLUMNS) | {LABEL}
    for column in columns:
        if column.name in reserved:
            raise InvalidInput(
                f"The signature's column {column.name!r} has the name of a column telemetry "
                f"keeps for itself ({', '.join(sorted(reserved))}). Register a version with that "
                "column renamed to log its predictions.",
                {"field": column.name, "column": column.name},
            )


@dataclass(frozen=True)
class Layout:
    """The stored columns of one version's predictions."""

    logged: tuple[Column, ...]
    prediction_type: ColumnType | None
    expected: list[str]

    @classmethod
    def of(cls, signature: Signature) -> Layout:
        logged = logged_columns(signature)
        _check_names(logged)
        declared = signature.with_role(ColumnRole.PREDICTION)
        return cls(
            logged=logged,
            prediction_type=declared[0].dtype if declared else None,
            expected=[*PREDICTION_COLUMNS, *(c.name for c in logged)],
        )


def validate_predictions(
    table: pa.Table, signature: Signature, *, now: datetime, batch_id: str
) -> pa.Table:
    """The batch in the stored layout, or `InvalidInput` naming the first problem.

    Required: ``prediction`` and every non-nullable feature or protected attribute. Optional:
    ``prediction_id`` (generated), ``ts`` (now), ``score``, ``latency_ms``, ``error``, ``arm``
    ("stable").
    """
    layout = Layout.of(signature)
    table = without_pandas_index(table)
    _no_unknown(table, layout.expected)
    rows = table.num_rows
    present = set(table.column_names)

    def optional(name: str, kind: ColumnType) -> pa.ChunkedArray:
        if name in present:
            return conform(name, table.column(name), kind)
        return pa.chunked_array([pa.nulls(rows, ARROW_TYPES[kind])])

    columns: dict[str, pa.ChunkedArray] = {}
    if PREDICTION_ID in present:
        columns[PREDICTION_ID] = _ids(table.column(PREDICTION_ID), batch_id)
    else:
        columns[PREDICTION_ID] = pa.chunked_array([new_ids(batch_id, rows)])
    ts = optional(TIMESTAMP, ColumnType.DATETIME)
    if ts.null_count:
        ts = pc.coalesce(ts, pa.scalar(now, UTC_MICROS))
    columns[TIMESTAMP] = ts
    prediction = _require(table, PREDICTION, layout.expected)
    columns[PREDICTION] = _outcome(PREDICTION, prediction, layout.prediction_type)
    columns[SCORE] = optional(SCORE, ColumnType.FLOAT)
    columns[LATENCY_MS] = optional(LATENCY_MS, ColumnType.FLOAT)
    columns[ERROR] = optional(ERROR, ColumnType.STRING)
    arm = optional(ARM, ColumnType.STRING)
    columns[ARM] = pc.coalesce(arm, pa.scalar(DEFAULT_ARM)) if arm.null_count else arm
    for column in layout.logged:
        if column.name in present:
            values = conform(column.name, table.column(column.name), column.dtype)
        elif column.nullable:
            values = pa.chunked_array([pa.nulls(rows, ARROW_TYPES[column.dtype])])
        else:
            values = _require(table, column.name, layout.expected)  # raises
        _check_missing(column.name, values, column.nullable)
        columns[column.name] = values
    return pa.table(columns)


def validate_labels(table: pa.Table, *, now: datetime) -> pa.Table:
    """Labels in the stored layout: ``prediction_id`` and ``label`` required, ``ts`` optional."""
    expected = list(LABEL_COLUMNS)
    table = without_pandas_index(table)
    _no_unknown(table, expected)
    ids = _require(table, PREDICTION_ID, expected)
    if not (pa.types.is_string(ids.type) or pa.types.is_integer(ids.type)):
        raise _wrong_type(PREDICTION_ID, "string", ids.type, "Send the ids the predictions had.")
    ids = ids.cast(pa.string())
    _check_missing(PREDICTION_ID, ids, nullable=False)
    label = _outcome(LABEL, _require(table, LABEL, expected), None)
    if TIMESTAMP in table.column_names:
        ts = conform(TIMESTAMP, table.column(TIMESTAMP), ColumnType.DATETIME)
        ts = pc.coalesce(ts, pa.scalar(now, UTC_MICROS)) if ts.null_count else ts
    else:
        ts = pa.chunked_array([pa.array([now] * table.num_rows, UTC_MICROS)])
    return pa.table({PREDICTION_ID: ids, LABEL: label, TIMESTAMP: ts})


def reference_columns(table: pa.Table, signature: Signature) -> dict[str, pa.ChunkedArray]:
    """The columns of a reference dataset that get profiled, in their stored types.

    With a signature: its features and protected attributes (other columns, such as the target,
    are ignored); a missing one is an error unless nullable. Without one: every column of a
    number, boolean, text or datetime type.
    """
    logged = logged_columns(signature)
    if not logged:
        inferred: dict[str, pa.ChunkedArray] = {}
        for name in table.column_names:
            kind = _infer(table.column(name).type)
            if kind is not None:
                inferred[name] = conform(name, table.column(name), kind)
        if not inferred:
            raise InvalidInput(
                "The reference data has no number, boolean, text or datetime column to profile.",
                {"field": "data", "columns": table.column_names},
            )
        return inferred
    expected = [c.name for c in logged]
    found: dict[str, pa.ChunkedArray] = {}
    for column in logged:
        if column.name not in table.column_names:
            if column.nullable:
                continue
            _require(table, column.name, expected)
        found[column.name] = conform(column.name, table.column(column.name), column.dtype)
    return found


def _infer(dtype: pa.DataType) -> ColumnType | None:
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if pa.types.is_integer(dtype):
        return ColumnType.INTEGER
    if pa.types.is_floating(dtype):
        return ColumnType.FLOAT
    if pa.types.is_boolean(dtype):
        return ColumnType.BOOLEAN
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return ColumnType.STRING
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return ColumnType.DATETIME
    return None
