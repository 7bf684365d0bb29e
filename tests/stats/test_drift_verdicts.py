"""The default drift verdicts on the edge cases where Evidently's defaults miss or false-alarm
(issue 11): a 10-point share move, small windows against a big reference, low-cardinality
integers, top-K chosen on a small reference, and tail-only changes. The statistics behind them
agree with SciPy (or the exact formula) to 1e-9."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import special, stats  # type: ignore[import-untyped]

from keel.stats.drift import (
    ColumnDrift,
    ColumnRule,
    DriftConfig,
    chi_square,
    chi_square_pooled,
    column_drift,
    js_distance,
    ks_from_profiles,
    pool_sparse,
    share_difference,
    tail_exceedance,
)
from keel.stats.profile import NumericProfile, build_reference, profile_like

TOL = 1e-9
EVIDENTLY_LIKE = DriftConfig(
    numeric_small="ks",
    categorical_small="chi_square",
    categorical_large="jensen_shannon",
    significance=None,
    low_cardinality=0,
    tail_share=None,
)


def verdict(
    ref: Any, cur: Any, kind: str = "numeric", config: DriftConfig | None = None
) -> ColumnDrift:
    r = build_reference({"x": ref}, {"x": kind})
    c = profile_like(r, {"x": cur})
    return column_drift("x", r.columns["x"], c.columns["x"], config)


def test_share_difference_and_pooling_match_the_formulas() -> None:
    assert share_difference([70, 30], [60, 40]) == pytest.approx(0.1, abs=TOL)
    assert share_difference([1, 1, 2], [1, 1, 2]) == 0.0
    e, a = pool_sparse([500, 400, 3, 2, 95], [480, 420, 1, 0, 99])
    assert e.tolist() == [500, 400, 100] and a.tolist() == [480, 420, 100]
    # Nothing sparse: exactly the plain chi-square, itself SciPy's.
    plain = chi_square([300, 200, 100], [250, 250, 100])
    assert chi_square_pooled([300, 200, 100], [250, 250, 100]) == plain
    pooled = chi_square_pooled([500, 400, 3, 2, 95], [480, 420, 1, 0, 99])
    expected = stats.chi2_contingency(
        np.array([[500, 400, 100], [480, 420, 100]]), correction=False
    )
    assert pooled.pvalue == pytest.approx(expected.pvalue, abs=TOL)
    assert pooled.statistic == pytest.approx(expected.statistic, abs=TOL)


def test_a_ten_point_share_move_drifts_where_js_stays_under_its_threshold() -> None:
    rng = np.random.default_rng(1)
    n = 50_000
    ref, moved = rng.random(n) < 0.3, rng.random(n) < 0.4
    result = verdict(ref.astype(str), moved.astype(str), "categorical")
    assert result.method == "share_difference" and result.drifted
    assert result.value == pytest.approx(0.1, abs=0.01)
    counts = [np.sum(~ref), np.sum(ref)], [np.sum(~moved), np.sum(moved)]
    assert js_distance(*counts) < 0.1  # what Evidently's jensenshannon >= 0.1 misses
    slightly = verdict(ref.astype(str), (rng.random(n) < 0.31).astype(str), "categorical")
    assert not slightly.drifted  # a 1-point move is negligible


def test_small_windows_against_a_big_reference_stay_quiet_but_see_a_real_shift() -> None:
    rng = np.random.default_rng(2)
    reference = build_reference({"x": rng.normal(size=100_000)}, {"x": "numeric"})
    alarms = {"default": 0, "evidently": 0}
    for _ in range(200):
        window = profile_like(reference, {"x": rng.normal(size=30)})
        args = ("x", reference.columns["x"], window.columns["x"])
        alarms["default"] += column_drift(*args).any_drift
        alarms["evidently"] += column_drift(*args, EVIDENTLY_LIKE).drifted
    assert alarms["default"] <= 10  # <= 5% of 200 windows from the reference's distribution
    assert alarms["evidently"] >= 150  # Wasserstein alone alarms on most 30-row windows
    shifted = profile_like(reference, {"x": rng.normal(1.0, 1.0, 300)})
    result = column_drift("x", reference.columns["x"], shifted.columns["x"])
    assert result.drifted and result.pvalue < 1e-6


def test_low_cardinality_integers_are_tested_as_categories() -> None:
    rng = np.random.default_rng(3)
    p = [0.1, 0.2, 0.4, 0.2, 0.1]
    moved = [0.1, 0.2, 0.3, 0.2, 0.2]  # 10 points from value 2 to value 4
    ref = rng.choice(5, 20_000, p=p).astype(np.float64)
    result = verdict(ref, rng.choice(5, 20_000, p=moved).astype(np.float64))
    assert result.method == "share_difference" and result.drifted
    assert result.value == pytest.approx(0.1, abs=0.01)
    assert math.isnan(result.tail_share)  # the categories already count new values
    same = verdict(ref, rng.choice(5, 20_000, p=p).astype(np.float64))
    assert not same.drifted
    # A per-column method keeps the column numeric.
    ks = verdict(ref, ref, config=DriftConfig(columns={"x": ColumnRule(method="ks")}))
    assert ks.method == "ks"


def test_top_k_chosen_on_a_small_reference_does_not_false_alarm() -> None:
    rng = np.random.default_rng(4)
    labels = np.array([f"v{i}" for i in range(5000)], dtype=object)
    alarms = {"default": 0, "evidently": 0}
    for _ in range(40):
        ref, cur = labels[rng.integers(0, 5000, 1000)], labels[rng.integers(0, 5000, 1000)]
        alarms["default"] += verdict(ref, cur, "categorical").drifted
        alarms["evidently"] += verdict(ref, cur, "categorical", EVIDENTLY_LIKE).drifted
    assert alarms["default"] == 0
    assert alarms["evidently"] >= 20  # chi-square on a top 50 picked on the same sample


def test_a_tail_only_change_drifts_by_its_tail() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(size=20_000)
    cur = rng.normal(size=20_000)
    top = cur > np.quantile(cur, 0.97)
    cur[top] += 2.0  # the top 3% move out by two standard deviations
    result = verdict(ref, cur)
    assert not result.drifted and result.value < 0.1  # Wasserstein barely moves
    assert result.tail_drifted and result.any_drift
    assert result.tail_share == pytest.approx(0.03, abs=0.005)
    calm = verdict(ref, rng.normal(size=20_000))
    assert not calm.tail_drifted and calm.tail_share < 0.001


@pytest.mark.parametrize(("n", "m", "k"), [(50, 20, 3), (1000, 30, 1), (200, 200, 12)])
def test_the_tail_p_value_is_the_exact_exchangeable_probability(n: int, m: int, k: int) -> None:
    ref = build_reference({"x": np.arange(float(n))}, {"x": "numeric"})
    cur_values = np.concatenate([np.zeros(m - k), np.full(k, 10.0 * n)])
    cur = profile_like(ref, {"x": cur_values})
    a, b = ref.columns["x"], cur.columns["x"]
    assert isinstance(a, NumericProfile) and isinstance(b, NumericProfile)
    result = tail_exceedance(a, b)
    exact = min(1.0, 2 * special.comb(m, k, exact=True) / special.comb(n + m, k, exact=True))
    assert result.share == pytest.approx(k / m, abs=TOL)
    assert result.pvalue == pytest.approx(exact, rel=1e-9, abs=1e-300)


def test_bad_gate_settings_name_the_field() -> None:
    from keel.errors import InvalidInput

    with pytest.raises(InvalidInput, match="significance"):
        DriftConfig(significance=1.5)
    with pytest.raises(InvalidInput, match="tail_share"):
        DriftConfig(tail_share=0.0)
    with pytest.raises(InvalidInput, match="low_cardinality"):
        DriftConfig(low_cardinality=-1)


def test_a_heavy_tailed_location_shift_drifts_by_its_ks_statistic() -> None:
    rng = np.random.default_rng(6)
    ref, cur = rng.standard_cauchy(50_000), rng.standard_cauchy(50_000) + 0.5
    result = verdict(ref, cur)
    # The standard deviation of a Cauchy sample is dominated by outliers, so Wasserstein over
    # it stays tiny; a sixth of the values crossed, which the KS statistic sees.
    assert result.value < 0.1 and result.ks_statistic > 0.1
    assert result.drifted and result.pvalue < 1e-6
    assert not verdict(ref, cur, config=DriftConfig(ks_statistic=None)).drifted
    assert not verdict(ref, rng.standard_cauchy(50_000)).drifted


def test_the_gates_limiting_ks_p_value_never_overstates_drift() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=20_000), rng.normal(0.02, 1.0, 20_000)
    ref = build_reference({"x": a}, {"x": "numeric"})
    cur = profile_like(ref, {"x": b})
    r, c = ref.columns["x"], cur.columns["x"]
    assert isinstance(r, NumericProfile) and isinstance(c, NumericProfile)
    exact_size, fast = ks_from_profiles(r, c), ks_from_profiles(r, c, fast=True)
    assert fast.statistic == exact_size.statistic
    assert fast.pvalue == pytest.approx(
        stats.kstwobign.sf(math.sqrt(10_000) * fast.statistic), abs=TOL
    )
    assert exact_size.pvalue <= fast.pvalue <= exact_size.pvalue * 1.05
    for en in (1001, 5000, 20_000):
        for d in np.linspace(0.001, 0.15, 30):
            assert stats.kstwobign.sf(math.sqrt(en) * d) >= stats.kstwo.sf(d, en) * (1 - 1e-12)


def test_a_reference_merged_from_chunks_compares_the_shares_beyond_its_edges() -> None:
    from keel.stats.profile import build_reference_from_chunks

    rng = np.random.default_rng(10)
    chunks = [{"x": rng.normal(size=2000)} for _ in range(5)]  # later chunks pass the edges
    ref = build_reference_from_chunks(chunks, {"x": "numeric"})
    r = ref.columns["x"]
    assert isinstance(r, NumericProfile) and r.counts[0] + r.counts[-1] > 0
    same = profile_like(ref, {"x": rng.normal(size=10_000)})
    c = same.columns["x"]
    assert isinstance(c, NumericProfile)
    assert not column_drift("x", r, c).tail_drifted
    tail = rng.normal(size=10_000)
    tail[:300] = 50.0  # 3% far beyond the reference
    moved = profile_like(ref, {"x": tail}).columns["x"]
    assert isinstance(moved, NumericProfile)
    result = tail_exceedance(r, moved)
    beyond = r.counts[-1] / r.count
    assert result.share == pytest.approx(moved.counts[-1] / moved.count - beyond, abs=TOL)
    assert result.pvalue < 1e-6 and column_drift("x", r, moved).tail_drifted
