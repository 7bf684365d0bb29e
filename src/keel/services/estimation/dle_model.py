"""DLE's error model: scikit-learn HistGradientBoostingRegressor on the absolute and squared
error, fitted on the reference, stored with skops and loaded only with its trusted-types check.

Why skops and not a sandbox: the model is Keel's own (fitted here on reference rows, never a
user's artifact), so what is loaded back is a known set of types. skops refuses to build any type
outside `TRUSTED_TYPES`, so a tampered artifact cannot run code in the control plane, and the
estimate needs no child process per monitor run.

Features: numeric columns as floats; text and boolean columns as category codes of the
reference's values (an unseen value is a missing one); the model's prediction as one more
feature, as NannyML's DLE does.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import skops.io as sio  # type: ignore[import-untyped]
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from keel.errors import InvalidInput
from keel.stats.estimation.dle import DLEReference

# What skops may build when it loads an error model (checked by test_dle_model's round trip).
TRUSTED_TYPES = (
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
)
# A small ensemble on purpose: the error surface is smooth, and predicting every logged row
# costs in proportion to trees x leaves (100 trees of 31 leaves predicted 5x slower on the bench
# for the same estimate, bench/estimation_vs_nannyml.py).
MAX_ITER = 30
LEARNING_RATE = 0.3
MAX_LEAF_NODES = 10
MAX_CATEGORIES = 250  # HistGradientBoosting's limit is 255 categories per feature
SEED = 0
Floats = npt.NDArray[np.float64]


def _codes(raw: npt.ArrayLike, values: list[str]) -> Floats:
    """Each value's position in the sorted ``values`` (NaN when absent), vectorised."""
    text = np.asarray(raw, dtype=object).astype(str)
    known = np.asarray(values, dtype=str)
    if known.size == 0:
        return np.full(text.shape, np.nan)
    at = np.clip(np.searchsorted(known, text), 0, known.size - 1)
    return np.where(known[at] == text, at.astype(np.float64), np.nan)


@dataclass
class FeatureEncoding:
    """How raw columns become the error model's inputs; kept as JSON next to the model."""

    numeric: dict[str, tuple[float, float]]  # name -> reference (min, max)
    categorical: dict[str, list[str]]  # name -> reference values (codes are positions)

    def matrix(self, columns: Mapping[str, npt.ArrayLike], prediction: npt.ArrayLike) -> Floats:
        parts: list[Floats] = []
        for name in self.numeric:
            parts.append(np.asarray(columns[name], dtype=np.float64))
        for name, values in self.categorical.items():
            parts.append(_codes(columns[name], values))
        parts.append(np.asarray(prediction, dtype=np.float64))
        return np.column_stack(parts)

    def outside_support(self, columns: Mapping[str, npt.ArrayLike]) -> Floats:
        """Per row: 1.0 when a value lies outside the reference's range or categories."""
        n = np.asarray(next(iter(columns.values()))).shape[0] if columns else 0
        outside = np.zeros(n, dtype=bool)
        for name, (low, high) in self.numeric.items():
            v = np.asarray(columns[name], dtype=np.float64)
            outside |= (v < low) | (v > high)
        for name, values in self.categorical.items():
            raw = np.asarray(columns[name], dtype=object)
            outside |= np.isnan(_codes(raw, values)) & (raw != None)  # noqa: E711 - elementwise
        return outside.astype(np.float64)

    @property
    def categorical_mask(self) -> list[bool]:
        return [False] * len(self.numeric) + [True] * len(self.categorical) + [False]

    @classmethod
    def learn(cls, columns: Mapping[str, npt.ArrayLike]) -> FeatureEncoding:
        numeric: dict[str, tuple[float, float]] = {}
        categorical: dict[str, list[str]] = {}
        for name, raw in columns.items():
            array = np.asarray(raw)
            if array.dtype.kind in "iuf":
                values = array.astype(np.float64)
                finite = values[np.isfinite(values)]
                low, high = (float(finite.min()), float(finite.max())) if finite.size else (0, 0)
                numeric[name] = (low, high)
            else:
                seen = sorted({str(v) for v in array.tolist() if v is not None})
                categorical[name] = seen[:MAX_CATEGORIES]
        return cls(numeric, categorical)


@dataclass
class ErrorModel:
    """The two fitted regressors, their encoding and the reference's error spread."""

    encoding: FeatureEncoding
    absolute: Any
    squared: Any
    reference: DLEReference

    def predict(
        self, columns: Mapping[str, npt.ArrayLike], prediction: npt.ArrayLike
    ) -> tuple[Floats, Floats]:
        x = self.encoding.matrix(columns, prediction)
        with threadpool_limits(limits=1, user_api="openmp"):
            return (
                np.asarray(self.absolute.predict(x), dtype=np.float64),
                np.asarray(self.squared.predict(x), dtype=np.float64),
            )

    def to_bytes(self) -> bytes:
        """The skops file of both regressors, with the encoding and spreads as its JSON."""
        meta = {
            "numeric": {k: list(v) for k, v in self.encoding.numeric.items()},
            "categorical": self.encoding.categorical,
            "abs_error_sd": self.reference.abs_error_sd,
            "squared_error_sd": self.reference.squared_error_sd,
        }
        payload = {"meta": json.dumps(meta), "absolute": self.absolute, "squared": self.squared}
        return bytes(sio.dumps(payload, compression=zipfile.ZIP_DEFLATED))

    @classmethod
    def from_bytes(cls, data: bytes) -> ErrorModel:
        untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
        if untrusted:
            raise InvalidInput(
                "The stored error model holds types Keel does not load: "
                f"{', '.join(untrusted)}. Set the reference again to refit it.",
                {"untrusted": untrusted},
            )
        loaded = sio.load(io.BytesIO(data), trusted=list(TRUSTED_TYPES))
        meta = json.loads(loaded["meta"])
        encoding = FeatureEncoding(
            {k: (float(v[0]), float(v[1])) for k, v in meta["numeric"].items()},
            {k: list(v) for k, v in meta["categorical"].items()},
        )
        reference = DLEReference(float(meta["abs_error_sd"]), float(meta["squared_error_sd"]))
        return cls(encoding, loaded["absolute"], loaded["squared"], reference)


def fit_error_model(
    columns: Mapping[str, npt.ArrayLike], prediction: npt.ArrayLike, y_true: npt.ArrayLike
) -> ErrorModel:
    """Fit the absolute-error and squared-error models on the reference rows."""
    predicted = np.asarray(prediction, dtype=np.float64)
    truth = np.asarray(y_true, dtype=np.float64)
    if predicted.size < 20 or predicted.shape != truth.shape:
        raise InvalidInput(
            "DLE needs at least 20 labelled reference rows, each with a prediction.",
            {"field": "reference", "rows": int(predicted.size)},
        )
    encoding = FeatureEncoding.learn(columns)
    x = encoding.matrix(columns, predicted)
    error = truth - predicted
    absolute, squared = np.abs(error), error**2

    def regressor() -> Any:
        # Squared loss on both targets: the fit is the conditional mean of |e| and e^2, what
        # MAE and RMSE average (an absolute loss would fit the median of |e| and run low).
        return HistGradientBoostingRegressor(
            loss="squared_error",
            max_iter=MAX_ITER,
            learning_rate=LEARNING_RATE,
            max_leaf_nodes=MAX_LEAF_NODES,
            categorical_features=encoding.categorical_mask,
            early_stopping=False,
            random_state=SEED,
        )

    reference = DLEReference(float(absolute.std()), float(squared.std()))
    # One OpenMP thread: on a small shared machine HistGradientBoosting's default threads
    # make the fit tens of times slower, not faster.
    with threadpool_limits(limits=1, user_api="openmp"):
        return ErrorModel(
            encoding, regressor().fit(x, absolute), regressor().fit(x, squared), reference
        )
