"""How the SDK saves a fitted model: skops when it round-trips with Keel's trusted types (so the
server loads it without running code), joblib when asked or when skops cannot represent it."""

from __future__ import annotations

import os

import joblib
import pytest
import skops.io  # type: ignore[import-untyped,unused-ignore]
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from keel.errors import InvalidInput
from keel.sdk.artifacts import artifact_file

X, Y = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]], [0, 1, 0, 1]


def test_a_scikit_learn_estimator_is_saved_with_skops_by_default() -> None:
    model = LogisticRegression().fit(X, Y)
    with artifact_file(model) as path:
        assert path.name == "model.skops"
        loaded = skops.io.load(path)  # skops' own defaults suffice for a linear model
    assert loaded.predict(X).tolist() == model.predict(X).tolist()


def test_joblib_when_asked() -> None:
    model = LogisticRegression().fit(X, Y)
    with artifact_file(model, "joblib") as path:
        assert path.name == "model.joblib"
        assert joblib.load(path).predict(X).tolist() == model.predict(X).tolist()


def test_what_skops_cannot_carry_falls_back_to_joblib_with_a_warning() -> None:
    with (
        pytest.warns(UserWarning, match="only inside its sandbox"),
        artifact_file({"weights": [1, 2]}) as path,
    ):
        assert path.name == "model.joblib"
    risky = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    with (
        pytest.warns(UserWarning, match=r"types Keel does not trust \(posix.system\)"),
        artifact_file(risky) as path,
    ):
        assert path.name == "model.joblib"


def test_skops_when_asked_refuses_what_it_cannot_carry() -> None:
    risky = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    with (
        pytest.raises(InvalidInput, match=r"cannot be saved with skops.*format='joblib'"),
        artifact_file(risky, "skops"),
    ):
        pass


def test_an_unknown_format_is_refused() -> None:
    with (
        pytest.raises(InvalidInput, match="format must be one of skops, joblib, not 'pickle'"),
        artifact_file(LogisticRegression(), "pickle"),  # type: ignore[arg-type]
    ):
        pass
