"""Live performance metrics equal scikit-learn's on the same rows, to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics
from sklearn.calibration import calibration_curve
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from keel.errors import InvalidInput
from keel.stats.performance import calibration_error, classification_metrics, regression_metrics

TOL = 1e-9


def fitted_scores(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = make_classification(n_samples=4000, n_features=8, flip_y=0.1, random_state=seed)
    model = LogisticRegression(max_iter=500).fit(x[:2000], y[:2000])
    score = model.predict_proba(x[2000:])[:, 1]
    return y[2000:], model.predict(x[2000:]), score


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_match_scikit_learn(seed: int) -> None:
    y, pred, score = fitted_scores(seed)
    score[:50] = np.round(score[:50], 1)  # ties, and scores exactly on calibration bin edges
    m = classification_metrics(y, pred, score)
    assert m["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred), abs=TOL)
    assert m["precision"] == pytest.approx(metrics.precision_score(y, pred), abs=TOL)
    assert m["recall"] == pytest.approx(metrics.recall_score(y, pred), abs=TOL)
    assert m["f1"] == pytest.approx(metrics.f1_score(y, pred), abs=TOL)
    assert m["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, score), abs=TOL)
    assert m["log_loss"] == pytest.approx(metrics.log_loss(y, score), abs=TOL)
    prob_true, prob_pred = calibration_curve(y, score, n_bins=10, strategy="uniform")
    bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], score)
    weights = np.bincount(bins, minlength=10)[np.bincount(bins, minlength=10) > 0] / y.size
    ece = float(np.sum(weights * np.abs(prob_true - prob_pred)))
    assert m["calibration_error"] == pytest.approx(ece, abs=TOL)
    assert m["count"] == y.size


def test_string_labels_and_extreme_scores() -> None:
    y = np.array(["no", "yes", "yes", "no", "yes", "no"])
    pred = np.array(["no", "yes", "no", "no", "yes", "yes"])
    score = np.array([0.0, 1.0, 0.3, 0.1, 0.99, 0.7])
    m = classification_metrics(y, pred, score)
    assert m["precision"] == pytest.approx(
        metrics.precision_score(y, pred, pos_label="yes"), abs=TOL
    )
    assert m["roc_auc"] == pytest.approx(metrics.roc_auc_score(y == "yes", score), abs=TOL)
    assert m["log_loss"] == pytest.approx(metrics.log_loss(y, score), abs=TOL)


def test_multiclass_uses_macro_averages() -> None:
    rng = np.random.default_rng(3)
    y, pred = rng.integers(0, 4, 3000), rng.integers(0, 4, 3000)
    right = rng.random(3000) < 0.5
    pred[right] = y[right]
    m = classification_metrics(y, pred)
    assert m["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred), abs=TOL)
    for name, fn in (
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1", metrics.f1_score),
    ):
        assert m[name] == pytest.approx(fn(y, pred, average="macro"), abs=TOL)
    with pytest.raises(InvalidInput, match="binary"):
        classification_metrics(y, pred, rng.random(3000))


def test_degenerate_windows() -> None:
    m = classification_metrics([1, 1, 1], [0, 0, 0], [0.2, 0.3, 0.4])
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and np.isnan(m["roc_auc"])
    with pytest.raises(InvalidInput, match="at least one row"):
        classification_metrics([], [])
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        calibration_error([1], [1.5])


@pytest.mark.parametrize("seed", [4, 5])
def test_regression_metrics_match_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(100, 30, 5000)
    y[:10] = 0.0  # MAPE's epsilon
    pred = y + rng.normal(0, 10, 5000)
    m = regression_metrics(y, pred)
    assert m["mae"] == pytest.approx(metrics.mean_absolute_error(y, pred), abs=TOL)
    assert m["rmse"] == pytest.approx(metrics.root_mean_squared_error(y, pred), abs=TOL)
    assert m["mape"] == pytest.approx(metrics.mean_absolute_percentage_error(y, pred), rel=TOL)
    assert m["r2"] == pytest.approx(metrics.r2_score(y, pred), abs=TOL)
    assert regression_metrics([2.0, 2.0], [2.0, 2.0])["r2"] == metrics.r2_score(
        [2.0, 2.0], [2.0, 2.0]
    )
    assert regression_metrics([2.0, 2.0], [1.0, 2.0])["r2"] == metrics.r2_score(
        [2.0, 2.0], [1.0, 2.0]
    )
    with_nan = regression_metrics(np.append(y, np.nan), np.append(pred, 1.0))
    assert with_nan["count"] == 5000 and with_nan["mae"] == pytest.approx(m["mae"], abs=TOL)
