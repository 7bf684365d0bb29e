"""Profiles: the bins a reference fixes, nulls, codes, JSON, and merging hours == one window."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from keel.errors import InvalidInput
from keel.stats.drift import dataset_drift
from keel.stats.profile import (
    OTHER,
    SAMPLE_CAP,
    CategoricalCodes,
    CategoricalProfile,
    DatasetProfile,
    NumericProfile,
    build_reference,
    build_reference_from_chunks,
    empty_like,
    merge_all,
    profile_like,
)

KINDS = {"amount": "numeric", "age": "numeric", "plan": "categorical", "region": "categorical"}
PLANS = np.array(["free", "pro", "team", "enterprise"], dtype=object)


def table(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, Any]:
    amount = rng.lognormal(3.0 + shift, 1.0, n)
    amount[rng.random(n) < 0.03] = np.nan
    plan = PLANS[rng.choice(4, n, p=[0.6, 0.25, 0.1, 0.05])]
    plan[rng.random(n) < 0.02] = None
    return {
        "amount": amount,
        "age": rng.integers(18, 90, n),
        "plan": plan,
        "region": CategoricalCodes(rng.integers(-1, 60, n), [f"r{i}" for i in range(60)]),
    }


def test_reference_bins_are_reference_quantiles_and_count_every_row() -> None:
    rng = np.random.default_rng(1)
    data = table(rng, 50_000)
    ref = build_reference(data, KINDS, bins=20, top_k=10)
    amount = ref.columns["amount"]
    assert isinstance(amount, NumericProfile)
    finite = data["amount"][~np.isnan(data["amount"])]
    positions = np.union1d(np.linspace(0, 1, 21), [0.01, 0.99])  # 20 bins + the outer 1%s
    np.testing.assert_allclose(amount.edges, np.quantile(finite, positions), 0, 1e-9)
    assert amount.counts.tolist()[0] == 0 and amount.counts.tolist()[-1] == 0
    assert amount.counts.sum() == amount.count == finite.size
    assert amount.null_count == 50_000 - finite.size
    assert amount.minimum == finite.min() and amount.maximum == finite.max()
    assert amount.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert amount.variance == pytest.approx(finite.var(ddof=1), rel=1e-12)
    # Each slot holds its step of the reference: 1% and 4% at the ends, 1/20 in between.
    assert np.all(np.abs(amount.counts[1:-1] / finite.size - np.diff(positions)) < 1e-3)

    plan = ref.columns["plan"]
    assert isinstance(plan, CategoricalProfile)
    expected = {p: int(np.sum(data["plan"] == p)) for p in PLANS}
    assert plan.counts == dict(sorted(expected.items(), key=lambda kv: -kv[1]))
    assert plan.other == 0
    assert plan.null_count == sum(v is None for v in data["plan"])

    region = ref.columns["region"]
    assert isinstance(region, CategoricalProfile)
    assert len(region.categories) == 10  # top-K
    codes = data["region"].codes
    assert region.null_count == int(np.sum(codes < 0))
    assert region.other == region.count - sum(region.counts[c] for c in region.categories)


def test_values_outside_the_reference_range_land_in_the_outer_slots() -> None:
    ref = build_reference({"x": np.linspace(0.0, 1.0, 101)}, {"x": "numeric"}, bins=10)
    cur = profile_like(ref, {"x": np.array([-1.0, 0.0, 1.0, 1.5, 2.0, None], dtype=object)})
    x = cur.columns["x"]
    assert isinstance(x, NumericProfile)
    assert x.counts[0] == 1  # -1.0
    assert x.counts[1] == 1  # 0.0 is the reference minimum: inside
    assert x.counts[-2] == 1  # 1.0 is the reference maximum: inside
    assert x.counts[-1] == 2  # 1.5, 2.0
    assert x.null_count == 1


def test_nan_none_and_inf_are_nulls_in_every_input_type() -> None:
    ref = build_reference(
        {
            "x": np.array([1.0, np.nan, np.inf, 2.0]),
            "c": np.array(["a", None, np.nan, "b"], object),
        },
        {"x": "numeric", "c": "categorical"},
    )
    assert ref.columns["x"].null_count == 2
    assert ref.columns["c"].null_count == 2
    masked = np.ma.MaskedArray([1.0, 2.0, 3.0], mask=[False, True, False])
    assert profile_like(ref, {"x": masked}).columns["x"].null_count == 1


def test_codes_strings_and_objects_profile_the_same() -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(-1, 5, 10_000)
    cats = ["a", "b", "c", "d", "e"]
    coded = CategoricalCodes(codes, cats)
    as_object = coded.values()
    as_str = np.where(codes < 0, "", np.array(cats)[codes])  # no nulls in a str array
    ref = build_reference({"c": as_object}, {"c": "categorical"})
    a = profile_like(ref, {"c": coded}).columns["c"]
    b = profile_like(ref, {"c": as_object}).columns["c"]
    assert isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile)
    assert a.counts == b.counts and a.null_count == b.null_count
    c = profile_like(ref, {"c": as_str[codes >= 0]}).columns["c"]
    assert isinstance(c, CategoricalProfile)
    assert c.counts == a.counts and c.null_count == 0


def test_unseen_categories_count_as_other() -> None:
    ref = build_reference({"c": np.array(["a", "b"] * 5, object)}, {"c": "categorical"})
    cur = profile_like(ref, {"c": np.array(["a", "z", "y", "b"], object)}).columns["c"]
    assert isinstance(cur, CategoricalProfile)
    assert cur.counts == {"a": 1, "b": 1} and cur.other == 2


def test_a_real_category_named_like_the_overflow_is_kept_apart() -> None:
    values = np.array([OTHER, "a", "b", OTHER, "c", "d"] * 50, object)
    ref = build_reference({"c": values}, {"c": "categorical"}, top_k=2)
    column = ref.columns["c"]
    assert isinstance(column, CategoricalProfile)
    assert column.counts == {OTHER: 100, "a": 50} and column.other == 150
    again = DatasetProfile.from_json(ref.to_json()).columns["c"]
    assert isinstance(again, CategoricalProfile)
    assert again.counts == column.counts and again.other == column.other
    cur = profile_like(ref, {"c": values})
    assert dataset_drift(ref, cur).drifted_columns == []


def test_a_profile_stored_before_other_had_its_own_field_still_reads() -> None:
    legacy = {
        "format": "keel-profile-v1",
        "rows": 10,
        "columns": {
            "c": {
                "kind": "categorical",
                "counts": [["a", 6], [OTHER, 4]],
                "count": 10,
                "null_count": 0,
            }
        },
    }
    column = DatasetProfile.from_dict(legacy).columns["c"]
    assert isinstance(column, CategoricalProfile)
    assert column.counts == {"a": 6} and column.other == 4


def assert_same(a: DatasetProfile, b: DatasetProfile) -> None:
    """Counts equal exactly; moments to 1e-9."""
    assert a.rows == b.rows and a.columns.keys() == b.columns.keys()
    for name, pa in a.columns.items():
        pb = b.columns[name]
        if isinstance(pa, NumericProfile):
            assert isinstance(pb, NumericProfile)
            assert np.array_equal(pa.edges, pb.edges)
            assert pa.counts.tolist() == pb.counts.tolist()
            assert (pa.count, pa.null_count) == (pb.count, pb.null_count)
            assert (pa.minimum, pa.maximum) == (pb.minimum, pb.maximum)
            assert pa.mean == pytest.approx(pb.mean, rel=1e-9, abs=1e-9)
            assert pa.m2 == pytest.approx(pb.m2, rel=1e-9, abs=1e-9)
            if pa.sample is None:
                assert pb.sample is None
            else:
                assert pb.sample is not None and pa.sample.tolist() == pb.sample.tolist()
        else:
            assert isinstance(pa, CategoricalProfile) and isinstance(pb, CategoricalProfile)
            assert pa.counts == pb.counts and list(pa.counts) == list(pb.counts)
            assert (pa.count, pa.null_count) == (pb.count, pb.null_count)


def slice_table(data: dict[str, Any], sl: slice) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        out[k] = (
            CategoricalCodes(v.codes[sl], v.categories)
            if isinstance(v, CategoricalCodes)
            else v[sl]
        )
    return out


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_merging_hourly_profiles_equals_profiling_the_whole_window(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = build_reference(table(rng, 20_000), KINDS)
    window = table(rng, 24_000, shift=0.3)
    bounds = np.sort(rng.choice(np.arange(1, 24_000), 23, replace=False))
    hours = [
        profile_like(ref, slice_table(window, slice(lo, hi)))
        for lo, hi in zip([0, *bounds], [*bounds, 24_000], strict=True)
    ]
    whole = profile_like(ref, window)
    assert_same(merge_all(hours) or empty_like(ref), whole)
    # Any order, any grouping.
    order = rng.permutation(24)
    shuffled = merge_all(hours[i] for i in order)
    assert shuffled is not None
    assert_same(shuffled, whole)
    left = hours[0].merge(hours[1]).merge(hours[2])
    right = hours[0].merge(hours[1].merge(hours[2]))
    assert_same(left, right)
    assert_same(hours[3].merge(hours[4]), hours[4].merge(hours[3]))
    assert_same(empty_like(ref).merge(whole), whole)


def test_small_windows_keep_sorted_raw_values_until_the_cap() -> None:
    rng = np.random.default_rng(6)
    ref = build_reference({"x": rng.normal(size=5000)}, {"x": "numeric"})
    assert ref.columns["x"].sample is None  # type: ignore[union-attr]
    a = profile_like(ref, {"x": rng.normal(size=SAMPLE_CAP // 2)})
    b = profile_like(ref, {"x": rng.normal(size=SAMPLE_CAP // 2)})
    merged = a.merge(b).columns["x"]
    assert isinstance(merged, NumericProfile) and merged.sample is not None
    assert merged.sample.size == SAMPLE_CAP and np.all(np.diff(merged.sample) >= 0)
    assert merged.merge(profile_like(ref, {"x": np.ones(1)}).columns["x"]).sample is None  # type: ignore[arg-type]


def test_json_round_trip_is_exact() -> None:
    rng = np.random.default_rng(7)
    ref = build_reference(table(rng, 3000), KINDS)
    cur = profile_like(ref, table(rng, 500))
    for p in (ref, cur, empty_like(ref)):
        text = p.to_json()
        json.loads(text)  # strict JSON: no NaN or Infinity
        back = DatasetProfile.from_json(text)
        assert_same(back, p)
        assert back.to_dict() == p.to_dict()
        assert_same(DatasetProfile.from_dict(json.loads(json.dumps(p.to_dict()))), p)  # lists
    empty = DatasetProfile.from_json(empty_like(ref).to_json()).columns["amount"]
    assert isinstance(empty, NumericProfile) and math.isnan(empty.minimum)


def test_chunked_reference_equals_counting_the_whole_on_the_first_chunks_bins() -> None:
    rng = np.random.default_rng(8)
    data = table(rng, 30_000)
    chunks = [slice_table(data, slice(i, i + 10_000)) for i in range(0, 30_000, 10_000)]
    chunked = build_reference_from_chunks(iter(chunks), KINDS)
    first = build_reference(chunks[0], KINDS)
    assert_same(chunked, first.merge(profile_like(first, slice_table(data, slice(10_000, None)))))


def test_bad_input_is_rejected_with_the_column_named() -> None:
    with pytest.raises(InvalidInput, match=r"'x'.*kind must be"):
        build_reference({"x": np.ones(3)}, {"x": "text"})
    with pytest.raises(InvalidInput, match=r"'y'.*missing"):
        build_reference({"x": np.ones(3)}, {"y": "numeric"})
    with pytest.raises(InvalidInput, match="same length"):
        build_reference({"x": np.ones(3), "y": np.ones(4)}, {"x": "numeric", "y": "numeric"})
    with pytest.raises(InvalidInput, match=r"'x'.*not numbers"):
        build_reference({"x": np.array(["a", "b"], object)}, {"x": "numeric"})
    a = build_reference({"x": np.arange(10.0)}, {"x": "numeric"})
    b = build_reference({"x": np.arange(20.0)}, {"x": "numeric"})
    with pytest.raises(InvalidInput, match="different bin edges"):
        a.merge(b)
    with pytest.raises(InvalidInput, match="format"):
        DatasetProfile.from_dict({"rows": 1, "columns": {}})


def test_large_tables_profile_the_same_on_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import keel.stats.profile as module

    rng = np.random.default_rng(9)
    data = table(rng, 250_000)
    threaded = build_reference(data, KINDS)
    monkeypatch.setattr(module, "_PARALLEL_ROWS", 10**12)
    assert_same(threaded, build_reference(data, KINDS))
    assert_same(profile_like(threaded, data), threaded)
