"""Data-quality checks, from profiles: missing values, out-of-range values, unseen categories,
and row-count anomalies against recent windows.

Type errors are not measured here: a value of the wrong type is rejected at ingest and counted
there (telemetry's rejected rows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from keel.errors import InvalidInput
from keel.stats.profile import CategoricalProfile, ColumnProfile, NumericProfile


def missing_rate(profile: ColumnProfile) -> float:
    """Share of a column's rows that are null (0.0 for a profile of no rows).

    >>> from keel.stats.profile import build_reference
    >>> data = {"x": np.array([1.0, np.nan, 3.0, None], dtype=object)}
    >>> ref = build_reference(data, {"x": "numeric"})
    >>> missing_rate(ref.columns["x"])
    0.5
    """
    rows = profile.count + profile.null_count
    return profile.null_count / rows if rows else 0.0


def missing_rate_change(reference: ColumnProfile, current: ColumnProfile) -> float:
    """Current missing rate minus the reference's, in share points (0.05 = five points more).

    >>> from keel.stats.profile import build_reference, profile_like
    >>> ref = build_reference({"x": np.array([1.0, 2.0, 3.0, np.nan])}, {"x": "numeric"})
    >>> cur = profile_like(ref, {"x": np.array([np.nan, np.nan, 1.0, 2.0])})
    >>> missing_rate_change(ref.columns["x"], cur.columns["x"])
    0.25
    """
    return missing_rate(current) - missing_rate(reference)


def out_of_range_share(reference: NumericProfile, current: NumericProfile) -> float:
    """Share of the current non-null values below the reference minimum or above its maximum.

    Exact: the profiles' outer slots count exactly those values. A reference without values
    has no range, so every current value is outside it.

    >>> from keel.stats.profile import build_reference, profile_like
    >>> ref = build_reference({"x": np.arange(10.0)}, {"x": "numeric"})
    >>> cur = profile_like(ref, {"x": np.array([-1.0, 0.0, 5.0, 9.0, 9.5, 12.0, 20.0, np.nan])})
    >>> out_of_range_share(ref.columns["x"], cur.columns["x"])  # -1, 9.5, 12, 20 of 7 values
    0.5714285714285714
    """
    if not np.array_equal(reference.edges, current.edges):
        raise InvalidInput("profile the current data with profile_like() against this reference")
    if current.count == 0:
        return 0.0
    if reference.edges.size == 0:
        return 1.0
    return float(current.counts[0] + current.counts[-1]) / current.count


def unseen_categories(reference: CategoricalProfile, current: CategoricalProfile) -> float:
    """Share of the current non-null values whose category the reference did not have.

    Exact when the reference had no more categories than its top-K (its ``other`` count is 0).
    Otherwise ``other`` mixes unseen values with the reference's rarer categories, and the
    result is the growth of ``other``'s share: ``max(0, other_cur - other_ref)``.

    >>> from keel.stats.profile import build_reference, profile_like
    >>> ref = build_reference({"c": np.array(["a", "b", "a"])}, {"c": "categorical"})
    >>> cur = profile_like(ref, {"c": np.array(["a", "z", "y", None, "b"], dtype=object)})
    >>> unseen_categories(ref.columns["c"], cur.columns["c"])
    0.5
    """
    if list(reference.counts) != list(current.counts):
        raise InvalidInput("profile the current data with profile_like() against this reference")
    if current.count == 0:
        return 0.0
    current_other = current.other / current.count
    if reference.other == 0 or reference.count == 0:
        return current_other
    return max(0.0, current_other - reference.other / reference.count)


@dataclass(frozen=True)
class RowCountCheck:
    """A window's row count against the recent windows' mean and spread."""

    zscore: float  # NaN with too little history
    anomalous: bool
    expected: float  # mean of the recent windows
    spread: float  # the standard deviation used


def row_count_anomaly(
    recent_counts: Sequence[int],
    current: int,
    *,
    z_threshold: float = 3.0,
    min_history: int = 3,
) -> RowCountCheck:
    """Is ``current`` an anomalous row count given the recent windows' counts?

    ``zscore = (current - mean) / spread`` with ``spread = max(std(ddof=1), sqrt(mean), 1)``:
    row counts are counts, so the spread is never taken below Poisson noise (a perfectly steady
    history would otherwise flag a change of one row). Anomalous when ``|zscore| >=
    z_threshold``; with fewer than ``min_history`` windows nothing is anomalous.

    >>> check = row_count_anomaly([1000, 1040, 980, 1010], 400)
    >>> round(check.zscore, 2), check.anomalous
    (-19.14, True)
    >>> row_count_anomaly([1000, 1040, 980, 1010], 1030).anomalous
    False
    """
    if current < 0 or any(c < 0 for c in recent_counts):
        raise InvalidInput("row counts must not be negative")
    history = np.asarray(recent_counts, dtype=np.float64)
    if history.size < max(min_history, 1):
        return RowCountCheck(
            math.nan, False, float(history.mean()) if history.size else math.nan, math.nan
        )
    mean = float(history.mean())
    std = float(history.std(ddof=1)) if history.size > 1 else 0.0
    spread = max(std, math.sqrt(mean), 1.0)
    z = (current - mean) / spread
    return RowCountCheck(z, abs(z) >= z_threshold, mean, spread)
