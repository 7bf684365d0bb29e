"""Forecast month-end spend from daily costs, with the method a backtest picks.

Candidates: the mean of the last 7 days, the same weekday last week (seasonal naive), and, with
at least four weeks of history, statsmodels' Holt-Winters exponential smoothing and a seasonal
ARIMA, both with a weekly season. Each is fitted on the history minus its last 7 days and
scored by its MAPE on those 7 days; the lowest wins and is refitted on all of it. With under
two weeks of history there is nothing to backtest: the mean of the days seen is the forecast,
and no error is reported.

The interval is the point forecast of the remaining days +/- 1.96 times the winning method's
backtest RMSE scaled by the square root of the days left (errors taken as independent per day).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

HOLDOUT = 7
SEASON = 7
MIN_BACKTEST = 14
MIN_SEASONAL_MODELS = 4 * SEASON


@dataclass(frozen=True)
class DailyForecast:
    method: str
    remaining: float  # forecast spend of the days left
    half_width: float  # half the 95% interval of `remaining`
    backtest_mape: float | None


Method = Callable[[np.ndarray, int], np.ndarray]


def _mean7(history: np.ndarray, horizon: int) -> np.ndarray:
    return np.full(horizon, float(np.mean(history[-SEASON:])))


def _seasonal_naive(history: np.ndarray, horizon: int) -> np.ndarray:
    last = history[-SEASON:]
    return np.array([last[i % SEASON] for i in range(horizon)], dtype=float)


def _holt_winters(history: np.ndarray, horizon: int) -> np.ndarray:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = ExponentialSmoothing(
            history, trend="add", seasonal="add", seasonal_periods=SEASON
        ).fit()
    return np.asarray(fitted.forecast(horizon), dtype=float)


def _seasonal_arima(history: np.ndarray, horizon: int) -> np.ndarray:
    from statsmodels.tsa.arima.model import ARIMA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = ARIMA(history, order=(1, 0, 0), seasonal_order=(0, 1, 1, SEASON)).fit()
    return np.asarray(fitted.forecast(horizon), dtype=float)


def _candidates(n: int) -> dict[str, Method]:
    methods: dict[str, Method] = {"mean_7_days": _mean7, "seasonal_naive": _seasonal_naive}
    if n - HOLDOUT >= MIN_SEASONAL_MODELS:
        methods["holt_winters"] = _holt_winters
        methods["seasonal_arima"] = _seasonal_arima
    return methods


def mape(actual: np.ndarray, predicted: np.ndarray) -> float | None:
    """Mean absolute percentage error over the days with a non-zero actual, in percent."""
    mask = actual != 0
    if not mask.any():
        return None
    return float(np.mean(np.abs((actual[mask] - predicted[mask]) / actual[mask])) * 100)


def forecast_days(daily: Sequence[Decimal | float], horizon: int) -> DailyForecast:
    """Forecast the sum of the next ``horizon`` days from ``daily`` (oldest first)."""
    history = np.array([float(d) for d in daily], dtype=float)
    if horizon <= 0:
        return DailyForecast("none: the month is over", 0.0, 0.0, None)
    if len(history) == 0:
        return DailyForecast("no history", 0.0, 0.0, None)
    if len(history) < MIN_BACKTEST:
        mean = float(np.mean(history))
        spread = float(np.std(history)) if len(history) > 1 else abs(mean)
        return DailyForecast(
            "mean of the days seen", mean * horizon, 1.96 * spread * math.sqrt(horizon), None
        )
    train, test = history[:-HOLDOUT], history[-HOLDOUT:]
    scored: list[tuple[float, str, float]] = []
    for name, method in _candidates(len(history)).items():
        try:
            predicted = method(train, HOLDOUT)
        except (ValueError, np.linalg.LinAlgError):
            continue
        error = mape(test, predicted)
        rmse = float(np.sqrt(np.mean((test - predicted) ** 2)))
        if error is not None and math.isfinite(error):
            scored.append((error, name, rmse))
    if not scored:
        mean = float(np.mean(history[-SEASON:]))
        return DailyForecast("mean_7_days", mean * horizon, 0.0, None)
    error, name, rmse = min(scored)
    remaining = float(np.sum(_candidates(len(history))[name](history, horizon)))
    return DailyForecast(name, max(remaining, 0.0), 1.96 * rmse * math.sqrt(horizon), error)
