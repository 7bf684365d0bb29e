"""Realized value: per-prediction values, the window's estimate, and its interval's coverage."""

from __future__ import annotations

import math

import numpy as np

from keel.stats.value import error_values, interval_of_totals, matrix_values, window_value


def test_the_value_matrix_prices_each_outcome() -> None:
    values = matrix_values([1, 1, 0, 0, 1], [1, 0, 0, 1, 1], tp=40, fp=-5, tn=0, fn=-60)
    assert values.tolist() == [40.0, -5.0, 0.0, -60.0, 40.0]


def test_regression_value_falls_with_the_absolute_error() -> None:
    assert error_values([100.0, 90.0], [100.0, 110.0], 3.0, 0.1).tolist() == [3.0, 1.0]


def test_the_estimate_scales_the_labelled_mean_to_every_prediction() -> None:
    # Four labelled of 1,000 predictions: mean 20, sd 20 (by hand), so 20,000 +- 1.96*20/2*1000.
    estimate = window_value([0.0, 40.0, 40.0, 0.0], predictions=1000)
    sd = math.sqrt(((20**2) * 4) / 3)
    assert estimate.value == 20_000.0
    assert math.isclose(estimate.high - estimate.value, 1.959964 * sd / 2 * 1000, rel_tol=1e-6)
    assert (estimate.predictions, estimate.labelled) == (1000, 4)


def test_no_labels_means_an_unknown_value_not_zero() -> None:
    assert math.isnan(window_value([], predictions=10).value)


def test_the_interval_covers_the_true_value_in_at_least_94_percent_of_500_runs() -> None:
    # A churn-like model: P(TP, FP, TN, FN) = (.15, .05, .7, .1) with a skewed value matrix;
    # 400 of 2,000 predictions labelled per window. True value = 2,000 * E[v].
    rng = np.random.default_rng(20261130)
    values = np.array([40.0, -5.0, 0.0, -60.0])
    probabilities = np.array([0.15, 0.05, 0.7, 0.1])
    truth = 2000 * float(values @ probabilities)
    outcomes = rng.choice(4, size=(500, 400), p=probabilities)
    lows, _, highs = interval_of_totals(values[outcomes], predictions=2000)
    coverage = float(np.mean((lows <= truth) & (truth <= highs)))
    assert coverage >= 0.94, coverage
    assert coverage <= 0.99, coverage  # an interval too wide to be useful would pass trivially
