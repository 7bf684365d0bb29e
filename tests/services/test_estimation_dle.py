"""DLE: the error model (scikit-learn HistGradientBoosting) estimates MAE and RMSE on a
heteroscedastic regression, follows the error up as the data moves into noisier rows, and is
stored with skops and loaded only through its trusted-types check."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import skops.io as sio  # type: ignore[import-untyped]
from sklearn.preprocessing import FunctionTransformer
from tests.stats import estimation_data as data

from keel.errors import InvalidInput
from keel.services.estimation.dle_model import ErrorModel, fit_error_model
from keel.stats.estimation.dle import estimate_dle
from keel.stats.performance import regression_metrics

WINDOWS = 20


@pytest.fixture(scope="module")
def error_model() -> ErrorModel:
    columns, prediction, truth = data.regression(np.random.default_rng(1), 5000, 0.0)
    return fit_error_model(columns, prediction, truth)


def test_estimated_mae_and_rmse_follow_a_heteroscedastic_error(error_model: ErrorModel) -> None:
    rng = np.random.default_rng(2)
    covered = {"mae": 0, "rmse": 0}
    estimated, realized = [], []
    for w in range(WINDOWS):
        columns, prediction, truth = data.regression(rng, 1000, 1.5 * w / WINDOWS)
        absolute, squared = error_model.predict(columns, prediction)
        result = estimate_dle(error_model.reference, absolute, squared)
        real = regression_metrics(truth, prediction)
        for metric in covered:
            covered[metric] += result.estimates[metric].covers(real[metric])
        estimated.append(result.estimates["mae"].value)
        realized.append(real["mae"])
    assert covered["mae"] >= 0.9 * WINDOWS, covered
    assert covered["rmse"] >= 0.8 * WINDOWS, covered
    # The error grew by half as the rows moved to noisier x; the estimate saw it without labels.
    assert realized[-1] > 1.3 * realized[0]
    assert estimated[-1] > 1.3 * estimated[0]
    assert np.corrcoef(estimated, realized)[0, 1] > 0.9


def test_rows_outside_the_reference_are_counted(error_model: ErrorModel) -> None:
    columns, _, _ = data.regression(np.random.default_rng(4), 1000, 0.0)
    assert error_model.encoding.outside_support(columns).mean() < 0.01
    columns["x1"] = np.asarray(columns["x1"], dtype=np.float64) + 10.0
    columns["x2"] = np.array(["z"] * 1000, dtype=object)
    assert error_model.encoding.outside_support(columns).mean() == 1.0


def test_the_stored_model_loads_back_and_predicts_the_same(error_model: ErrorModel) -> None:
    columns, prediction, _ = data.regression(np.random.default_rng(6), 200, 0.0)
    loaded = ErrorModel.from_bytes(error_model.to_bytes())
    for mine, theirs in zip(
        error_model.predict(columns, prediction), loaded.predict(columns, prediction), strict=True
    ):
        np.testing.assert_array_equal(mine, theirs)
    assert loaded.reference == error_model.reference


def test_a_stored_model_with_other_types_is_refused(error_model: ErrorModel) -> None:
    # A transformer that would call an arbitrary function: skops flags the function's type.
    tampered = sio.dumps(
        {"meta": "{}", "absolute": FunctionTransformer(func=eval), "squared": None},
        compression=zipfile.ZIP_DEFLATED,
    )
    with pytest.raises(InvalidInput, match=r"builtins\.eval"):
        ErrorModel.from_bytes(tampered)


def test_too_few_reference_rows_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="at least 20"):
        fit_error_model({"x1": np.zeros(5)}, np.zeros(5), np.ones(5))


def test_an_unknown_metric_is_a_clear_error(error_model: ErrorModel) -> None:
    with pytest.raises(InvalidInput, match="'mape'"):
        estimate_dle(error_model.reference, [1.0], [1.0], ["mape"])
