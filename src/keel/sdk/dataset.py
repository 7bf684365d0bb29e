"""From a pandas DataFrame to what a version records about its data: signature and fingerprint."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from keel.domain.signature import ColumnRole, ColumnType
from keel.errors import InvalidInput
from keel.schemas import ColumnSchema, ColumnSpec, DatasetFingerprintSpec, SignatureSpec
from keel.stats.fingerprint import dataset_fingerprint


def column_type(name: str, series: pd.Series[Any]) -> ColumnType:
    """The canonical type of a pandas column, or `InvalidInput` when Keel has none for it."""
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype):
        return ColumnType.BOOLEAN
    if isinstance(dtype, pd.CategoricalDtype):
        return ColumnType.CATEGORICAL
    if ptypes.is_integer_dtype(dtype):
        return ColumnType.INTEGER
    if ptypes.is_float_dtype(dtype):
        return ColumnType.FLOAT
    if ptypes.is_datetime64_any_dtype(dtype):
        return ColumnType.DATETIME
    if ptypes.is_string_dtype(dtype) or ptypes.is_object_dtype(dtype):
        return ColumnType.STRING
    raise InvalidInput(
        f"Column {name!r} has the dtype {dtype}, which a Keel signature cannot describe; "
        "convert it to a number, boolean, string, category or datetime column first.",
        {"column": name, "dtype": str(dtype)},
    )


# What pandas.api.types.infer_dtype says of an object column's values, as a Keel type; anything
# else (text, or numbers mixed with text) is a string column.
_OBJECT_KINDS = {
    "boolean": ColumnType.BOOLEAN,
    "integer": ColumnType.INTEGER,
    "floating": ColumnType.FLOAT,
    "mixed-integer-float": ColumnType.FLOAT,
    "decimal": ColumnType.FLOAT,
    "datetime": ColumnType.DATETIME,
    "datetime64": ColumnType.DATETIME,
    "date": ColumnType.DATETIME,
}


def signature_type(name: str, series: pd.Series[Any]) -> ColumnType:
    """The type a signature declares for a column: `column_type`, except that an object column
    is typed by its values, since pandas keeps booleans or numbers with a missing value as
    objects (the fingerprint keeps `column_type`, so known data keeps its hash).

    >>> signature_type("member", pd.Series([True, None, False])).value
    'boolean'
    """
    kind = column_type(name, series)
    if ptypes.is_object_dtype(series.dtype):
        return _OBJECT_KINDS.get(ptypes.infer_dtype(series, skipna=True), kind)
    return kind


def _columns(frame: pd.DataFrame) -> dict[str, pd.Series[Any]]:
    columns: dict[str, pd.Series[Any]] = {}
    for label in frame.columns:
        name = str(label)
        if name in columns:
            raise InvalidInput(
                f"The training data has the column {name!r} twice; column names must be unique.",
                {"column": name},
            )
        columns[name] = frame[label]
    return columns


def _check_known(names: Iterable[str], available: list[str], argument: str) -> None:
    for name in names:
        if name not in available:
            raise InvalidInput(
                f"The {argument} column {name!r} is not in the training data. "
                f"Available columns: {', '.join(available)}.",
                {"field": argument, "column": name, "available": available},
            )


def infer_signature(
    frame: pd.DataFrame, target: str | None = None, protected_attributes: Iterable[str] = ()
) -> SignatureSpec:
    """One column spec per DataFrame column: its canonical type and role.

    Every inferred column is nullable: a training sample without a missing value says nothing
    about production, where a missing value is counted (and watched by the quality check)
    rather than refused. A signature says ``"nullable": false`` only when someone wrote it.

    >>> frame = pd.DataFrame({"age": [31, 47], "approved": [True, False]})
    >>> [(c.name, c.dtype.value, c.role.value) for c in infer_signature(frame, "approved").columns]
    [('age', 'integer', 'feature'), ('approved', 'boolean', 'target')]
    """
    columns = _columns(frame)
    available = list(columns)
    protected = list(protected_attributes)
    _check_known([target] if target is not None else [], available, "target")
    _check_known(protected, available, "protected_attributes")
    if target is not None and target in protected:
        raise InvalidInput(
            f"The column {target!r} cannot be both the target and a protected attribute.",
            {"column": target},
        )

    specs = []
    for name, series in columns.items():
        role = ColumnRole.FEATURE
        if name == target:
            role = ColumnRole.TARGET
        elif name in protected:
            role = ColumnRole.PROTECTED_ATTRIBUTE
        specs.append(
            ColumnSpec(
                name=name,
                dtype=signature_type(name, series),
                role=role,
            )
        )
    return SignatureSpec(columns=specs)


def _canonical_array(series: pd.Series[Any], kind: ColumnType) -> np.ndarray[Any, Any]:
    """The column as a NumPy array the fingerprint reads, with nulls in a form it knows."""
    isna = series.isna().to_numpy(dtype=np.bool_)
    if kind is ColumnType.INTEGER:
        signed = ptypes.is_signed_integer_dtype(series.dtype)
        values = series.to_numpy(dtype=np.int64 if signed else np.uint64, na_value=0)
        return np.ma.MaskedArray(values, mask=isna)
    if kind is ColumnType.FLOAT:
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if kind is ColumnType.BOOLEAN:
        return np.ma.MaskedArray(series.to_numpy(dtype=np.bool_, na_value=False), mask=isna)
    if kind is ColumnType.DATETIME:
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series.to_numpy(dtype="datetime64[ns]")
    values = series.to_numpy(dtype=object, copy=True)
    values[isna] = None
    return values


def fingerprint(frame: pd.DataFrame) -> DatasetFingerprintSpec:
    """The `keel.stats.fingerprint` of a DataFrame's columns (its index is not data).

    >>> a = pd.DataFrame({"x": [1.0, -0.0, None]})
    >>> b = pd.DataFrame({"x": [1.0, 0.0, float("nan")]}, index=[7, 8, 9])
    >>> fingerprint(a).sha256 == fingerprint(b).sha256
    True
    """
    columns = _columns(frame)
    kinds = {name: column_type(name, series) for name, series in columns.items()}
    arrays = {name: _canonical_array(series, kinds[name]) for name, series in columns.items()}
    sha256, rows = dataset_fingerprint(arrays, {name: kind.value for name, kind in kinds.items()})
    return DatasetFingerprintSpec(
        sha256=sha256,
        rows=rows,
        columns=[ColumnSchema(name=name, dtype=kind.value) for name, kind in kinds.items()],
    )
