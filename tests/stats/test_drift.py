"""Drift tests agree with SciPy or a hand computation to 1e-9; profile-based KS and Wasserstein stay
within their documented bounds of the exact values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]

from keel.errors import InvalidInput
from keel.stats.drift import (
    ColumnRule,
    DriftConfig,
    chi_square,
    column_drift,
    dataset_drift,
    js_distance,
    ks_exact,
    ks_from_profiles,
    psi,
    wasserstein_from_profiles,
    wasserstein_normalized,
)
from keel.stats.profile import (
    NumericProfile,
    build_reference,
    profile_like,
)

TOL = 1e-9


def numeric(ref: Any, cur: Any, bins: int = 20) -> tuple[NumericProfile, NumericProfile]:
    r = build_reference({"x": ref}, {"x": "numeric"}, bins=bins)
    c = profile_like(r, {"x": cur})
    a, b = r.columns["x"], c.columns["x"]
    assert isinstance(a, NumericProfile) and isinstance(b, NumericProfile)
    return a, b


def test_psi_matches_the_formula_by_hand() -> None:
    e, a = np.array([120, 300, 80, 0]), np.array([100, 250, 140, 10])
    pe, pa = e / e.sum(), a / a.sum()
    pe[pe == 0] = 1e-4
    expected = sum((x - y) * math.log(x / y) for x, y in zip(pa, pe, strict=True))
    assert psi(e, a) == pytest.approx(expected, abs=TOL)
    assert psi(e, e) == 0.0


def test_js_distance_matches_entropies_by_hand() -> None:
    p, q = np.array([0.5, 0.3, 0.2, 0.0]), np.array([0.1, 0.3, 0.3, 0.3])
    m = (p + q) / 2

    def kl(x: np.ndarray, y: np.ndarray) -> float:
        return float(sum(a * math.log(a / b) for a, b in zip(x, y, strict=True) if a > 0))

    expected = math.sqrt((kl(p, m) + kl(q, m)) / 2)
    assert js_distance(p * 1000, q * 10) == pytest.approx(expected, abs=TOL)
    assert js_distance([1, 0], [0, 1]) == pytest.approx(math.sqrt(math.log(2)), abs=TOL)


def test_chi_square_matches_pearson_by_hand() -> None:
    e, a = np.array([200.0, 150.0, 50.0, 0.0, 100.0]), np.array([90.0, 60.0, 40.0, 0.0, 10.0])
    table = np.stack([e, a])[:, [0, 1, 2, 4]]
    expected_cells = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    statistic = float(((table - expected_cells) ** 2 / expected_cells).sum())
    result = chi_square(e, a)
    assert result.statistic == pytest.approx(statistic, abs=TOL)
    assert result.dof == 3
    assert result.pvalue == pytest.approx(stats.chi2.sf(statistic, 3), abs=TOL)
    assert chi_square([5, 0], [7, 0]).pvalue == 1.0


def test_ks_exact_is_scipys_two_sample_test() -> None:
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=300), rng.normal(0.2, 1.0, 250)
    expected = stats.ks_2samp(a, b)
    result = ks_exact(a, b)
    assert result.statistic == pytest.approx(expected.statistic, abs=TOL)
    assert result.pvalue == pytest.approx(expected.pvalue, abs=TOL)
    # Small profiles keep raw values: the profile test is the exact test.
    ref, cur = numeric(a, b)
    from_profiles = ks_from_profiles(ref, cur)
    assert from_profiles.error_bound == 0.0
    assert from_profiles.statistic == pytest.approx(expected.statistic, abs=TOL)
    assert from_profiles.pvalue == pytest.approx(expected.pvalue, abs=TOL)


def seeded_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    n = 5000
    return [
        ("same", rng.normal(size=n), rng.normal(size=n)),
        ("shift", rng.normal(size=n), rng.normal(0.3, 1.0, 3 * n)),
        ("scale", rng.normal(size=2 * n), rng.normal(0.0, 2.0, n)),
        ("skew", rng.lognormal(0, 1, n), rng.lognormal(0.2, 1.2, n)),
        ("ties", rng.integers(0, 7, n).astype(float), rng.integers(0, 9, n).astype(float)),
        ("outside", rng.uniform(0, 1, n), rng.uniform(-0.5, 2.0, n)),
        (
            "bimodal",
            rng.normal(size=n),
            np.concatenate([rng.normal(-2, 0.3, n), rng.normal(2, 0.3, n)]),
        ),
        ("constant", np.full(n, 3.0), rng.normal(3.0, 0.1, n)),
    ]


@pytest.mark.parametrize("bins", [5, 10, 20, 50])
@pytest.mark.parametrize(("case", "a", "b"), seeded_pairs(), ids=[c[0] for c in seeded_pairs()])
def test_binned_ks_stays_within_its_bound_of_exact_ks(
    case: str, a: np.ndarray, b: np.ndarray, bins: int
) -> None:
    ref, cur = numeric(a, b, bins)
    assert ref.sample is None and cur.sample is None
    exact = stats.ks_2samp(a, b).statistic
    binned = ks_from_profiles(ref, cur)
    assert binned.statistic <= exact + 1e-12
    assert exact <= binned.statistic + binned.error_bound + 1e-12
    assert binned.error_bound <= max(1.0 / bins * 1.05, 0.0) or case in (
        "ties",
        "constant",
        "outside",
    )
    m, n = sorted([float(a.size), float(b.size)], reverse=True)
    assert binned.pvalue == pytest.approx(
        stats.kstwo.sf(binned.statistic, round(m * n / (m + n))), abs=TOL
    )


@pytest.mark.parametrize(("case", "a", "b"), seeded_pairs(), ids=[c[0] for c in seeded_pairs()])
def test_binned_wasserstein_stays_within_its_bound_of_exact(
    case: str, a: np.ndarray, b: np.ndarray
) -> None:
    ref, cur = numeric(a, b)
    exact = stats.wasserstein_distance(a, b) / max(np.std(a), 0.001)
    result = wasserstein_from_profiles(ref, cur)
    assert abs(result.value - exact) <= result.error_bound + 1e-12
    if case in ("same", "shift", "scale"):
        assert abs(result.value - exact) < 0.02  # the interpolation is much better than the bound


def test_wasserstein_on_raw_values_is_scipy_normalised_by_reference_std() -> None:
    rng = np.random.default_rng(12)
    a, b = rng.normal(5, 2, 400), rng.normal(5.5, 2, 300)
    ref, cur = numeric(a, b)
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert wasserstein_normalized(ref, cur) == pytest.approx(expected, abs=TOL)
    # A constant reference is normalised by 0.001, as Evidently does.
    ref, cur = numeric(np.ones(10), np.full(10, 1.01))
    assert wasserstein_normalized(ref, cur) == pytest.approx(10.0, abs=1e-9)


def test_defaults_are_a_distance_at_every_size_with_per_column_overrides() -> None:
    config = DriftConfig()
    assert config.rule("x", "numeric", 1000) == ("wasserstein", 0.1)
    assert config.rule("x", "numeric", 10**6) == ("wasserstein", 0.1)
    assert config.rule("c", "categorical", 1000) == ("share_difference", 0.05)
    assert config.rule("c", "categorical", 10**6) == ("share_difference", 0.05)
    assert config.significance == 0.01  # issue 11: the gate at 0.05 let 3% of normal columns drift
    # Evidently's choice is still one setting away.
    evidently = DriftConfig(
        numeric_small="ks", categorical_small="chi_square", categorical_large="jensen_shannon"
    )
    assert evidently.rule("x", "numeric", 1000) == ("ks", 0.05)
    assert evidently.rule("c", "categorical", 1001) == ("jensen_shannon", 0.1)
    custom = DriftConfig(
        thresholds={"wasserstein": 0.2},
        columns={"c": ColumnRule(method="psi"), "x": ColumnRule(threshold=0.5)},
        drift_share=0.3,
    )
    assert custom.rule("x", "numeric", 10**6) == ("wasserstein", 0.5)
    assert custom.rule("y", "numeric", 10**6) == ("wasserstein", 0.2)
    assert custom.rule("c", "categorical", 10) == ("psi", 0.1)


def test_bad_configuration_names_the_field() -> None:
    with pytest.raises(InvalidInput, match="unknown drift method 'kl'"):
        DriftConfig(columns={"x": ColumnRule(method="kl")})
    with pytest.raises(InvalidInput, match="drift_share"):
        DriftConfig(drift_share=0.0)
    with pytest.raises(InvalidInput, match=r"'c' is categorical.*'ks' does not apply"):
        DriftConfig(columns={"c": ColumnRule(method="ks")}).rule("c", "categorical", 10)
    with pytest.raises(InvalidInput, match="same bins"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(InvalidInput, match="no values"):
        js_distance([0, 0], [1, 2])


def make_table(rng: np.random.Generator, n: int, shifted: bool) -> dict[str, Any]:
    plans = np.array(["free", "pro", "team"], dtype=object)
    p = [0.3, 0.4, 0.3] if shifted else [0.6, 0.3, 0.1]
    return {
        "a": rng.normal(0.5 if shifted else 0.0, 1.0, n),
        "b": rng.normal(size=n),
        "c": rng.exponential(2.0, n),
        "plan": plans[rng.choice(3, n, p=p)],
        "region": plans[rng.choice(3, n)],
    }


KINDS = {
    "a": "numeric",
    "b": "numeric",
    "c": "numeric",
    "plan": "categorical",
    "region": "categorical",
}


@pytest.mark.parametrize(
    ("n", "methods"),
    [(800, ("wasserstein", "share_difference")), (20_000, ("wasserstein", "share_difference"))],
)
def test_dataset_drift_flags_exactly_the_shifted_columns(n: int, methods: tuple[str, str]) -> None:
    rng = np.random.default_rng(13)
    ref = build_reference(make_table(rng, n, False), KINDS)
    cur = profile_like(ref, make_table(rng, n, True))
    result = dataset_drift(ref, cur)
    assert result.drifted_columns == ["a", "plan"]
    assert {c.method for c in result.columns} == set(methods)
    assert result.share == pytest.approx(2 / 5, abs=TOL)
    assert not result.drifted  # 0.4 < 0.5
    assert dataset_drift(ref, cur, DriftConfig(drift_share=0.4)).drifted
    same = dataset_drift(ref, profile_like(ref, make_table(rng, n, False)))
    assert same.drifted_columns == [] and same.share == 0.0


def test_a_column_without_values_is_reported_but_not_tested() -> None:
    ref = build_reference(
        {"x": np.arange(10.0), "y": np.arange(10.0)}, {"x": "numeric", "y": "numeric"}
    )
    cur = profile_like(ref, {"x": np.full(5, np.nan), "y": np.arange(5.0) + 100})
    result = dataset_drift(ref, cur)
    x = result.columns[0]
    assert x.column == "x" and math.isnan(x.value) and not x.drifted and x.current_rows == 0
    assert result.share == 1.0 and result.drifted


def test_column_drift_rejects_mismatched_kinds() -> None:
    ref = build_reference(
        {"x": np.arange(10.0), "c": np.array(list("ab") * 5)}, {"x": "numeric", "c": "categorical"}
    )
    with pytest.raises(InvalidInput, match="'x' is numeric"):
        column_drift("x", ref.columns["x"], ref.columns["c"])
