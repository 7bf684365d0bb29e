"""Signature inference and fingerprints from the DataFrames users actually train on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keel.domain.signature import ColumnRole, ColumnType
from keel.errors import InvalidInput
from keel.sdk.dataset import fingerprint, infer_signature


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": pd.Series([31, 47, 22], dtype="int32"),
            "visits": pd.Series([1, None, 4], dtype="Int64"),
            "income": [1200.5, 980.0, 1500.25],
            "member": [True, False, True],
            "city": pd.Series(["Lyon", "Nice", None], dtype=object),
            "plan": pd.Categorical(["gold", "free", "free"]),
            "joined": pd.to_datetime(["2024-01-02", "2023-05-06", "2022-07-08"]),
            "gender": ["f", "m", "f"],
            "churned": pd.Series([0, 1, 0], dtype="uint8"),
        }
    )


def test_every_pandas_dtype_maps_to_its_canonical_type() -> None:
    signature = infer_signature(frame())
    assert {c.name: c.dtype for c in signature.columns} == {
        "age": ColumnType.INTEGER,
        "visits": ColumnType.INTEGER,
        "income": ColumnType.FLOAT,
        "member": ColumnType.BOOLEAN,
        "city": ColumnType.STRING,
        "plan": ColumnType.CATEGORICAL,
        "joined": ColumnType.DATETIME,
        "gender": ColumnType.STRING,
        "churned": ColumnType.INTEGER,
    }


def test_columns_keep_the_frame_order() -> None:
    assert [c.name for c in infer_signature(frame()).columns] == list(frame().columns)


def test_roles_come_from_target_and_protected_attributes() -> None:
    signature = infer_signature(frame(), target="churned", protected_attributes=["gender"])
    roles = {c.name: c.role for c in signature.columns}
    assert roles["churned"] is ColumnRole.TARGET
    assert roles["gender"] is ColumnRole.PROTECTED_ATTRIBUTE
    assert roles["age"] is ColumnRole.FEATURE


def test_inferred_columns_are_all_nullable() -> None:
    # Training data without a null says nothing about production: a null there is counted as
    # missing (and watched by the quality check), never refused, unless a signature written by
    # someone says "nullable": false.
    assert all(c.nullable for c in infer_signature(frame()).columns)
    no_nulls = pd.DataFrame({"n": [1, 2], "x": [0.5, 1.5]})
    assert all(c.nullable for c in infer_signature(no_nulls).columns)


def test_object_columns_are_typed_by_their_values() -> None:
    # pandas keeps a boolean or number column with a missing value as objects.
    objects = pd.DataFrame(
        {
            "member": pd.Series([True, None, False], dtype=object),
            "visits": pd.Series([1, None, 3], dtype=object),
            "ratio": pd.Series([0.5, None, 1], dtype=object),
            "code": pd.Series([1, "A", None], dtype=object),
        }
    )
    kinds = {c.name: c.dtype for c in infer_signature(objects).columns}
    assert kinds == {
        "member": ColumnType.BOOLEAN,
        "visits": ColumnType.INTEGER,
        "ratio": ColumnType.FLOAT,
        "code": ColumnType.STRING,
    }


def test_an_unknown_target_names_it_and_lists_the_columns() -> None:
    with pytest.raises(InvalidInput) as caught:
        infer_signature(frame(), target="label")
    assert "'label'" in caught.value.message
    assert "age, visits, income" in caught.value.message
    assert caught.value.details["column"] == "label"


def test_an_unknown_protected_attribute_is_refused() -> None:
    with pytest.raises(InvalidInput, match="protected_attributes column 'race'"):
        infer_signature(frame(), protected_attributes=["gender", "race"])


def test_a_dtype_keel_cannot_describe_is_refused_naming_the_column() -> None:
    odd = pd.DataFrame({"wait": pd.to_timedelta([1, 2], unit="s")})
    with pytest.raises(InvalidInput, match="'wait'"):
        infer_signature(odd)


def test_fingerprint_counts_rows_and_records_canonical_column_types() -> None:
    print_ = fingerprint(frame())
    assert print_.rows == 3
    assert [(c.name, c.dtype) for c in print_.columns][:3] == [
        ("age", "integer"),
        ("visits", "integer"),
        ("income", "float"),
    ]


def test_fingerprint_ignores_the_index_and_storage_dtypes() -> None:
    base = fingerprint(frame()).sha256
    shifted = frame().set_axis([10, 11, 12])
    assert fingerprint(shifted).sha256 == base

    widened = frame().astype({"age": "int64", "churned": "Int64", "city": "string"})
    assert fingerprint(widened).sha256 == base


def test_fingerprint_changes_with_one_value() -> None:
    changed = frame()
    changed.loc[1, "income"] = 980.01
    assert fingerprint(changed).sha256 != fingerprint(frame()).sha256


def test_timezones_are_compared_in_utc() -> None:
    paris = pd.DataFrame({"t": pd.to_datetime(["2024-01-01 13:00"]).tz_localize("Europe/Paris")})
    utc = pd.DataFrame({"t": pd.to_datetime(["2024-01-01 12:00"]).tz_localize("UTC")})
    assert fingerprint(paris).sha256 == fingerprint(utc).sha256


def test_a_missing_integer_differs_from_zero() -> None:
    with_null = pd.DataFrame({"n": pd.Series([1, None], dtype="Int64")})
    with_zero = pd.DataFrame({"n": pd.Series([1, 0], dtype="Int64")})
    assert fingerprint(with_null).sha256 != fingerprint(with_zero).sha256


def test_float_nan_and_none_hash_alike_in_a_frame() -> None:
    a = pd.DataFrame({"x": [1.0, np.nan]})
    b = pd.DataFrame({"x": pd.Series([1.0, None], dtype="Float64")})
    assert fingerprint(a).sha256 == fingerprint(b).sha256
