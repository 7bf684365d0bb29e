"""The Spark profile of a dataset equals Keel's in-process profile of the same rows.

Counts and bin edges exactly, moments to 1e-9, and drift verdicts identical; for a reference (exact
quantiles found by radix selection) and for a window on a reference's bins.
"""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from keel.errors import InvalidInput
from keel.sdk.spark import profile
from keel.sdk.spark_columns import stats_columns
from keel.services.telemetry_profiles import stats_columns as server_columns
from keel.stats.drift import dataset_drift
from keel.stats.profile import (
    CategoricalProfile,
    DatasetProfile,
    NumericProfile,
    build_reference,
    profile_like,
)

KINDS = {
    "amount": "numeric",
    "age": "numeric",
    "seen": "numeric",
    "plan": "categorical",
    "active": "categorical",
}


def _table(rows: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.0 + shift, 1.0, rows)
    amount[::13] = np.nan
    amount[min(5, rows - 1)] = -0.0
    plan = rng.choice(["basic", "pro", "team", "ünïcode"], rows, p=[0.5, 0.3, 0.15, 0.05])
    base = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    return pa.table(
        {
            "amount": amount,
            "age": pa.array(rng.integers(18, 90, rows), pa.int64()),
            "seen": pa.array(base + rng.integers(0, 10**11, rows), pa.timestamp("us", tz="UTC")),
            "plan": pa.array([None if i % 29 == 0 else p for i, p in enumerate(plan.tolist())]),
            "active": pa.array(rng.random(rows) < 0.3 + shift / 10),
            "ignored": pa.array([[1]] * rows),  # a list column: not profiled
        }
    )


def _frame(spark: Any, table: pa.Table, partitions: int = 3) -> Any:
    return spark.createDataFrame(table).repartition(partitions)


def assert_same_profile(spark_profile: DatasetProfile, local: DatasetProfile) -> None:
    assert spark_profile.rows == local.rows
    assert list(spark_profile.columns) == list(local.columns)
    for name, mine in spark_profile.columns.items():
        theirs = local.columns[name]
        if isinstance(mine, CategoricalProfile):
            assert isinstance(theirs, CategoricalProfile)
            assert mine.to_dict() == theirs.to_dict(), name
            continue
        assert isinstance(mine, NumericProfile) and isinstance(theirs, NumericProfile)
        assert mine.edges.tolist() == theirs.edges.tolist(), name
        assert mine.counts.tolist() == theirs.counts.tolist(), name
        assert (mine.count, mine.null_count) == (theirs.count, theirs.null_count), name
        assert (mine.minimum, mine.maximum) == (theirs.minimum, theirs.maximum), name
        assert mine.mean == pytest.approx(theirs.mean, rel=1e-9, abs=1e-9), name
        assert mine.m2 == pytest.approx(theirs.m2, rel=1e-9), name
        assert mine.sums is not None and theirs.sums is not None
        np.testing.assert_allclose(mine.sums, theirs.sums, rtol=1e-9, atol=1e-9)
        if theirs.sample is None:
            assert mine.sample is None
        else:
            assert mine.sample is not None and mine.sample.tolist() == theirs.sample.tolist()


@pytest.fixture(scope="module")
def reference_table() -> pa.Table:
    return _table(10_000, seed=7)


@pytest.fixture(scope="module")
def spark_reference(spark: Any, reference_table: pa.Table) -> DatasetProfile:
    return profile(_frame(spark, reference_table), bins=20, top_k=3)


@pytest.fixture(scope="module")
def local_reference(reference_table: pa.Table) -> DatasetProfile:
    return build_reference(stats_columns(reference_table, KINDS), KINDS, bins=20, top_k=3)


def test_a_spark_reference_equals_the_in_process_one(
    spark_reference: DatasetProfile, local_reference: DatasetProfile
) -> None:
    assert_same_profile(spark_reference, local_reference)
    plan = spark_reference.columns["plan"]
    assert isinstance(plan, CategoricalProfile) and plan.other > 0  # top_k cut a category


def test_a_spark_window_equals_the_in_process_one_and_gives_the_same_drift_verdicts(
    spark: Any, local_reference: DatasetProfile
) -> None:
    for shift, drifted in ((0.0, False), (0.5, True)):
        table = _table(8_000, seed=11, shift=shift)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            window = profile(_frame(spark, table, 4), reference=local_reference)
        assert not [w for w in caught if "pandas" in str(w.message)]  # quiet_pandas_check
        local = profile_like(local_reference, stats_columns(table, KINDS))
        assert_same_profile(window, local)
        mine, theirs = dataset_drift(local_reference, window), dataset_drift(local_reference, local)
        assert ("amount" in mine.drifted_columns) is drifted
        assert [(c.column, c.drifted, c.any_drift) for c in mine.columns] == [
            (c.column, c.drifted, c.any_drift) for c in theirs.columns
        ]
        for a, b in zip(mine.columns, theirs.columns, strict=True):
            assert math.isclose(a.value, b.value, rel_tol=1e-9, abs_tol=1e-12), a.column


def test_tiny_and_empty_data(spark: Any, local_reference: DatasetProfile) -> None:
    small = _table(5, seed=1)
    local = build_reference(stats_columns(small, KINDS), KINDS, bins=20, top_k=50)
    assert_same_profile(profile(_frame(spark, small, 4), top_k=50), local)
    empty = profile(_frame(spark, small.slice(0, 0), 1), reference=local_reference)
    assert empty.rows == 0 and list(empty.columns) == list(KINDS)


def test_the_workers_read_columns_as_the_server_does(reference_table: pa.Table) -> None:
    mine = stats_columns(reference_table, KINDS)
    theirs = server_columns(reference_table, KINDS)
    for name in KINDS:
        a, b = mine[name], theirs[name]
        if isinstance(a, np.ndarray):
            assert np.array_equal(a, np.asarray(b), equal_nan=True), name
        else:
            assert a.values().tolist() == b.values().tolist(), name  # type: ignore[union-attr]


def test_bad_kinds_name_the_column_and_the_fix(spark: Any, reference_table: pa.Table) -> None:
    df = _frame(spark, reference_table.slice(0, 10), 1)
    with pytest.raises(InvalidInput, match="'nope' is not in the DataFrame"):
        profile(df, kinds={"nope": "numeric"})
    with pytest.raises(InvalidInput, match="'plan' is numeric in the profile but StringType"):
        profile(df, kinds={"plan": "numeric"})
    with pytest.raises(InvalidInput, match="kind must be 'numeric' or 'categorical'"):
        profile(df, kinds={"age": "ordinal"})
    with pytest.raises(InvalidInput, match="no number, timestamp, text or boolean column"):
        profile(df.select("ignored"))


def test_an_unreadable_input_names_itself(spark: Any, tmp_path: Path) -> None:
    from keel.cli.profiles import _read

    with pytest.raises(InvalidInput, match=r"Cannot read --input '.*nope.parquet'"):
        _read(spark, str(tmp_path / "nope.parquet"))
    with pytest.raises(InvalidInput, match="Cannot read --input 'no_such_table'"):
        _read(spark, "no_such_table")
