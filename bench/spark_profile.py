"""Throughput of `keel.spark.profile` on Spark local[N], next to a no-op mapInPandas pass.

Writes ``--rows`` generated rows (fixed seed; 4 float columns with nulls, 1 integer, 1 text
column of 12 categories) as Parquet in a temporary directory, builds a reference in-process from
the first million rows, then times over the same Spark DataFrame, in the same run:

- the no-op pass: ``mapInPandas`` that yields nothing (Spark still reads the Parquet, converts
  every batch to Arrow and then to pandas, and runs the Python worker): the floor any Python
  pass over the data pays;
- the profile pass: ``keel.spark.profile(df, reference=...)``, the window profile on the
  reference's bins (``mapInArrow`` per partition, merged on the driver).

Each pass runs ``--repeat`` times after a warm-up job; the best time counts. Then the profile
is compared with Keel's in-process profile of the same rows (merged per Parquet row group, as
ingest does): counts exactly, moments to 1e-9 (``equal_to_local``).

    uv run --extra spark python bench/spark_profile.py                  # 10M rows, local[2]
    uv run --extra spark python bench/spark_profile.py --rows 1000000   # quicker

Ends with one JSON line: spark_rows_per_s and noop_rows_per_s (per core), ratio (target >= 0.5),
equal_to_local, and the details.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from keel.sdk.spark import profile, quiet_pandas_check, spark_session
from keel.sdk.spark_columns import stats_columns
from keel.stats.profile import (
    CategoricalProfile,
    DatasetProfile,
    NumericProfile,
    build_reference,
    merge_all,
    profile_like,
)

CHUNK = 1_000_000
KINDS = {f"x{i}": "numeric" for i in range(4)} | {"n": "numeric", "plan": "categorical"}
PLANS = np.array([f"plan-{i:02d}" for i in range(12)])


def _chunk(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(4):
        values = rng.lognormal(i, 1.0, rows) if i % 2 else rng.normal(i, 1.0 + i, rows)
        values[rng.random(rows) < 0.02] = np.nan
        columns[f"x{i}"] = values
    columns["n"] = rng.integers(0, 1_000, rows)
    columns["plan"] = PLANS[rng.zipf(1.6, rows) % len(PLANS)]
    return pa.table(columns)


def _write(path: Path, rows: int) -> None:
    with pq.ParquetWriter(path, _chunk(1, 0).schema) as writer:
        for index, start in enumerate(range(0, rows, CHUNK)):
            writer.write_table(_chunk(min(CHUNK, rows - start), seed=index), row_group_size=CHUNK)


def _local_profile(path: Path, reference: DatasetProfile) -> DatasetProfile:
    parquet = pq.ParquetFile(path)
    parts = (
        profile_like(reference, stats_columns(parquet.read_row_group(i), KINDS))
        for i in range(parquet.num_row_groups)
    )
    merged = merge_all(parts)
    assert merged is not None
    return merged


def _equal(a: DatasetProfile, b: DatasetProfile) -> bool:
    if a.rows != b.rows or list(a.columns) != list(b.columns):
        return False
    for name, mine in a.columns.items():
        theirs = b.columns[name]
        if isinstance(mine, CategoricalProfile) or isinstance(theirs, CategoricalProfile):
            if mine.to_dict() != theirs.to_dict():
                return False
            continue
        assert isinstance(mine, NumericProfile) and isinstance(theirs, NumericProfile)
        same = (
            np.array_equal(mine.edges, theirs.edges)
            and np.array_equal(mine.counts, theirs.counts)
            and (mine.count, mine.null_count) == (theirs.count, theirs.null_count)
            and (mine.minimum, mine.maximum) == (theirs.minimum, theirs.maximum)
            and math.isclose(mine.mean, theirs.mean, rel_tol=1e-9, abs_tol=1e-9)
            and math.isclose(mine.m2, theirs.m2, rel_tol=1e-9)
        )
        if not same:
            return False
    return True


def _noop(batches: Iterator[Any]) -> Iterator[Any]:
    for frame in batches:
        yield frame.iloc[:0, :1]


def _best(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = math.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="keel-spark-bench-") as tmp:
        path = Path(tmp) / "data.parquet"
        started = time.perf_counter()
        _write(path, args.rows)
        print(f"wrote {args.rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        first = pq.ParquetFile(path).read_row_group(0)
        reference = build_reference(stats_columns(first, KINDS), KINDS)

        spark = spark_session(args.master, "keel-bench")
        spark.sparkContext.setLogLevel("ERROR")
        cores = int(spark.sparkContext.defaultParallelism)
        try:
            df = spark.read.parquet(str(path))
            partitions = int(df.rdd.getNumPartitions())
            with quiet_pandas_check():
                noop = df.mapInPandas(_noop, "x0 double")
                noop.collect()  # warm-up: JVM, Python workers, Parquet footers
                noop_s, _ = _best(noop.collect, args.repeat)
                spark_s, on_spark = _best(lambda: profile(df, reference=reference), args.repeat)
        finally:
            spark.stop()
        equal = _equal(on_spark, _local_profile(path, reference))

    spark_rate = args.rows / spark_s / cores
    noop_rate = args.rows / noop_s / cores
    print(f"Spark {args.master}: {cores} cores, {partitions} partitions, {args.rows:,} rows")
    print(f"  no-op mapInPandas : {noop_s:6.2f} s  {noop_rate:12,.0f} rows/s per core")
    print(f"  keel.spark.profile: {spark_s:6.2f} s  {spark_rate:12,.0f} rows/s per core")
    print(f"  ratio {spark_rate / noop_rate:.2f} (target >= 0.5), equal to in-process: {equal}")
    result = {
        "spark_rows_per_s": round(spark_rate),
        "noop_rows_per_s": round(noop_rate),
        "ratio": round(spark_rate / noop_rate, 3),
        "equal_to_local": equal,
        "rows": args.rows,
        "master": args.master,
        "cores": cores,
        "partitions": partitions,
        "spark_s": round(spark_s, 3),
        "noop_s": round(noop_s, 3),
        "columns": KINDS,
    }
    print(json.dumps(result))
    sys.exit(0 if equal else 1)


if __name__ == "__main__":
    main()
