"""Exact order statistics by radix selection (`keel.sdk.spark_quantiles`), driven here over
Arrow batches in-process, so every level of the descent is tested without starting Spark."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from keel.sdk import spark_quantiles
from keel.sdk.spark import select_ranks
from keel.sdk.spark_quantiles import Selection, key_value, order_keys, prefix_counts
from keel.stats.profile import build_reference, quantile_edges, quantile_positions


def _partitions(values: np.ndarray[Any, Any], parts: int) -> list[list[pa.RecordBatch]]:
    table = pa.table({"x": values})
    size = -(-len(values) // parts)
    return [table.slice(i * size, size).to_batches(max_chunksize=700) for i in range(parts)]


def _edges(values: np.ndarray[Any, Any], bins: int, partitions: int) -> list[float]:
    finite = np.sort(values[np.isfinite(values)])
    n = finite.shape[0]
    lo, hi, frac = quantile_positions(n, bins)
    selection = Selection.of(n, [*lo.tolist(), *hi.tolist()])
    first = dict(((p, b), c) for p, b, c in prefix_counts(order_keys(finite), 0, [0]))
    selection.narrow(first)
    batches = _partitions(values, partitions)

    def scan(per_partition: Any) -> list[dict[str, Any]]:
        out: list[pa.RecordBatch] = []
        for part in batches:
            out.extend(per_partition(iter(part)))
        return [row for batch in out for row in batch.to_pylist()]

    select_ranks(scan, {"x": selection})
    edges: list[float] = quantile_edges(selection.at(lo), selection.at(hi), frac).tolist()
    return edges


VALUES = {
    "normal with duplicates, infinities and NaN": np.concatenate(
        [
            np.random.default_rng(5).normal(size=5000),
            np.full(800, 0.25),
            [np.inf, -np.inf, np.nan, -0.0, 0.0, 1e-300, -1e300, 1e300],
        ]
    ),
    "constant": np.full(1000, -7.5),
    "integers": np.random.default_rng(2).integers(-50, 50, 3000).astype(np.float64),
}


@pytest.mark.parametrize("cap", [spark_quantiles.COLLECT_CAP, 10, 0])
@pytest.mark.parametrize("name", list(VALUES))
def test_selected_edges_equal_the_sorted_ones(
    name: str, cap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any collect cap (0: descend all four levels to the exact key) gives the same edges."""
    monkeypatch.setattr(spark_quantiles, "COLLECT_CAP", cap)
    values = VALUES[name]
    expected = build_reference({"x": values}, {"x": "numeric"}, bins=13).columns["x"]
    assert _edges(values, 13, partitions=3) == expected.edges.tolist()  # type: ignore[union-attr]


def test_order_keys_sort_as_the_numbers_do() -> None:
    values = np.array([-np.inf, -1e300, -2.5, -1e-300, -0.0, 0.0, 1e-300, 3.0, 1e300, np.inf])
    keys = order_keys(values)
    assert (np.diff(keys.astype(object)) >= 0).all()
    assert [key_value(int(k)) for k in keys] == [*values[:4], 0.0, *values[5:]]


def test_keel_and_its_server_work_without_pyspark() -> None:
    """With PySpark missing, `import keel.spark` and the server still work, and starting Spark
    says how to install it."""
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "import keel.spark, keel.server, keel.cli.main\n"
        "from keel.sdk.spark import SparkMissing\n"
        "try:\n    keel.spark.spark_session()\n"
        "except SparkMissing as exc:\n    print(exc.message)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "pip install 'keel-mlops[spark]'" in done.stdout
