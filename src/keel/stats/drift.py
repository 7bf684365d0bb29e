"""Drift tests: pure functions over counts, raw samples or :mod:`keel.stats.profile` profiles.

Methods, and the value each reports (``ColumnDrift.value``):

====================  ===================  ========================  =========================
method                column kinds         value                     drifted when (default)
====================  ===================  ========================  =========================
``ks``                numeric              KS p-value                value <= 0.05
``wasserstein``       numeric              Wasserstein / ref. std    value >= 0.1
``psi``               numeric, categorical PSI                       value >= 0.1
``jensen_shannon``    numeric, categorical JS distance (base e)      value >= 0.1
``chi_square``        categorical          chi-square p-value        value <= 0.05
``share_difference``  categorical          largest share change      value >= 0.05
====================  ===================  ========================  =========================

Default choice per column (:class:`DriftConfig`, issue 11; docs/monitoring-defaults.md has the
measurements beside Evidently's): ``wasserstein`` for numeric columns (also drifted when the KS
statistic reaches 0.1), ``share_difference`` for categorical columns and for numeric columns
with at most 5 distinct values; a distance drifts only when the two-sample test on both sample
sizes (KS, or chi-square with sparse categories pooled) has p <= 0.05, so small windows do not
false-alarm. Numeric columns also get a tail test (:func:`tail_exceedance`): values beyond the
reference's range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]
from scipy.spatial import distance  # type: ignore[import-untyped]

from keel.errors import InvalidInput
from keel.stats.profile import (
    OTHER,
    CategoricalProfile,
    ColumnProfile,
    DatasetProfile,
    FloatArray,
    NumericProfile,
)

KS = "ks"
WASSERSTEIN = "wasserstein"
PSI = "psi"
JENSEN_SHANNON = "jensen_shannon"
CHI_SQUARE = "chi_square"
SHARE_DIFFERENCE = "share_difference"

NUMERIC_METHODS = (KS, WASSERSTEIN, PSI, JENSEN_SHANNON)
CATEGORICAL_METHODS = (CHI_SQUARE, PSI, JENSEN_SHANNON, SHARE_DIFFERENCE)
P_VALUE_METHODS = (KS, CHI_SQUARE)
"""Methods whose value is a p-value: drift when value <= threshold (else value >= threshold)."""

DEFAULT_THRESHOLDS: Mapping[str, float] = {
    KS: 0.05,
    CHI_SQUARE: 0.05,
    WASSERSTEIN: 0.1,
    JENSEN_SHANNON: 0.1,
    PSI: 0.1,
    SHARE_DIFFERENCE: 0.05,
}
KS_STATISTIC = 0.1
# The significance gate's level. 0.05 let 3% of unshifted normal columns drift at 1,000 rows
# (a distance past 0.1 and p <= 0.05 together); 0.01 keeps every family at or under 1% while
# material shifts at 1,000 rows still give p far below it (bench/drift_quality.py).
SIGNIFICANCE = 0.01
# The level of the range test (values beyond the reference's extremes): exact and rarely
# fooled (0.2% of unshifted columns at 1,000 rows), so it keeps 0.05 and the tail-only recall
# on small samples. The outer-percentile and new-category tests use a fifth of it.
TAIL_SIGNIFICANCE = 0.05
"""A numeric column also drifts when its KS statistic reaches this (a tenth of the values moved
past each other), with the same significance gate: it sees shifts of heavy-tailed columns whose
standard deviation, which normalises Wasserstein, is dominated by outliers (Cauchy-like)."""
TAIL_SHARE = 0.01
# Categorical columns with more categories than the reference's top-K: drift when the window's
# share of values from categories the reference never saw exceeds the Good-Turing estimate by
# this much (and significantly). A 1-point move is noise at 1,000 rows; 5 points is not.
NEW_CATEGORY_SHARE = 0.05
# The outer-percentile and new-category tests are extra looks at a column beside its main test:
# each is judged at the significance level divided by this.
EXTRA_TEST_LEVEL_DIVISOR = 5.0
"""A numeric column's tail drifts when at least this share of the window lies beyond the
reference's minimum or maximum (and that many is improbable under no change)."""
LOW_CARDINALITY = 5
"""A numeric column whose reference fills at most this many slots is tested as categorical
(Evidently treats numeric columns with at most 5 distinct values as categorical too)."""
MIN_EXPECTED = 5.0
"""The significance gate's chi-square pools categories expected fewer times than this in the
current window (Cochran's rule), so sparse cells do not make small windows false-alarm."""
WASSERSTEIN_MIN_STD = 0.001
"""Floor of the reference standard deviation that normalises Wasserstein (Evidently's value)."""

Counts = npt.ArrayLike


# --------------------------------------------------------------------------- pure tests


def _proportions(counts: Counts, name: str) -> npt.NDArray[np.float64]:
    p = np.asarray(counts, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise InvalidInput(f"{name} must be a non-empty 1-D array of counts")
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise InvalidInput(f"{name} must hold finite, non-negative counts")
    total = p.sum()
    if total <= 0:
        raise InvalidInput(f"{name} holds no values; drift needs data on both sides")
    return np.asarray(p / total, dtype=np.float64)


def psi(expected: Counts, actual: Counts, eps: float = 1e-4) -> float:
    """Population Stability Index of two binned distributions (counts or proportions).

    ``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over the bins, with empty bins set to ``eps``
    (as Evidently does) so the logarithm stays finite. Reference: Siddiqi, N. (2006), *Credit
    Risk Scorecards*, Wiley, p. 137; Yurdakul, B. (2018), "Statistical properties of population
    stability index", Western Michigan University. Rule of thumb: < 0.1 stable, 0.1-0.25 some
    shift, > 0.25 major shift.

    >>> round(psi([50, 30, 20], [30, 30, 40]), 6)
    0.240795
    """
    e = _proportions(expected, "expected")
    a = _proportions(actual, "actual")
    if e.shape != a.shape:
        raise InvalidInput(f"expected and actual need the same bins, got {e.size} and {a.size}")
    e = np.where(e == 0, eps, e)
    a = np.where(a == 0, eps, a)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: Counts, actual: Counts) -> float:
    """Jensen-Shannon distance (natural log; between 0 and sqrt(ln 2)) of two binned distributions.

    The square root of the Jensen-Shannon divergence of Lin, J. (1991), "Divergence measures
    based on the Shannon entropy", IEEE Trans. Inf. Theory 37(1), computed by
    ``scipy.spatial.distance.jensenshannon`` (as Evidently does).

    >>> round(js_distance([50, 30, 20], [30, 30, 40]), 6)
    0.172115
    """
    e = _proportions(expected, "expected")
    a = _proportions(actual, "actual")
    if e.shape != a.shape:
        raise InvalidInput(f"expected and actual need the same bins, got {e.size} and {a.size}")
    return float(distance.jensenshannon(e, a))


def share_difference(expected: Counts, actual: Counts) -> float:
    """The largest absolute difference of one category's share between two count vectors.

    0.1 means some category's share moved by 10 points (say 30% to 40% of the rows). Unlike
    JS or PSI it does not shrink when the move is spread over a large share, so a 10-point move
    of a common category reads 0.1 whatever the category's size.

    >>> round(share_difference([70, 30], [60, 40]), 6)
    0.1
    """
    e = _proportions(expected, "expected")
    a = _proportions(actual, "actual")
    if e.shape != a.shape:
        raise InvalidInput(f"expected and actual need the same bins, got {e.size} and {a.size}")
    return float(np.max(np.abs(a - e)))


@dataclass(frozen=True)
class KsResult:
    """Two-sample Kolmogorov-Smirnov result.

    ``error_bound`` bounds ``|statistic - exact statistic|`` (0 when computed on raw values).
    """

    statistic: float
    pvalue: float
    error_bound: float = 0.0


def ks_exact(reference: npt.ArrayLike, current: npt.ArrayLike) -> KsResult:
    """Two-sample KS test on raw values, by ``scipy.stats.ks_2samp`` (exact p-value when small).

    Kolmogorov, A. (1933); Smirnov, N. (1948), "Table for estimating the goodness of fit of
    empirical distributions", Ann. Math. Stat. 19(2).

    >>> r = ks_exact([0.1, 0.2, 0.3, 0.4, 0.5], [0.35, 0.45, 0.55, 0.65, 0.75])
    >>> r.statistic, round(r.pvalue, 6)
    (0.6, 0.357143)
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.size == 0 or cur.size == 0:
        raise InvalidInput("KS needs at least one value on each side")
    result = stats.ks_2samp(ref, cur)
    return KsResult(float(result.statistic), float(result.pvalue), 0.0)


KOLMOGOROV_LIMIT_ABOVE = 1000
"""Above this effective size ``n*m/(n+m)`` the significance gate reads the binned KS p-value off
the limiting Kolmogorov distribution: ``kstwo.sf`` takes up to 0.5 s at 500,000 (measured),
``kstwobign.sf(sqrt(en) * D)`` microseconds. It was never smaller than ``kstwo`` on a grid of
effective sizes 1,001 to 20,000 and statistics 0.001 to 0.15 (at most 4.4% larger where
p > 0.001), so it never overstates drift; tests/stats/test_drift_verdicts.py checks it."""


def ks_from_profiles(
    reference: NumericProfile, current: NumericProfile, *, fast: bool = False
) -> KsResult:
    """KS test of two numeric profiles: exact on raw values when both still hold them.

    Otherwise the statistic is read off the binned CDFs: ``D_b = max_k |R_k - C_k|`` over the
    slot boundaries, where ``R_k`` and ``C_k`` are the cumulative shares of the reference and the
    current data. Both empirical CDFs are exact at the boundaries, so ``D_b <= D``; inside slot
    ``k`` each CDF moves by at most that slot's share (``r_k``, ``c_k``), so

        ``D_b <= D <= D_b + max_k min(r_k, c_k)``  (``error_bound``; about 1/bins on the
        reference's quantile bins).

    The p-value is the asymptotic one ``ks_2samp`` uses for large samples,
    ``kstwo.sf(D_b, round(n*m/(n+m)))``; since ``D_b <= D`` it never overstates drift. With
    ``fast`` (the significance gate) and an effective size above ``KOLMOGOROV_LIMIT_ABOVE`` it
    is the limiting ``kstwobign.sf(sqrt(en) * D_b)`` instead.

    >>> from keel.stats.profile import build_reference, profile_like
    >>> rng = np.random.default_rng(0)
    >>> ref = build_reference({"x": rng.normal(size=5000)}, {"x": "numeric"})
    >>> cur = profile_like(ref, {"x": rng.normal(0.5, 1.0, 5000)})
    >>> r = ks_from_profiles(ref.columns["x"], cur.columns["x"])
    >>> round(r.statistic, 4), r.pvalue < 1e-10, round(r.error_bound, 4)
    (0.2098, True, 0.05)
    """
    if reference.count == 0 or current.count == 0:
        raise InvalidInput("KS needs at least one value on each side")
    if reference.sample is not None and current.sample is not None:
        return ks_exact(reference.sample, current.sample)
    _same_bins(reference, current)
    r = reference.counts / reference.count
    c = current.counts / current.count
    d = float(np.max(np.abs(np.cumsum(r) - np.cumsum(c))))
    bound = float(np.max(np.minimum(r, c)))
    m, n = sorted([float(reference.count), float(current.count)], reverse=True)
    en = m * n / (m + n)
    if fast and en > KOLMOGOROV_LIMIT_ABOVE:
        pvalue = float(np.clip(stats.kstwobign.sf(math.sqrt(en) * d), 0.0, 1.0))
    else:
        pvalue = float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))
    return KsResult(d, pvalue, bound)


def _same_bins(reference: NumericProfile, current: NumericProfile) -> None:
    if reference.edges.shape != current.edges.shape or not np.array_equal(
        reference.edges, current.edges
    ):
        raise InvalidInput(
            "the profiles have different bin edges; profile the current data with "
            "profile_like() against this reference"
        )


@dataclass(frozen=True)
class WassersteinResult:
    """Normalised Wasserstein distance and a bound on its distance from the exact value."""

    value: float
    error_bound: float = 0.0


def wasserstein_normalized(reference: NumericProfile, current: NumericProfile) -> float:
    """Wasserstein-1 (earth mover's) distance divided by the reference's standard deviation.

    ``W1 = integral |F_ref(x) - F_cur(x)| dx`` (Vaserstein, L. (1969); Ramdas, Garcia and Cuturi
    (2017), "On Wasserstein two-sample testing"), divided by ``max(std_ref, 0.001)`` with the
    population standard deviation (ddof=0), as Evidently's ``wasserstein`` stattest does, so 0.1
    means "moved by a tenth of a standard deviation". See :func:`wasserstein_from_profiles` for
    how it is computed and its error bound.

    >>> from keel.stats.profile import build_reference, profile_like
    >>> ref = build_reference({"x": np.array([0.0, 1.0, 2.0, 3.0])}, {"x": "numeric"})
    >>> cur = profile_like(ref, {"x": np.array([1.0, 2.0, 3.0, 4.0])})
    >>> round(wasserstein_normalized(ref.columns["x"], cur.columns["x"]), 6)  # 1 / std(0..3)
    0.894427
    """
    return wasserstein_from_profiles(reference, current).value


def wasserstein_from_profiles(
    reference: NumericProfile, current: NumericProfile
) -> WassersteinResult:
    """Normalised Wasserstein distance with its error bound.

    Exact (``scipy.stats.wasserstein_distance``) when both profiles still hold their raw
    values. Otherwise each side's mass in slot ``k`` is placed at that side's mean of the slot
    (the profile keeps per-slot sums) and W1 of the two discrete distributions is computed
    exactly. Moving mass within a slot of width ``w_k`` to its mean costs at most ``w_k / 2`` per
    unit, so by the triangle inequality ``|W_profiles - W| <= sum_k w_k (r_k + c_k) / 2``
    (``error_bound``, normalised like the value; the outer slots span from the smaller minimum to
    the first edge and from the last edge to the larger maximum). Means are kept, so a pure shift
    whose CDFs do not cross comes out exact.
    """
    if reference.count == 0 or current.count == 0:
        raise InvalidInput("Wasserstein needs at least one value on each side")
    lo = float(np.fmin(reference.minimum, current.minimum))
    hi = float(np.fmax(reference.maximum, current.maximum))
    # Everything is computed in units of a power of two near the largest magnitude: exact (a
    # power of two only moves the exponent), and huge values (near 1e200) cannot overflow.
    scale = _power_of_two(max(abs(lo), abs(hi)))
    norm = max(_population_std(reference) / scale, WASSERSTEIN_MIN_STD / scale)
    if reference.sample is not None and current.sample is not None:
        exact = stats.wasserstein_distance(reference.sample / scale, current.sample / scale)
        return WassersteinResult(float(exact) / norm, 0.0)
    _same_bins(reference, current)
    if reference.sums is None or current.sums is None:
        raise InvalidInput("the profiles lack per-slot sums; rebuild them with profile_like()")
    bounds = np.concatenate([[lo], reference.edges, [hi]]) / scale
    bounds[1:-1] = np.clip(bounds[1:-1], lo / scale, hi / scale)
    width = np.maximum(np.diff(bounds), 0.0)
    r = reference.counts / reference.count
    c = current.counts / current.count
    # Each slot's mass sits at that slot's mean on each side; W1 of those two discrete
    # distributions is the integral of |CDF difference| over the sorted atom positions.
    atoms_r, atoms_c = reference.counts > 0, current.counts > 0
    positions = np.concatenate(
        [
            _slot_means(reference, bounds, scale)[atoms_r],
            _slot_means(current, bounds, scale)[atoms_c],
        ]
    )
    weights = np.concatenate([r[atoms_r], -c[atoms_c]])
    order = np.argsort(positions, kind="stable")
    positions, weights = positions[order], weights[order]
    cdf_gap = np.abs(np.cumsum(weights)[:-1])
    area = float(np.dot(cdf_gap, np.diff(positions)))
    # Moving a slot's mass to its mean costs at most half the slot's width (triangle inequality
    # on both sides).
    bound = float(np.dot(width, r + c) / 2)
    return WassersteinResult(area / norm, bound / norm)


def _power_of_two(magnitude: float) -> float:
    if not math.isfinite(magnitude) or magnitude == 0.0:
        return 1.0
    return math.ldexp(1.0, math.frexp(magnitude)[1])


def _slot_means(profile: NumericProfile, bounds: FloatArray, scale: float) -> FloatArray:
    """Each slot's mean in units of ``scale``; a slot whose sum overflowed is placed at its
    middle (``bounds`` are the slots' bounds in the same units)."""
    assert profile.sums is not None
    filled = np.maximum(profile.counts, 1)
    with np.errstate(over="ignore", invalid="ignore"):
        means = (profile.sums / scale) / filled
    middles = bounds[:-1] / 2 + bounds[1:] / 2
    return np.where(np.isfinite(means), means, middles)


def _population_std(profile: NumericProfile) -> float:
    """``sqrt(m2 / n)``. When the squared deviations overflowed (values beyond about 1e154), it
    is computed again in units of a power of two: from the raw values while the profile keeps
    them, otherwise from the slot means (which leaves out the spread within each slot)."""
    std = math.sqrt(profile.m2 / profile.count)
    if math.isfinite(std):
        return std
    scale = _power_of_two(max(abs(profile.minimum), abs(profile.maximum)))
    if profile.sample is not None:
        return float(np.std(profile.sample / scale)) * scale
    bounds = np.concatenate([[profile.minimum], profile.edges, [profile.maximum]]) / scale
    centres = _slot_means(profile, bounds, scale)
    weights = profile.counts / profile.count
    mean = float(np.dot(weights, centres))
    return math.sqrt(float(np.dot(weights, (centres - mean) ** 2))) * scale


@dataclass(frozen=True)
class TailResult:
    """How much of the window lies beyond the reference's range, and how surprising that is.

    ``share`` is the larger of the shares below the reference minimum and above its maximum;
    ``pvalue`` is that side's exact probability, under no change, of at least that many values
    beyond the reference's extreme, doubled for looking at two sides (at most 1).
    """

    share: float
    pvalue: float


def tail_exceedance(reference: NumericProfile, current: NumericProfile) -> TailResult:
    """Values of the window beyond the reference's extremes: a tail-only change test.

    A shift of the top (or bottom) few percent of the values barely moves the Wasserstein
    distance or KS, but it puts values beyond the reference's maximum, where under no change
    they are rare: with ``n`` reference and ``m`` current values from one continuous
    distribution, all ``n + m`` are exchangeable and the chance that at least ``k`` current
    values exceed the reference maximum is the chance that the ``k`` largest of all are current
    ones, ``C(m, k) / C(n + m, k)`` (exact and distribution-free; ties with the maximum are not
    counted, which only makes it conservative).

    >>> from keel.stats.profile import build_reference, profile_like
    >>> ref = build_reference({"x": np.arange(1000.0)}, {"x": "numeric"})
    >>> cur = profile_like(ref, {"x": np.concatenate([np.arange(970.0), np.full(30, 5000.0)])})
    >>> r = tail_exceedance(ref.columns["x"], cur.columns["x"])
    >>> round(r.share, 3), r.pvalue < 1e-8
    (0.03, True)
    """
    if reference.count == 0 or current.count == 0:
        raise InvalidInput("the tail test needs at least one value on each side")
    _same_bins(reference, current)
    n, m = reference.count, current.count
    if reference.counts[0] or reference.counts[-1]:
        # A reference merged from chunks has values beyond its first chunk's edges: compare
        # the shares beyond on both sides (excess share, pooled chi-square) instead.
        results = []
        for side in (0, -1):
            r, k = int(reference.counts[side]), int(current.counts[side])
            excess = k / m - r / n
            p = chi_square([r, n - r], [k, m - k]).pvalue if excess > 0 else 1.0
            results.append(TailResult(max(excess, 0.0), min(1.0, 2.0 * p)))
        return max(results, key=lambda t: (t.share, -t.pvalue))
    k = max(int(current.counts[0]), int(current.counts[-1]))
    if k == 0:
        return TailResult(0.0, 1.0)
    # log C(m, k) - log C(n + m, k), through log-gamma to stay finite for any sizes.
    log_p = (
        math.lgamma(m + 1)
        - math.lgamma(m - k + 1)
        - math.lgamma(n + m + 1)
        + math.lgamma(n + m - k + 1)
    )
    return TailResult(k / m, min(1.0, 2.0 * math.exp(log_p)))


# The outer slots the tail-quantile test looks at: the smallest reference share below (above) a
# slot edge that is at most this. References built since issue 11 have edges at their 1st and
# 99th percentiles (profile.TAIL_QUANTILES); older ones use their outermost bin (5%).
OUTER_SHARE_MAX = 0.05


def tail_quantile_shift(reference: NumericProfile, current: NumericProfile) -> TailResult:
    """More of the window in the reference's outer tail (below its 1st or above its 99th
    percentile), inside its range: a tail change the range test cannot see.

    ``share`` is the larger excess of the window's share beyond the outer edge over the
    reference's. The edge is the reference's own percentile, so its ``r`` values beyond it are
    not a random count: with ``n`` reference and ``m`` window values exchangeable under no
    change, at least ``k`` window values lie beyond the reference's ``(r + 1)``-th most extreme
    value exactly when at most ``r`` of the ``k + r`` most extreme of all ``n + m`` values are
    reference values, a hypergeometric probability. That bounds the chance of ``k`` beyond the
    edge (which lies inside that order statistic) from above, for any sample sizes, so a 30-row
    window is judged as fairly as a million rows. ``pvalue`` is it, doubled for two sides. (A
    reference merged from chunks got its edges from its first chunk: Fisher's exact test then.)

    >>> from keel.stats.profile import build_reference, profile_like
    >>> rng = np.random.default_rng(3)
    >>> x = rng.normal(size=20_000)
    >>> ref = build_reference({"x": x}, {"x": "numeric"})
    >>> y = rng.normal(size=20_000)
    >>> y = np.where(y > np.quantile(y, 0.97), y + 0.3, y)  # the top 3% move, inside the range
    >>> r = tail_quantile_shift(ref.columns["x"], profile_like(ref, {"x": y}).columns["x"])
    >>> round(r.share, 2), r.pvalue < 1e-6
    (0.01, True)
    """
    if reference.count == 0 or current.count == 0:
        raise InvalidInput("the tail test needs at least one value on each side")
    _same_bins(reference, current)
    n, m = reference.count, current.count
    ref_counts = reference.counts.astype(np.int64)
    cur_counts = current.counts.astype(np.int64)
    chunked = bool(ref_counts[0] or ref_counts[-1])
    best = TailResult(0.0, 1.0)
    for ref_side, cur_side in (
        (np.cumsum(ref_counts), np.cumsum(cur_counts)),
        (np.cumsum(ref_counts[::-1]), np.cumsum(cur_counts[::-1])),
    ):
        # Slot boundaries past the range slot (index 0) whose reference share beyond is small.
        outer = [i for i in range(1, len(ref_side) - 1) if 0 < ref_side[i] <= OUTER_SHARE_MAX * n]
        if not outer:
            continue
        i = outer[0]
        r, k = int(ref_side[i]), int(cur_side[i])
        excess = k / m - r / n
        if excess <= 0:
            continue
        if chunked:  # the edge is not an order statistic of this reference: Fisher
            p = float(stats.hypergeom.sf(k - 1, n + m, r + k, m))
        else:  # at most r reference values among the k + r most extreme of all n + m
            p = float(stats.hypergeom.cdf(r, n + m, n, k + r))
        result = TailResult(excess, min(1.0, 2.0 * p))
        if (result.share, -result.pvalue) > (best.share, -best.pvalue):
            best = result
    return best


def new_categories(reference: CategoricalProfile, current: CategoricalProfile) -> TailResult:
    """More of the window from categories the reference never saw than chance allows.

    Under no change, the share of new data from categories a sample of ``n`` values never saw is
    estimated by Good-Turing as ``singletons / n`` (the categories it saw exactly once). ``share``
    is the window's unseen share minus that estimate; ``pvalue`` a one-sided z-test whose
    variance adds the window's binomial variance and the estimate's (Esty's, from the
    categories seen once and twice).
    Needs a reference that kept its ``seen`` set (more categories than its top-K) and a window
    profiled against it; otherwise ``TailResult(nan, 1.0)``.

    >>> from keel.stats.profile import build_reference, profile_like
    >>> rng = np.random.default_rng(5)
    >>> levels = np.array([f"c{i}" for i in range(300)])
    >>> ref = build_reference({"c": rng.choice(levels, 5000)}, {"c": "categorical"})
    >>> same = profile_like(ref, {"c": rng.choice(levels, 5000)}).columns["c"]
    >>> new = np.where(rng.random(5000) < 0.1, "brand-new", rng.choice(levels, 5000))
    >>> moved = profile_like(ref, {"c": new}).columns["c"]
    >>> new_categories(ref.columns["c"], same).pvalue > 0.05
    True
    >>> r = new_categories(ref.columns["c"], moved)
    >>> round(r.share, 2), r.pvalue < 1e-9
    (0.1, True)
    """
    if reference.seen is None or current.unseen is None or reference.count == 0:
        return TailResult(math.nan, 1.0)
    if current.count == 0:
        raise InvalidInput("the new-categories test needs at least one value in the window")
    n, m = reference.count, current.count
    n1, n2 = reference.singletons, reference.doubletons
    expected = min(n1 / n, 1.0)
    share = current.unseen / m - expected
    # Esty (1983): the variance of the Good-Turing estimate is about (n1 + 2 n2 - n1^2 / n) / n^2.
    estimate_variance = max(n1 + 2 * n2 - n1 * n1 / n, n1) / n**2
    variance = max(expected * (1.0 - expected), 1.0 / n) / m + estimate_variance
    z = share / math.sqrt(variance)
    return TailResult(share, float(stats.norm.sf(z)))


@dataclass(frozen=True)
class ChiSquareResult:
    statistic: float
    pvalue: float
    dof: int


def chi_square(expected: Counts, actual: Counts) -> ChiSquareResult:
    """Pearson's chi-square test of homogeneity of two count vectors over the same categories.

    Pearson, K. (1900); computed by ``scipy.stats.chi2_contingency`` on the 2 x K table
    (categories empty on both sides dropped; no continuity correction). Unlike a goodness-of-fit
    test against the reference's shares (Evidently's ``chisquare``), it treats the reference as
    a sample too, and a category unseen in the reference does not make the statistic infinite.

    >>> r = chi_square([50, 30, 20], [30, 30, 40])
    >>> round(r.statistic, 6), round(r.pvalue, 6), r.dof
    (11.666667, 0.002928, 2)
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1:
        raise InvalidInput("expected and actual need counts over the same categories")
    if e.sum() <= 0 or a.sum() <= 0:
        raise InvalidInput("chi-square needs at least one value on each side")
    table = np.stack([e, a])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:  # one category on both sides: identical distributions
        return ChiSquareResult(0.0, 1.0, 0)
    result = stats.chi2_contingency(table, correction=False)
    return ChiSquareResult(float(result.statistic), float(result.pvalue), int(result.dof))


def pool_sparse(
    expected: Counts, actual: Counts, min_expected: float = MIN_EXPECTED
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Both count vectors with every category expected fewer than ``min_expected`` times (under
    the pooled shares, on the smaller side) merged into the last one (``OTHER`` in a
    categorical profile).

    Cochran's (1954) rule for the chi-square approximation. It also removes the bias of
    choosing the top-K on the reference: the categories that made the top-K only by the
    reference's own sampling noise are rare ones, and they go back into ``OTHER``, whose share
    is then unbiased. A category that really moved is not rare in the pooled shares and stays.

    >>> e, a = pool_sparse([500, 400, 3, 97], [480, 420, 0, 100])
    >>> e.tolist(), a.tolist()
    ([500.0, 400.0, 100.0], [480.0, 420.0, 100.0])
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1 or e.size == 0:
        raise InvalidInput("expected and actual need counts over the same categories")
    if e.sum() <= 0 or a.sum() <= 0:
        raise InvalidInput("pooling needs at least one value on each side")
    pooled = (e + a) / (e.sum() + a.sum())
    sparse = pooled * min(e.sum(), a.sum()) < min_expected
    sparse[-1] = False
    if not sparse.any():
        return e, a
    keep = ~sparse
    e_out, a_out = e[keep], a[keep]
    e_out[-1] += e[sparse].sum()
    a_out[-1] += a[sparse].sum()
    return e_out, a_out


def chi_square_pooled(
    expected: Counts, actual: Counts, min_expected: float = MIN_EXPECTED
) -> ChiSquareResult:
    """:func:`chi_square` after :func:`pool_sparse`: without pooling, a small window or a
    reference whose top categories were picked on its own sample makes sparse cells that
    false-alarm far above the nominal rate. When nothing is sparse it is :func:`chi_square`.
    """
    return chi_square(*pool_sparse(expected, actual, min_expected))


# --------------------------------------------------------------------------- columns and datasets


@dataclass(frozen=True)
class ColumnRule:
    """A per-column override: the method and/or threshold to use for one column."""

    method: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class DriftConfig:
    """Which test each column gets, with which threshold; and when the dataset has drifted.

    Defaults (docs/monitoring-defaults.md): ``wasserstein`` (>= 0.1, or a KS statistic >=
    ``ks_statistic``) for numeric and ``share_difference`` (>= 0.05) for categorical columns
    and numeric columns filling at most ``low_cardinality`` slots, at every reference size; a
    distance drifts only when the two-sample test on both sizes has p <= ``significance``.
    Numeric columns also drift by their tail (``tail_share`` beyond the reference's range).
    The dataset has drifted when at least ``drift_share`` of the tested columns have.

    >>> config = DriftConfig(columns={"age": ColumnRule(method="psi", threshold=0.2)})
    >>> config.rule("age", "numeric", 10**6)
    ('psi', 0.2)
    >>> DriftConfig().rule("plan", "categorical", 500)
    ('share_difference', 0.05)
    """

    small_sample_rows: int = 1000
    numeric_small: str = WASSERSTEIN
    numeric_large: str = WASSERSTEIN
    categorical_small: str = SHARE_DIFFERENCE
    categorical_large: str = SHARE_DIFFERENCE
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    columns: Mapping[str, ColumnRule] = field(default_factory=dict)
    drift_share: float = 0.5
    significance: float | None = SIGNIFICANCE
    low_cardinality: int = LOW_CARDINALITY
    tail_share: float | None = TAIL_SHARE
    ks_statistic: float | None = KS_STATISTIC
    new_category_share: float | None = NEW_CATEGORY_SHARE
    tail_significance: float = TAIL_SIGNIFICANCE

    def __post_init__(self) -> None:
        for name in ("numeric_small", "numeric_large"):
            _check_method(name, getattr(self, name), NUMERIC_METHODS)
        for name in ("categorical_small", "categorical_large"):
            _check_method(name, getattr(self, name), CATEGORICAL_METHODS)
        for method in self.thresholds:
            _check_method("thresholds", method, (*NUMERIC_METHODS, *CATEGORICAL_METHODS))
        if not 0.0 < self.drift_share <= 1.0:
            raise InvalidInput(f"drift_share must be in (0, 1], got {self.drift_share}")
        if self.small_sample_rows < 0:
            raise InvalidInput("small_sample_rows must not be negative")
        if self.significance is not None and not 0.0 < self.significance < 1.0:
            raise InvalidInput(
                f"significance must be in (0, 1) or None (no gate), got {self.significance}"
            )
        if self.tail_share is not None and not 0.0 < self.tail_share <= 1.0:
            raise InvalidInput(
                f"tail_share must be in (0, 1] or None (no tail test), got {self.tail_share}"
            )
        if self.ks_statistic is not None and not 0.0 < self.ks_statistic <= 1.0:
            raise InvalidInput(
                f"ks_statistic must be in (0, 1] or None (distance only), got {self.ks_statistic}"
            )
        if self.new_category_share is not None and not 0.0 < self.new_category_share <= 1.0:
            raise InvalidInput(
                "new_category_share must be in (0, 1] or None (no new-categories test), "
                f"got {self.new_category_share}"
            )
        if not 0.0 < self.tail_significance < 1.0:
            raise InvalidInput(f"tail_significance must be in (0, 1), got {self.tail_significance}")
        if self.low_cardinality < 0:
            raise InvalidInput("low_cardinality must not be negative (0 turns it off)")
        for column, rule in self.columns.items():
            if rule.method is not None:
                _check_method(
                    f"columns[{column!r}].method",
                    rule.method,
                    (*NUMERIC_METHODS, *CATEGORICAL_METHODS),
                )

    def rule(self, column: str, kind: str, reference_values: int) -> tuple[str, float]:
        """The ``(method, threshold)`` for a column of ``kind`` with that many reference values."""
        override = self.columns.get(column, ColumnRule())
        small = reference_values <= self.small_sample_rows
        if kind == "numeric":
            method = override.method or (self.numeric_small if small else self.numeric_large)
            allowed: tuple[str, ...] = NUMERIC_METHODS
        else:
            method = override.method or (
                self.categorical_small if small else self.categorical_large
            )
            allowed = CATEGORICAL_METHODS
        if method not in allowed:
            raise InvalidInput(
                f"column {column!r} is {kind}; drift method {method!r} does not apply, "
                f"use one of {', '.join(allowed)}"
            )
        threshold = override.threshold
        if threshold is None:
            threshold = self.thresholds.get(method, DEFAULT_THRESHOLDS[method])
        return method, float(threshold)


def _check_method(where: str, method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise InvalidInput(
            f"{where}: unknown drift method {method!r}, use one of {', '.join(allowed)}"
        )


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict. ``value`` is a p-value for ks/chi_square, else a distance.

    ``value`` is NaN (and ``drifted`` False) when a side has no values to compare.
    """

    column: str
    method: str
    value: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    pvalue: float = math.nan
    """The significance gate's p-value (KS, or pooled chi-square for categories); NaN when the
    method is itself a p-value or the gate is off. A distance past its threshold drifts only
    when this is at most ``DriftConfig.significance``."""
    tail_share: float = math.nan
    """Numeric columns: the larger excess share of the window beyond the reference's range or
    its outer 1% (:func:`tail_exceedance`, :func:`tail_quantile_shift`; NaN: not tested)."""
    tail_drifted: bool = False
    """The tail test (:func:`tail_exceedance`) found a tail-only change; counted as drift."""
    ks_statistic: float = math.nan
    """Numeric columns with the default method: the KS statistic of the gate. ``drifted`` is
    also True when it reached ``DriftConfig.ks_statistic`` (then ``value`` may be under
    ``threshold``)."""

    new_category_share: float = math.nan
    """High-cardinality categorical columns: the window's share of values from categories the
    reference never saw, beyond chance (:func:`new_categories`; NaN: not tested)."""
    new_categories_drifted: bool = False
    """The new-categories test found drift; counted as drift."""

    @property
    def any_drift(self) -> bool:
        """Drift by the column's method, its tail or its new categories."""
        return self.drifted or self.tail_drifted or self.new_categories_drifted


@dataclass(frozen=True)
class DatasetDrift:
    """Per-column verdicts; ``share`` of the tested columns that drifted; dataset verdict."""

    columns: tuple[ColumnDrift, ...]
    share: float
    drifted: bool
    threshold: float = 0.5

    @property
    def drifted_columns(self) -> list[str]:
        """Columns drifted by their method or by their tail (:attr:`ColumnDrift.any_drift`)."""
        return [c.column for c in self.columns if c.any_drift]


def column_drift(
    column: str,
    reference: ColumnProfile,
    current: ColumnProfile,
    config: DriftConfig | None = None,
) -> ColumnDrift:
    """Test one column of the current profile against the reference with the configured rule.

    >>> from keel.stats.profile import build_reference, profile_like
    >>> ref = build_reference({"c": np.array(["a", "b"] * 300)}, {"c": "categorical"})
    >>> cur = profile_like(ref, {"c": np.array(["a"] * 400 + ["b"] * 200)})
    >>> d = column_drift("c", ref.columns["c"], cur.columns["c"])
    >>> d.method, d.drifted, round(d.value, 4), d.pvalue < 1e-6
    ('share_difference', True, 0.1667, True)
    """
    config = config if config is not None else DriftConfig()
    kind = "numeric" if isinstance(reference, NumericProfile) else "categorical"
    if isinstance(current, NumericProfile) != isinstance(reference, NumericProfile):
        raise InvalidInput(
            f"column {column!r} is {kind} in the reference but not in the current data"
        )
    discrete = _low_cardinality(column, reference, config)
    method, threshold = config.rule(column, "categorical" if discrete else kind, reference.count)
    if reference.count == 0 or current.count == 0:
        return ColumnDrift(
            column, method, math.nan, threshold, False, reference.count, current.count
        )
    value = _measure(method, reference, current)
    if method in P_VALUE_METHODS:
        return ColumnDrift(
            column, method, value, threshold, value <= threshold, reference.count, current.count
        )
    drifted = value >= threshold
    pvalue, statistic = math.nan, math.nan
    if config.significance is not None:
        pvalue, statistic = _significance(reference, current, discrete)
        chosen = config.columns.get(column, ColumnRule()).method is not None
        if config.ks_statistic is not None and not chosen and statistic >= config.ks_statistic:
            drifted = True
        drifted = drifted and pvalue <= config.significance
    tail_share, tail_drifted = math.nan, False
    if (
        config.tail_share is not None
        and not discrete
        and isinstance(reference, NumericProfile)
        and isinstance(current, NumericProfile)
    ):
        level = config.tail_significance
        # The outer-percentile test is a third look at a numeric column (after the distance's
        # gate and the range test): judged at a fifth of the level, so the three together keep
        # unshifted columns under 2% false alarms at 1,000 rows (bench/drift_quality.py).
        for tail, tail_level in (
            (tail_exceedance(reference, current), level),
            (tail_quantile_shift(reference, current), level / EXTRA_TEST_LEVEL_DIVISOR),
        ):
            tail_share = tail.share if math.isnan(tail_share) else max(tail_share, tail.share)
            tail_drifted = tail_drifted or (
                tail.share >= config.tail_share and tail.pvalue <= tail_level
            )
    unseen_share, unseen_drifted = math.nan, False
    if (
        config.new_category_share is not None
        and isinstance(reference, CategoricalProfile)
        and isinstance(current, CategoricalProfile)
    ):
        unseen = new_categories(reference, current)
        level = config.tail_significance / EXTRA_TEST_LEVEL_DIVISOR  # a second look
        unseen_share = unseen.share
        unseen_drifted = unseen.share >= config.new_category_share and unseen.pvalue <= level
    return ColumnDrift(
        column,
        method,
        value,
        threshold,
        bool(drifted),
        reference.count,
        current.count,
        pvalue,
        tail_share,
        tail_drifted,
        statistic,
        unseen_share,
        unseen_drifted,
    )


def _low_cardinality(column: str, reference: ColumnProfile, config: DriftConfig) -> bool:
    """A numeric column tested as categorical on its slots: its reference fills at most
    ``config.low_cardinality`` slots and no per-column method was chosen."""
    return (
        isinstance(reference, NumericProfile)
        and config.columns.get(column, ColumnRule()).method is None
        and 0 < int(np.count_nonzero(reference.counts)) <= config.low_cardinality
    )


def _significance(
    reference: ColumnProfile, current: ColumnProfile, discrete: bool
) -> tuple[float, float]:
    """The two-sample test behind a distance, on both sample sizes: KS for numeric columns
    (p-value and statistic), the pooled chi-square for categorical and low-cardinality ones
    (p-value, NaN)."""
    if isinstance(reference, NumericProfile) and isinstance(current, NumericProfile):
        if not discrete:
            ks = ks_from_profiles(reference, current, fast=True)
            return ks.pvalue, ks.statistic
        _same_bins(reference, current)
        return chi_square_pooled(reference.counts, current.counts).pvalue, math.nan
    assert isinstance(reference, CategoricalProfile) and isinstance(current, CategoricalProfile)
    return chi_square_pooled(reference.frequencies(), current.frequencies()).pvalue, math.nan


def _measure(method: str, reference: ColumnProfile, current: ColumnProfile) -> float:
    if isinstance(reference, NumericProfile) and isinstance(current, NumericProfile):
        if method == KS:
            return ks_from_profiles(reference, current).pvalue
        if method == WASSERSTEIN:
            return wasserstein_normalized(reference, current)
        _same_bins(reference, current)
        expected, actual = reference.counts, current.counts
        if method == CHI_SQUARE:  # a low-cardinality column, on its slots
            return chi_square(expected, actual).pvalue
    elif isinstance(reference, CategoricalProfile) and isinstance(current, CategoricalProfile):
        if list(reference.counts) != list(current.counts):
            raise InvalidInput(
                "the profiles have different categories; profile the current data with "
                "profile_like() against this reference"
            )
        expected, actual = reference.frequencies(), current.frequencies()
        if method == CHI_SQUARE:
            return chi_square(expected, actual).pvalue
    else:  # pragma: no cover - column_drift checks the kinds first
        raise InvalidInput("profiles of different kinds")
    if method == PSI:
        return psi(expected, actual)
    if method == SHARE_DIFFERENCE:  # rare categories pooled: no top-K selection bias
        return share_difference(*pool_sparse(expected, actual))
    return js_distance(expected, actual)


def dataset_drift(
    reference: DatasetProfile, current: DatasetProfile, config: DriftConfig | None = None
) -> DatasetDrift:
    """Test every column both profiles have; the dataset drifted when share >= drift_share.

    ``share`` counts only the columns that could be tested (values on both sides).

    >>> from keel.stats.profile import build_reference, profile_like
    >>> rng = np.random.default_rng(0)
    >>> data = {"a": rng.normal(size=5000), "b": rng.normal(size=5000)}
    >>> ref = build_reference(data, {"a": "numeric", "b": "numeric"})
    >>> cur = profile_like(ref, {"a": rng.normal(1.0, 1.0, 5000), "b": rng.normal(size=5000)})
    >>> result = dataset_drift(ref, cur)
    >>> result.drifted_columns, result.share, result.drifted
    (['a'], 0.5, True)
    """
    config = config if config is not None else DriftConfig()
    verdicts = tuple(
        column_drift(name, ref, current.columns[name], config)
        for name, ref in reference.columns.items()
        if name in current.columns
    )
    tested = [v for v in verdicts if not math.isnan(v.value)]
    share = sum(v.any_drift for v in tested) / len(tested) if tested else 0.0
    return DatasetDrift(
        columns=verdicts,
        share=share,
        drifted=bool(tested) and share >= config.drift_share,
        threshold=config.drift_share,
    )


__all__ = [
    "CATEGORICAL_METHODS",
    "CHI_SQUARE",
    "DEFAULT_THRESHOLDS",
    "JENSEN_SHANNON",
    "KS",
    "NUMERIC_METHODS",
    "OTHER",
    "PSI",
    "SHARE_DIFFERENCE",
    "WASSERSTEIN",
    "ChiSquareResult",
    "ColumnDrift",
    "ColumnRule",
    "DatasetDrift",
    "DriftConfig",
    "KsResult",
    "TailResult",
    "WassersteinResult",
    "chi_square",
    "chi_square_pooled",
    "column_drift",
    "pool_sparse",
    "dataset_drift",
    "js_distance",
    "ks_exact",
    "ks_from_profiles",
    "psi",
    "share_difference",
    "tail_exceedance",
    "tail_quantile_shift",
    "new_categories",
    "wasserstein_from_profiles",
    "wasserstein_normalized",
]
