"""Operational figures of a window: latency quantiles, error rate, throughput."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from keel.errors import InvalidInput

DEFAULT_QUANTILES = (0.5, 0.95, 0.99)


def quantiles(values: npt.ArrayLike, qs: Sequence[float] = DEFAULT_QUANTILES) -> tuple[float, ...]:
    """Quantiles of the non-null values (NaN/None ignored), linear interpolation as ``np.quantile``.

    NaN for each quantile when there are no values.

    >>> [round(q, 6) for q in quantiles([10.0, 20.0, 30.0, 40.0, None, 1000.0])]
    [30.0, 808.0, 961.6]
    """
    if any(not 0.0 <= q <= 1.0 for q in qs):
        raise InvalidInput(f"quantiles must be between 0 and 1, got {list(qs)}")
    data = np.asarray(values, dtype=np.float64)
    data = data[~np.isnan(data)]
    if data.size == 0:
        return tuple(math.nan for _ in qs)
    return tuple(float(v) for v in np.quantile(data, np.asarray(qs, dtype=np.float64)))


def error_rate(errors: npt.ArrayLike) -> float:
    """Share of requests with an error: a non-empty error message (None/NaN/"" mean success).

    >>> error_rate(np.array([None, "timeout", "", None], dtype=object))
    0.25
    """
    data = np.asarray(errors, dtype=object)
    if data.size == 0:
        return 0.0
    failed = np.fromiter(
        (e is not None and e == e and e != "" for e in data.tolist()), dtype=bool, count=data.size
    )
    return float(failed.mean())


def throughput_per_s(rows: int, seconds: float) -> float:
    """Rows per second over a window of ``seconds``.

    >>> throughput_per_s(7200, 3600.0)
    2.0
    """
    if seconds <= 0:
        raise InvalidInput(f"a window must last more than 0 seconds, got {seconds}")
    return rows / seconds
