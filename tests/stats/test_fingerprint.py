"""The dataset fingerprint says "same data" exactly when the data is the same."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keel.errors import InvalidInput
from keel.stats.fingerprint import dataset_fingerprint

Columns = dict[str, Any]

TYPES = {
    "age": "integer",
    "income": "float",
    "member": "boolean",
    "city": "string",
    "plan": "categorical",
    "joined": "datetime",
}


def table() -> Columns:
    return {
        "age": np.array([31, 47, 22], dtype=np.int64),
        "income": np.array([1200.5, np.nan, 0.0]),
        "member": np.array([True, False, True]),
        "city": np.array(["Lyon", None, "Zürich"], dtype=object),
        "plan": np.array(["gold", "free", "free"], dtype=object),
        "joined": np.array(["2024-01-02T03:04:05", "NaT", "2020-02-29"], dtype="datetime64[s]"),
    }


def digest(columns: Columns, types: dict[str, str] = TYPES) -> str:
    return dataset_fingerprint(columns, types)[0]


def test_same_data_gives_the_same_hash_and_the_row_count() -> None:
    first, rows = dataset_fingerprint(table(), TYPES)
    assert rows == 3
    assert len(first) == 64
    assert digest(table()) == first


@pytest.mark.parametrize(
    ("column", "index", "value"),
    [
        ("age", 0, 32),
        ("income", 0, 1200.25),
        ("member", 1, True),
        ("city", 0, "Lyon "),
        ("plan", 2, "gold"),
        ("joined", 0, np.datetime64("2024-01-02T03:04:06")),
    ],
)
def test_changing_one_value_changes_the_hash(column: str, index: int, value: object) -> None:
    changed = table()
    changed[column] = changed[column].copy()
    changed[column][index] = value
    assert digest(changed) != digest(table())


def test_row_order_matters() -> None:
    reordered = {name: values[::-1] for name, values in table().items()}
    assert digest(reordered) != digest(table())


def test_column_order_name_and_type_matter() -> None:
    base = digest(table())
    renamed = table()
    renamed["years"] = renamed.pop("age")
    assert digest(renamed, {**TYPES, "years": "integer"}) != base

    reordered = dict(reversed(list(table().items())))
    assert digest(reordered) != base

    assert digest(table(), {**TYPES, "plan": "string"}) != base


def test_nan_and_none_are_the_same_null_in_a_float_column() -> None:
    with_nan = {"x": np.array([1.0, np.nan])}
    with_none = {"x": np.array([1.0, None], dtype=object)}
    masked = {"x": np.ma.MaskedArray([1.0, 5.0], mask=[False, True])}
    # A negative NaN with a payload: a different bit pattern that must still hash as null.
    odd_nan = np.frombuffer(struct.pack("<Q", 0xFFF8_0000_0000_0001), dtype="<f8")[0]
    other_nan = {"x": np.array([1.0, odd_nan])}
    hashes = {digest(c, {"x": "float"}) for c in (with_nan, with_none, masked, other_nan)}
    assert len(hashes) == 1


def test_negative_zero_equals_zero() -> None:
    assert digest({"x": np.array([-0.0])}, {"x": "float"}) == digest(
        {"x": np.array([0.0])}, {"x": "float"}
    )


def test_integer_width_does_not_matter_but_nulls_do() -> None:
    small = {"n": np.array([1, 2, 3], dtype=np.int8)}
    wide = {"n": np.array([1, 2, 3], dtype=np.uint64)}
    assert digest(small, {"n": "integer"}) == digest(wide, {"n": "integer"})

    zero = {"n": np.array([1, 0, 3])}
    null = {"n": np.ma.MaskedArray([1, 0, 3], mask=[False, True, False])}
    assert digest(zero, {"n": "integer"}) != digest(null, {"n": "integer"})


def test_a_missing_string_differs_from_an_empty_string() -> None:
    types = {"s": "string"}
    assert digest({"s": np.array([None], dtype=object)}, types) != digest(
        {"s": np.array([""], dtype=object)}, types
    )


def test_string_boundaries_are_part_of_the_data() -> None:
    types = {"s": "string"}
    assert digest({"s": np.array(["ab", "c"], dtype=object)}, types) != digest(
        {"s": np.array(["a", "bc"], dtype=object)}, types
    )


def test_datetime_unit_does_not_matter() -> None:
    seconds = {"t": np.array(["2024-05-01T12:00:00"], dtype="datetime64[s]")}
    nanos = {"t": np.array(["2024-05-01T12:00:00"], dtype="datetime64[ns]")}
    assert digest(seconds, {"t": "datetime"}) == digest(nanos, {"t": "datetime"})


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(InvalidInput, match="same length"):
        dataset_fingerprint(
            {"a": np.arange(3), "b": np.arange(4)}, {"a": "integer", "b": "integer"}
        )


def test_an_unknown_type_is_refused_naming_the_column() -> None:
    with pytest.raises(InvalidInput, match="'a' has the type 'decimal'"):
        dataset_fingerprint({"a": np.arange(3)}, {"a": "decimal"})


def test_the_hash_is_the_same_in_a_fresh_process() -> None:
    script = (
        "import numpy as np\n"
        "from keel.stats.fingerprint import dataset_fingerprint\n"
        "from tests.stats.test_fingerprint import TYPES, table\n"
        "print(dataset_fingerprint(table(), TYPES)[0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.strip() == digest(table())


def test_a_million_rows_by_thirty_columns_takes_seconds() -> None:
    rng = np.random.default_rng(7)
    rows = 1_000_000
    columns: Columns = {f"f{i}": rng.normal(size=rows) for i in range(27)}
    columns["n"] = rng.integers(0, 1000, rows)
    columns["b"] = rng.random(rows) > 0.5
    columns["s"] = np.array(["red", "green", None, "blue"] * (rows // 4), dtype=object)
    types = {name: "float" for name in columns} | {"n": "integer", "b": "boolean", "s": "string"}

    started = time.perf_counter()
    _, counted = dataset_fingerprint(columns, types)
    assert counted == rows
    assert time.perf_counter() - started < 15


def test_object_columns_with_none_match_masked_arrays() -> None:
    assert digest({"b": np.array([True, None], dtype=object)}, {"b": "boolean"}) == digest(
        {"b": np.ma.MaskedArray([True, False], mask=[False, True])}, {"b": "boolean"}
    )
    assert digest({"n": np.array([1, None], dtype=object)}, {"n": "integer"}) == digest(
        {"n": np.ma.MaskedArray([1, 0], mask=[False, True])}, {"n": "integer"}
    )


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (np.array([1.5]), "integer"),
        (np.array(["yes"], dtype=object), "boolean"),
        (np.array(["x"], dtype=object), "float"),
        (np.array(["x"], dtype=object), "integer"),
        (np.array([2**64 - 1], dtype=np.uint64), "integer"),
    ],
)
def test_values_that_do_not_fit_the_type_are_refused(values: Any, dtype: str) -> None:
    with pytest.raises(InvalidInput, match="'col'"):
        dataset_fingerprint({"col": values}, {"col": dtype})
