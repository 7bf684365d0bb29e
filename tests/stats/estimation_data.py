"""Synthetic data with a known covariate shift, for the estimation tests (fixed seeds).

Binary: two features, the true P(y=1 | x) a logistic of them; the model's score is an
over-confident logistic of the same features (so calibration has work to do). The current
windows move the features' means, which changes accuracy and ROC AUC while P(y | x) stays put:
the covariate shift CBPE is built for. Multiclass: three string classes, the same idea.
Regression: the noise grows with |x| and with category "c" (heteroscedastic).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

CLASSES = ("cat", "dog", "fish")


def binary(
    rng: np.random.Generator, rows: int, shift: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Labels and the model's scores; ``shift`` moves the features' means."""
    x = rng.normal([shift, -shift / 2], 1.0, (rows, 2))
    logit = 1.5 * x[:, 0] - x[:, 1] - 0.3
    labels = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    score = 1 / (1 + np.exp(-(2.2 * x[:, 0] - 1.4 * x[:, 1])))
    return labels, score


def multiclass(
    rng: np.random.Generator, rows: int, shift: float
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.float64]]:
    """String labels and an (rows, 3) score matrix whose columns follow `CLASSES`."""
    x = rng.normal([shift, 0.0, -shift], 1.0, (rows, 3))
    logits = 1.2 * x - np.array([0.0, 0.0, 0.2])
    truth = np.exp(logits)
    truth /= truth.sum(axis=1, keepdims=True)
    picks = (rng.uniform(size=(rows, 1)) > truth.cumsum(axis=1)).sum(axis=1)
    scores = np.exp(1.6 * logits)
    scores /= scores.sum(axis=1, keepdims=True)
    return np.asarray(CLASSES)[picks], scores


def regression(
    rng: np.random.Generator, rows: int, shift: float
) -> tuple[dict[str, npt.NDArray[np.generic]], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Features, the model's predictions and the truth; the noise grows with |x1|."""
    x1 = rng.normal(shift, 1.0, rows)
    x2 = rng.choice(np.array(["a", "b", "c"], dtype=object), rows)
    noise = (0.2 + np.abs(x1)) * rng.normal(size=rows) * np.where(x2 == "c", 2.0, 1.0)
    prediction = 3.0 * x1
    return {"x1": x1, "x2": x2}, prediction, prediction + noise
