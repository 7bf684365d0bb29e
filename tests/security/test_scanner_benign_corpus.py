"""Common scikit-learn models scan safe, saved every way users save them.

The false positives issue 10 found (GradientBoosting's ``numpy.random._pickle.__generator_ctor``,
HistGradientBoosting's ``functools.partial`` with ``categorical_features``, LogisticRegression at
protocols 2 and 5) are all in here. Each saved file is also loaded back (these are our own
benign models) to show the scanner judged the bytes joblib and pickle really read.
"""

from __future__ import annotations

import io
import pickle
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from keel.domain.registry import ArtifactFlavor
from keel.services.scanning import scan_bytes

_RNG = np.random.default_rng(0)
_X = _RNG.normal(size=(200, 3))
_Y = (_X[:, 0] > 0).astype(int)
_YR = 2.0 * _X[:, 1]
_CATEGORICAL = np.c_[_X[:, :2], _RNG.integers(0, 4, 200)]
_FRAME = pd.DataFrame({"a": _X[:, 0], "b": _X[:, 1], "c": _RNG.choice(["x", "y", "z"], 200)})

# name -> (how to fit it, the features it predicts on)
MODELS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "LogisticRegression": lambda: (LogisticRegression().fit(_X, _Y), _X),
    "LinearRegression": lambda: (LinearRegression().fit(_X, _YR), _X),
    "Ridge": lambda: (Ridge().fit(_X, _YR), _X),
    "DecisionTreeClassifier": lambda: (DecisionTreeClassifier().fit(_X, _Y), _X),
    "RandomForestClassifier": lambda: (RandomForestClassifier(5, random_state=0).fit(_X, _Y), _X),
    "RandomForestRegressor": lambda: (RandomForestRegressor(5, random_state=0).fit(_X, _YR), _X),
    "ExtraTreesClassifier": lambda: (ExtraTreesClassifier(5, random_state=0).fit(_X, _Y), _X),
    "GradientBoostingClassifier": lambda: (
        GradientBoostingClassifier(n_estimators=5, random_state=0).fit(_X, _Y),
        _X,
    ),
    "GradientBoostingRegressor": lambda: (
        GradientBoostingRegressor(n_estimators=5, random_state=0).fit(_X, _YR),
        _X,
    ),
    "HistGradientBoostingClassifier": lambda: (
        HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(_X, _Y),
        _X,
    ),
    "HistGradientBoostingRegressor": lambda: (
        HistGradientBoostingRegressor(max_iter=5, random_state=0).fit(_X, _YR),
        _X,
    ),
    "HistGradientBoosting categorical_features": lambda: (
        HistGradientBoostingClassifier(max_iter=5, categorical_features=[2], random_state=0).fit(
            _CATEGORICAL, _Y
        ),
        _CATEGORICAL,
    ),
    "KNeighborsClassifier": lambda: (KNeighborsClassifier().fit(_X, _Y), _X),
    "SVC probability": lambda: (SVC(probability=True, random_state=0).fit(_X, _Y), _X),
    "MLPClassifier": lambda: (MLPClassifier(max_iter=20, random_state=0).fit(_X, _Y), _X),
    "Pipeline ColumnTransformer": lambda: (
        make_pipeline(
            ColumnTransformer(
                [("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["c"])]
            ),
            LogisticRegression(),
        ).fit(_FRAME, _Y),
        _FRAME,
    ),
    "CalibratedClassifierCV": lambda: (
        CalibratedClassifierCV(LogisticRegression()).fit(_X, _Y),
        _X,
    ),
    "IsolationForest": lambda: (IsolationForest(n_estimators=5, random_state=0).fit(_X), _X),
    "KMeans": lambda: (KMeans(3, n_init=1, random_state=0).fit(_X), _X),
}
SAVES = ("joblib", "joblib-zlib", "joblib-gzip", "pickle-2", "pickle-4", "pickle-5")


@cache
def _fitted(name: str) -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP's convergence warning on 20 iterations
        return MODELS[name]()


def _save(model: Any, save: str) -> tuple[bytes, ArtifactFlavor]:
    if save.startswith("pickle"):
        return pickle.dumps(model, protocol=int(save[-1])), ArtifactFlavor.PICKLE
    compress: Any = {"joblib": 0, "joblib-zlib": 3, "joblib-gzip": ("gzip", 3)}[save]
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=compress)
    return buffer.getvalue(), ArtifactFlavor.SKLEARN


def _load(data: bytes, flavor: ArtifactFlavor) -> Any:
    if flavor == ArtifactFlavor.PICKLE:
        return pickle.loads(data)
    return joblib.load(io.BytesIO(data))


@pytest.mark.parametrize("save", SAVES)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_common_models_scan_safe_and_load_as_scanned(name: str, save: str) -> None:
    model, features = _fitted(name)
    data, flavor = _save(model, save)
    report = scan_bytes(data, "sha", flavor)
    assert report.safe, [f.message for f in report.findings if f.severity != "LIKELY_SAFE"]
    assert any("Names only allowed globals" in f.message for f in report.findings)
    loaded = _load(data, flavor)
    method = "predict" if hasattr(model, "predict") else "transform"
    np.testing.assert_allclose(getattr(loaded, method)(features), getattr(model, method)(features))
