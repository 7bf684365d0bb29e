"""Keel's mergeable profiles computed on Apache Spark, where very large data already lives.

::

    from keel.sdk.spark import profile
    reference = profile(spark.read.parquet("s3://lake/training/"))          # bins from the data
    window = profile(spark.table("scoring.today"), reference=reference)     # on those bins

Each partition profiles its Arrow batches with the same kernels as the server
(`keel.stats.profile`) and sends one small profile to the driver, which merges them (profiles are
mergeable: counts add, moments combine by Chan et al.'s update). The result equals the in-process
profile of the same rows: counts exactly, moments to rounding. A reference needs its exact
quantiles first: see `keel.sdk.spark_quantiles` (two or three scans, no sort).

We use ``mapInArrow``, not ``mapInPandas``: the kernels read NumPy arrays, which Arrow hands over
without a copy, where pandas would cost a conversion per batch. It also keeps pandas out of the
workers: PySpark 4.3 warns that it "does not yet fully support pandas >= 3.0.0" (Keel locks pandas
3), and since no pandas code of Spark's runs on the data, `quiet_pandas_check` silences that one
warning where Keel calls Spark. ``tests/sdk/test_spark.py`` proves the results equal.

PySpark is optional: ``pip install 'keel-mlops[spark]'``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from keel.errors import InvalidInput, KeelError
from keel.sdk.spark_columns import CATEGORICAL, NUMERIC, stats_columns
from keel.sdk.spark_quantiles import Selection, order_keys, prefix_counts, prefix_values
from keel.stats.profile import (
    DEFAULT_BINS,
    DEFAULT_TOP_K,
    KINDS,
    SEEN_CAP,
    CategoricalProfile,
    ColumnProfile,
    DatasetProfile,
    NumericProfile,
    category_counts,
    category_hash,
    empty_like,
    finite_sorted,
    merge_all,
    profile_like,
    quantile_edges,
    quantile_positions,
)

__all__ = ["profile", "quiet_pandas_check", "spark_session"]

CHUNK_ROWS = 1_000_000
"""Rows a partition profiles at once (its Arrow batches are 10,000 rows by default)."""
INSTALL_HINT = "pip install 'keel-mlops[spark]'"
_SCAN_SCHEMA = (
    "column string, part string, category string, prefix long, bucket long, n long, data binary"
)
_NUMERIC_TYPES = (
    "ByteType",
    "ShortType",
    "IntegerType",
    "LongType",
    "FloatType",
    "DoubleType",
    "DecimalType",
    "TimestampType",
    "TimestampNTZType",
)
_CATEGORICAL_TYPES = ("StringType", "BooleanType", "CharType", "VarcharType")

Batches = Iterator[pa.RecordBatch]
Scan = Callable[[Callable[[Batches], Batches]], list[dict[str, Any]]]


class SparkMissing(KeelError):
    """PySpark (or Java) is not installed."""

    code = "spark_unavailable"


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError:
        raise SparkMissing(
            f"Profiling on Spark needs PySpark and Java 17+: {INSTALL_HINT} "
            "(and a JDK, e.g. Debian's openjdk-17-jre-headless)."
        ) from None
    return pyspark.sql


@contextlib.contextmanager
def quiet_pandas_check() -> Iterator[None]:
    """Silence PySpark's warning that it does not fully support pandas 3 (see the module doc)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="PySpark does not yet fully support pandas",
            category=FutureWarning,
        )
        yield


def spark_session(master: str = "local[2]", app_name: str = "keel-profile") -> Any:
    """A SparkSession for profiling (the running one, when there is one).

    Spark's Python workers run this interpreter, so they import the same Keel.
    """
    sql = _pyspark()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        sql.SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    with quiet_pandas_check():
        return builder.getOrCreate()


def profile(
    df: Any,
    reference: DatasetProfile | Mapping[str, Any] | None = None,
    *,
    kinds: Mapping[str, str] | None = None,
    bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
) -> DatasetProfile:
    """Profile a Spark DataFrame: as a reference (``reference=None``) or on a reference's bins.

    ``kinds`` maps columns to ``"numeric"`` or ``"categorical"``; by default, a reference profiles
    every number, timestamp, text and boolean column, and a window the reference's columns that
    ``df`` has. ``reference`` may be a profile or its dict (``client.get_reference(...).profile``).
    The result equals `keel.stats.profile.build_reference` (or ``profile_like``) of
    the same rows, as the server computes it from an upload.
    """
    if isinstance(reference, Mapping):  # as the API returns it (ReferenceOut.profile)
        reference = DatasetProfile.from_dict(reference)
    if reference is None and (bins < 1 or top_k < 1):
        raise InvalidInput(f"bins and top_k must be at least 1, got bins={bins}, top_k={top_k}")
    chosen = _kinds(df, reference, kinds)
    selected = df.select(*[_as_profiled(df, name, kind) for name, kind in chosen.items()])
    with quiet_pandas_check():
        if reference is None:
            reference, census = _reference_bins(selected, chosen, bins, top_k)
            built = _profile_like(selected, chosen, reference)
            _keep_seen(built, census)
            return built
        return _profile_like(selected, chosen, reference)


# --------------------------------------------------------------------------- columns


def _kinds(
    df: Any, reference: DatasetProfile | None, given: Mapping[str, str] | None
) -> dict[str, str]:
    types = {f.name: type(f.dataType).__name__ for f in df.schema.fields}
    if given is not None:
        for name, kind in given.items():
            if kind not in KINDS:
                raise InvalidInput(
                    f"column {name!r}: kind must be 'numeric' or 'categorical', got {kind!r}"
                )
            if name not in types:
                raise InvalidInput(
                    f"column {name!r} is not in the DataFrame (its columns: {sorted(types)})",
                    {"field": "kinds", "column": name},
                )
            if kind == NUMERIC and types[name] not in _NUMERIC_TYPES:
                raise InvalidInput(
                    f"column {name!r} is numeric in the profile but {types[name]} in the "
                    "DataFrame; cast it to a number or declare it categorical",
                    {"field": "kinds", "column": name},
                )
        return dict(given)
    if reference is not None:
        return {
            name: NUMERIC if isinstance(ref, NumericProfile) else CATEGORICAL
            for name, ref in reference.columns.items()
            if name in types
        }
    found = {
        name: NUMERIC if t in _NUMERIC_TYPES else CATEGORICAL
        for name, t in types.items()
        if t in _NUMERIC_TYPES or t in _CATEGORICAL_TYPES
    }
    if not found:
        raise InvalidInput(
            "The DataFrame has no number, timestamp, text or boolean column to profile.",
            {"field": "df", "columns": sorted(types)},
        )
    return found


def _as_profiled(df: Any, name: str, kind: str) -> Any:
    """The column as the workers read it: decimals as doubles, categories as text."""
    type_name = type(df.schema[name].dataType).__name__
    column = df[name]
    if kind == NUMERIC and type_name == "DecimalType":
        return column.cast("double").alias(name)
    if kind == CATEGORICAL and type_name not in ("StringType", "BooleanType"):
        return column.cast("string").alias(name)
    return column


def _chunks(batches: Batches) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= CHUNK_ROWS:
            yield pa.Table.from_batches(pending)
            pending, rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


# --------------------------------------------------------------------------- window pass


def _profile_like(df: Any, kinds: dict[str, str], reference: DatasetProfile) -> DatasetProfile:
    text = reference.to_json()

    def per_partition(batches: Batches) -> Batches:
        bins = DatasetProfile.from_json(text)
        parts = [profile_like(bins, stats_columns(t, kinds)) for t in _chunks(batches)]
        merged = merge_all(parts)
        if merged is not None:
            yield pa.RecordBatch.from_pydict({"profile": [merged.to_json()]})

    rows = df.mapInArrow(per_partition, "profile string").collect()
    merged = merge_all(DatasetProfile.from_json(r.profile) for r in rows)
    if merged is None:  # no rows at all
        empty = empty_like(reference)
        empty.columns = {n: p for n, p in empty.columns.items() if n in kinds}
        return empty
    return merged


# --------------------------------------------------------------------------- reference bins


Census = dict[str, tuple[int, int, list[str] | None]]


def _reference_bins(
    df: Any, kinds: dict[str, str], bins: int, top_k: int
) -> tuple[DatasetProfile, Census]:
    """Empty profiles holding the reference's exact quantile edges and top-K categories, and
    per categorical column with more than ``top_k`` categories its census (see `_census`)."""
    numeric = [n for n, k in kinds.items() if k == NUMERIC]
    first = df.mapInArrow(_first_pass(kinds), _SCAN_SCHEMA).persist()
    try:
        counts: dict[str, dict[tuple[int, int], int]] = {n: {} for n in numeric}
        for r in first.where("part = 'hist'").collect():
            key = (r.prefix, r.bucket)
            counts[r.column][key] = counts[r.column].get(key, 0) + r.n
        categories = _top_categories(first, top_k)
        census = _census(first, top_k)
    finally:
        first.unpersist()
    columns: dict[str, ColumnProfile] = {}
    selections: dict[str, Selection] = {}
    for name in numeric:
        n = sum(counts[name].values())
        if n:
            lo, hi, _ = quantile_positions(n, bins)
            selections[name] = Selection.of(n, [*lo.tolist(), *hi.tolist()])
            selections[name].narrow(counts[name])
    select_ranks(_spark_scan(df), selections)
    for name, kind in kinds.items():
        if kind == CATEGORICAL:
            columns[name] = CategoricalProfile(
                counts=dict.fromkeys(categories.get(name, []), 0), count=0, null_count=0
            )
            continue
        edges = np.empty(0, dtype=np.float64)
        if name in selections:
            lo, hi, frac = quantile_positions(selections[name].count, bins)
            edges = quantile_edges(selections[name].at(lo), selections[name].at(hi), frac)
        columns[name] = NumericProfile(
            edges=edges,
            counts=np.zeros(edges.shape[0] + 1, dtype=np.int64),
            count=0,
            null_count=0,
            minimum=np.nan,
            maximum=np.nan,
            mean=0.0,
            m2=0.0,
        )
    return DatasetProfile(rows=0, columns=columns), census


def _census(first: Any, top_k: int) -> Census:
    """Per categorical column with more than ``top_k`` categories: how many it saw once and
    twice, and the categories themselves when at most ``SEEN_CAP`` (the reference's ``seen``
    set, as `keel.stats.profile` keeps it; only then do they reach the driver)."""
    sql = _pyspark()
    f = sql.functions
    totals = (
        first.where("part = 'category'")
        .groupBy("column", "category")
        .agg(f.sum("n").alias("total"))
        .persist()
    )
    try:
        rows = (
            totals.groupBy("column")
            .agg(
                f.count("*").alias("distinct"),
                f.sum(f.when(f.col("total") == 1, 1).otherwise(0)).alias("once"),
                f.sum(f.when(f.col("total") == 2, 1).otherwise(0)).alias("twice"),
            )
            .collect()
        )
        wide = {r.column: r for r in rows if r.distinct > top_k}
        listed = [name for name, r in wide.items() if r.distinct <= SEEN_CAP]
        found: dict[str, list[str]] = {name: [] for name in listed}
        if listed:
            for r in (
                totals.where(f.col("column").isin(listed)).select("column", "category").collect()
            ):
                found[r.column].append(r.category)
    finally:
        totals.unpersist()
    return {name: (int(r.once), int(r.twice), found.get(name)) for name, r in wide.items()}


def _keep_seen(profile: DatasetProfile, census: Census) -> None:
    """Give a reference built on Spark the ``seen`` set an in-process build gives it."""
    for name, (once, twice, categories) in census.items():
        column = profile.columns.get(name)
        if isinstance(column, CategoricalProfile) and categories is not None:
            column.seen = frozenset(category_hash(c) for c in categories)
            column.singletons, column.doubletons = once, twice


def _first_pass(kinds: dict[str, str]) -> Callable[[Batches], Batches]:
    """Per partition: the top-16-bit key counts of each numeric column, and the count of each
    category (and of nulls) of each categorical one."""

    def per_partition(batches: Batches) -> Batches:
        hist: dict[tuple[str, int, int], int] = {}
        cats: dict[tuple[str, str], int] = {}
        for table in _chunks(batches):
            for name, column in stats_columns(table, kinds).items():
                if kinds[name] == NUMERIC:
                    keys = order_keys(finite_sorted(name, column))
                    for prefix, bucket, n in prefix_counts(keys, 0, [0]):
                        hist[(name, prefix, bucket)] = hist.get((name, prefix, bucket), 0) + n
                    continue
                found, _ = category_counts(column)
                for category, n in found.items():
                    cats[(name, category)] = cats.get((name, category), 0) + n
        out: dict[str, list[Any]] = {k: [] for k in ("column", "part", "category", "prefix")}
        out |= {"bucket": [], "n": [], "data": []}
        for (name, prefix, bucket), n in hist.items():
            _append(out, name, "hist", None, prefix, bucket, n)
        for (name, category), n in cats.items():
            _append(out, name, "category", category, 0, 0, n)
        if out["column"]:
            yield pa.RecordBatch.from_pydict(out, schema=_arrow_pass_schema())

    return per_partition


def _top_categories(first: Any, top_k: int) -> dict[str, list[str]]:
    """Per categorical column, its ``top_k`` categories by count (ties: by name), summed over
    partitions in Spark so the distinct categories never gather on the driver."""
    sql = _pyspark()
    f = sql.functions
    by_count = sql.Window.partitionBy("column").orderBy(f.desc("total"), f.asc("category"))
    ranked = (
        first.where("part = 'category'")
        .groupBy("column", "category")
        .agg(f.sum("n").alias("total"))
        .withColumn("position", f.row_number().over(by_count))
        .where(f.col("position") <= top_k)
        .collect()
    )
    top: dict[str, list[tuple[int, str]]] = {}
    for r in ranked:
        top.setdefault(r.column, []).append((r.position, r.category))
    return {name: [c for _, c in sorted(found)] for name, found in top.items()}


def _spark_scan(df: Any) -> Scan:
    def scan(per_partition: Callable[[Batches], Batches]) -> list[dict[str, Any]]:
        return [r.asDict() for r in df.mapInArrow(per_partition, _SCAN_SCHEMA).collect()]

    return scan


def select_ranks(scan: Scan, selections: dict[str, Selection]) -> None:
    """Narrow every column's wanted ranks to values, one scan per level (see spark_quantiles).

    ``scan`` runs a per-partition function over every partition and returns the rows it yields.
    """
    while any(not s.done for s in selections.values()):
        plan = {
            name: (s.depth, sorted(s.prefixes), s.collect_next())
            for name, s in selections.items()
            if not s.done
        }
        rows = scan(_narrowing_pass(plan))
        counts: dict[str, dict[tuple[int, int], int]] = {name: {} for name in plan}
        values: dict[str, dict[int, list[np.ndarray[Any, Any]]]] = {name: {} for name in plan}
        for r in rows:
            if r["part"] == "hist":
                key = (r["prefix"], r["bucket"])
                counts[r["column"]][key] = counts[r["column"]].get(key, 0) + r["n"]
            else:
                chunk = np.frombuffer(r["data"], dtype="<f8")
                values[r["column"]].setdefault(r["prefix"], []).append(chunk)
        for name, (_, _, collect) in plan.items():
            if collect:
                selections[name].pick({p: np.concatenate(v) for p, v in values[name].items()})
            else:
                selections[name].narrow(counts[name])


def _narrowing_pass(
    plan: dict[str, tuple[int, list[int], bool]],
) -> Callable[[Batches], Batches]:
    kinds = dict.fromkeys(plan, NUMERIC)

    def per_partition(batches: Batches) -> Batches:
        hist: dict[tuple[str, int, int], int] = {}
        for table in _chunks(batches):
            out: dict[str, list[Any]] = {k: [] for k in ("column", "part", "category", "prefix")}
            out |= {"bucket": [], "n": [], "data": []}
            for name, column in stats_columns(table, kinds).items():
                depth, prefixes, collect = plan[name]
                values = finite_sorted(name, column)
                keys = order_keys(values)
                if collect:
                    for prefix, found in prefix_values(values, keys, depth, prefixes):
                        if found.shape[0]:
                            data = found.astype("<f8").tobytes()
                            _append(out, name, "values", None, prefix, 0, found.shape[0], data)
                    continue
                for prefix, bucket, n in prefix_counts(keys, depth, prefixes):
                    hist[(name, prefix, bucket)] = hist.get((name, prefix, bucket), 0) + n
            if out["column"]:
                yield pa.RecordBatch.from_pydict(out, schema=_arrow_pass_schema())
        out = {k: [] for k in ("column", "part", "category", "prefix", "bucket", "n", "data")}
        for (name, prefix, bucket), n in hist.items():
            _append(out, name, "hist", None, prefix, bucket, n)
        if out["column"]:
            yield pa.RecordBatch.from_pydict(out, schema=_arrow_pass_schema())

    return per_partition


def _append(
    out: dict[str, list[Any]],
    column: str,
    part: str,
    category: str | None,
    prefix: int,
    bucket: int,
    count: int,
    data: bytes | None = None,
) -> None:
    for key, value in zip(
        ("column", "part", "category", "prefix", "bucket", "n", "data"),
        (column, part, category, prefix, bucket, count, data),
        strict=True,
    ):
        out[key].append(value)


def _arrow_pass_schema() -> pa.Schema:
    return pa.schema(
        [
            ("column", pa.string()),
            ("part", pa.string()),
            ("category", pa.string()),
            ("prefix", pa.int64()),
            ("bucket", pa.int64()),
            ("n", pa.int64()),
            ("data", pa.binary()),
        ]
    )
