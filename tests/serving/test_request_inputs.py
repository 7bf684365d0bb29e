"""The cheap paths for the common case give exactly what the general ones give.

A float column of JSON floats skips type inference, and a batch of float features becomes the
model's DataFrame from one array: both must keep every refusal and every value as before.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest

from keel.domain.signature import Column, ColumnType, Signature
from keel.errors import InvalidInput
from keel.services.model_worker import _frame
from keel.serving.inputs import request_rows

SIGNATURE = Signature(
    (Column("a", ColumnType.FLOAT, nullable=True), Column("b", ColumnType.FLOAT, nullable=False))
)


def test_float_columns_keep_their_values_and_nan_becomes_null() -> None:
    rows = request_rows({"a": [0.5, None, math.nan, math.inf], "b": [1.0, -2.5, 3, 4]}, SIGNATURE)
    assert rows.features.column("a").to_pylist() == [0.5, None, None, math.inf]
    assert rows.features.column("b").to_pylist() == [1.0, -2.5, 3.0, 4.0]  # an int is a float
    assert rows.features.schema.types == [pa.float64(), pa.float64()]


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ([True, 1.0], "mixes"),  # a bool is not a number here, even beside floats
        (["1.5"], "must hold float"),
        ([[1.0]], "must hold float"),
        ([1.0, None], "missing values"),  # b is never empty
    ],
)
def test_float_columns_still_refuse_what_is_not_a_float(values: list[Any], why: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        request_rows({"a": [0.0] * len(values), "b": values}, SIGNATURE)
    assert why in refused.value.message
    assert refused.value.details["column"] == "b"


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"a": [1.0, None, 3.0], "b": [0.5, 2.0, math.nan]}),  # all floats: one array
        pa.table({"a": pa.chunked_array([[1.0], [2.0]]), "b": [3.0, 4.0]}),
        pa.table({"a": [1.0, 2.0], "n": [1, 2], "s": ["x", None]}),  # mixed: to_pandas
        pa.table({"a": pa.array([], pa.float64())}),
    ],
)
def test_the_models_frame_is_what_to_pandas_gives(table: pa.Table) -> None:
    frame, expected = _frame(table), table.to_pandas()
    assert frame.equals(expected)
    assert list(frame.dtypes) == list(expected.dtypes)
    assert list(frame.columns) == list(expected.columns)
