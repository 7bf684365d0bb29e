"""CBPE: estimated accuracy and ROC AUC fall within the band of the realized values on a
covariate shift; multiclass with string labels works (NannyML #346); bad input is a clear
error."""

from __future__ import annotations

import numpy as np
import pytest
from tests.stats import estimation_data as data

from keel.errors import InvalidInput
from keel.stats.estimation.calibration import IsotonicCalibration, calibration_improves
from keel.stats.estimation.cbpe import CBPEReference, estimate_cbpe, fit_cbpe
from keel.stats.performance import classification_metrics, roc_auc

WINDOWS = 40
WINDOW_ROWS = 1000


def test_binary_estimates_cover_the_realized_accuracy_and_auc_under_covariate_shift() -> None:
    rng = np.random.default_rng(7)
    labels, score = data.binary(rng, 5000, 0.0)
    fitted = fit_cbpe(labels, score)
    assert fitted.calibrated == (True,)  # the scores are over-confident: calibration helps
    covered = {"accuracy": 0, "roc_auc": 0}
    realized_accuracy = []
    for w in range(WINDOWS):
        truth, s = data.binary(rng, WINDOW_ROWS, 1.5 * w / WINDOWS)
        predicted = (s > 0.5).astype(np.int64)
        result = estimate_cbpe(fitted, predicted, s)
        realized = classification_metrics(truth, predicted, s)
        realized_accuracy.append(realized["accuracy"])
        for metric in covered:
            covered[metric] += result.estimates[metric].covers(realized[metric])
    assert covered["accuracy"] / WINDOWS >= 0.9, covered
    assert covered["roc_auc"] / WINDOWS >= 0.9, covered
    # The shift really moved the realized accuracy: the bands were not trivially wide.
    assert max(realized_accuracy) - min(realized_accuracy) > 0.05


def test_the_estimate_follows_a_drop_the_drift_alone_would_not_name() -> None:
    rng = np.random.default_rng(11)
    labels, score = data.binary(rng, 5000, 0.0)
    fitted = fit_cbpe(labels, score)
    # Rows near the decision boundary: the model is right about half the time.
    truth, s = data.binary(rng, 3000, 0.0)
    hard = np.abs(s - 0.5) < 0.1
    result = estimate_cbpe(fitted, (s[hard] > 0.5).astype(int), s[hard])
    realized = classification_metrics(truth[hard], (s[hard] > 0.5).astype(int))["accuracy"]
    assert result.estimates["accuracy"].value < 0.7
    assert result.estimates["accuracy"].covers(realized)


def test_multiclass_with_string_labels() -> None:
    rng = np.random.default_rng(3)
    labels, scores = data.multiclass(rng, 6000, 0.0)
    fitted = fit_cbpe(labels, scores, classes=data.CLASSES)
    covered = 0
    for w in range(20):
        truth, s = data.multiclass(rng, 1500, w / 20)
        predicted = np.asarray(data.CLASSES)[s.argmax(axis=1)]
        result = estimate_cbpe(fitted, predicted, s)
        realized = classification_metrics(truth, predicted)
        covered += result.estimates["accuracy"].covers(realized["accuracy"])
        assert abs(result.estimates["f1"].value - realized["f1"]) < 0.05
        aucs = [roc_auc(truth == c, s[:, j]) for j, c in enumerate(data.CLASSES)]
        assert abs(result.estimates["roc_auc"].value - float(np.mean(aucs))) < 0.05
    assert covered >= 18
    # The fit round-trips through its stored numbers, string classes and all.
    stored = CBPEReference.from_dict(fitted.to_dict())
    assert stored.classes == data.CLASSES
    again = estimate_cbpe(stored, predicted, s)
    assert again.estimates["accuracy"].value == result.estimates["accuracy"].value


def test_calibration_is_used_only_where_cross_validation_shows_it_helps() -> None:
    rng = np.random.default_rng(5)
    score = rng.uniform(size=4000)
    calibrated_labels = (rng.uniform(size=4000) < score).astype(int)
    improves, raw, isotonic = calibration_improves(score, calibrated_labels)
    assert not improves and isotonic >= raw  # already calibrated: isotonic only over-fits
    fitted = fit_cbpe(calibrated_labels, score)
    assert fitted.calibrated == (False,)
    result = estimate_cbpe(fitted, (score > 0.5).astype(int), score)
    assert result.flags.calibration_not_improved
    assert "calibration_not_improved" in result.flags.names()


def test_flags_name_rows_outside_the_reference_and_a_window_too_small() -> None:
    rng = np.random.default_rng(9)
    labels, score = data.binary(rng, 3000, 0.0)
    narrow = (score > 0.2) & (score < 0.8)
    fitted = fit_cbpe(labels[narrow], score[narrow])
    _, s = data.binary(rng, 2000, 0.0)
    result = estimate_cbpe(fitted, (s > 0.5).astype(int), s)
    assert result.flags.outside_support_share > 0.3 and result.flags.outside_support
    tiny = estimate_cbpe(fitted, (s[:20] > 0.5).astype(int), s[:20])
    assert tiny.flags.window_too_small and not result.flags.window_too_small


def test_a_stored_calibration_is_numbers_and_applies_as_stored() -> None:
    cal = IsotonicCalibration.from_dict({"x": [0.0, 0.5, 1.0], "y": [0.1, 0.4, 0.9]})
    assert cal.apply([0.25, 2.0]).tolist() == pytest.approx([0.25, 0.9])
    with pytest.raises(InvalidInput, match="increasing"):
        IsotonicCalibration.from_dict({"x": [0.5, 0.1], "y": [0.1, 0.2]})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: fit_cbpe([1, 1, 1], [0.2, 0.7, 0.9]), "one class only"),
        (lambda f: estimate_cbpe(f, [1, 0], [0.2, 0.8], ["auc"]), "'auc'"),
        (lambda f: estimate_cbpe(f, [], []), "No scores"),
        (lambda f: estimate_cbpe(f, [1, 0], [0.2, 1.5]), "between 0 and 1"),
        (lambda f: estimate_cbpe(f, [1, 2], [0.2, 0.8]), "not one of the classes"),
        (
            lambda f: fit_cbpe(["a", "b"], [[0.2, 0.8], [0.6, 0.4]], classes=["a", "b", "c"]),
            "column per class",
        ),
    ],
    ids=[
        "one-class-reference",
        "unknown-metric",
        "no-scores",
        "not-a-probability",
        "unknown-class",
        "score-columns",
    ],
)
def test_bad_input_is_a_clear_error(call: object, message: str) -> None:
    fitted = fit_cbpe([0, 1, 0, 1], [0.1, 0.9, 0.3, 0.7])
    with pytest.raises(InvalidInput, match=message):
        call(fitted)  # type: ignore[operator]
