"""Data quality from profiles, and latency figures, against direct computations on the rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keel.errors import InvalidInput
from keel.stats.latency import error_rate, quantiles, throughput_per_s
from keel.stats.profile import CategoricalProfile, NumericProfile, build_reference, profile_like
from keel.stats.quality import (
    missing_rate,
    missing_rate_change,
    out_of_range_share,
    row_count_anomaly,
    unseen_categories,
)


def test_missing_and_out_of_range_equal_counting_the_rows() -> None:
    rng = np.random.default_rng(20)
    ref_x = rng.normal(size=10_000)
    ref_x[rng.random(10_000) < 0.02] = np.nan
    cur_x = rng.normal(0.5, 1.5, 8000)
    cur_x[rng.random(8000) < 0.1] = np.nan
    ref = build_reference({"x": ref_x}, {"x": "numeric"})
    cur = profile_like(ref, {"x": cur_x})
    r, c = ref.columns["x"], cur.columns["x"]
    assert isinstance(r, NumericProfile) and isinstance(c, NumericProfile)
    assert missing_rate(r) == np.isnan(ref_x).mean()
    assert missing_rate_change(r, c) == pytest.approx(
        np.isnan(cur_x).mean() - np.isnan(ref_x).mean(), abs=1e-12
    )
    lo, hi = np.nanmin(ref_x), np.nanmax(ref_x)
    valid = cur_x[~np.isnan(cur_x)]
    assert out_of_range_share(r, c) == pytest.approx(
        np.mean((valid < lo) | (valid > hi)), abs=1e-12
    )
    assert out_of_range_share(r, profile_like(ref, {"x": ref_x}).columns["x"]) == 0.0  # type: ignore[arg-type]


def test_unseen_categories() -> None:
    ref = build_reference({"c": np.array(["a", "b", "c"] * 10)}, {"c": "categorical"})
    cur = profile_like(ref, {"c": np.array(["a", "d", "e", "b", None], dtype=object)})
    r, c = ref.columns["c"], cur.columns["c"]
    assert isinstance(r, CategoricalProfile) and isinstance(c, CategoricalProfile)
    assert unseen_categories(r, c) == 0.5
    # With more categories than top-K, only the growth of "other" counts.
    many = build_reference({"c": np.array(list("abcdef") * 10)}, {"c": "categorical"}, top_k=3)
    cur2 = profile_like(many, {"c": np.array(list("aedz"))})
    r2, c2 = many.columns["c"], cur2.columns["c"]
    assert isinstance(r2, CategoricalProfile) and isinstance(c2, CategoricalProfile)
    assert unseen_categories(r2, c2) == pytest.approx(0.75 - 0.5)


def test_row_count_anomalies() -> None:
    steady = [1000, 1020, 990, 1005, 1010, 995]
    assert not row_count_anomaly(steady, 1030).anomalous
    drop = row_count_anomaly(steady, 200)
    assert drop.anomalous and drop.zscore < -3 and drop.expected == pytest.approx(np.mean(steady))
    assert drop.spread == pytest.approx(max(np.std(steady, ddof=1), math.sqrt(np.mean(steady))))
    # A perfectly steady history is not alarmed by a change within Poisson noise.
    assert not row_count_anomaly([100, 100, 100], 110).anomalous
    assert row_count_anomaly([100, 100, 100], 200).anomalous
    few = row_count_anomaly([5], 5000)
    assert not few.anomalous and math.isnan(few.zscore)
    with pytest.raises(InvalidInput, match="negative"):
        row_count_anomaly([1, 2, 3], -1)


def test_latency_quantiles_error_rate_and_throughput() -> None:
    rng = np.random.default_rng(21)
    latency = rng.lognormal(3, 0.5, 10_000)
    with_nulls = np.concatenate([latency, [np.nan] * 10])
    assert quantiles(with_nulls) == pytest.approx(
        tuple(np.quantile(latency, [0.5, 0.95, 0.99])), abs=1e-9
    )
    assert all(math.isnan(q) for q in quantiles([]))
    assert error_rate(np.array(["boom", None, np.nan, "", "x"], dtype=object)) == 0.4
    assert throughput_per_s(100, 50.0) == 2.0
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        quantiles([1.0], (1.5,))
