"""Fairness metrics equal fairlearn's on the same rows, to 1e-9."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from keel.errors import InvalidInput
from keel.stats.fairness import group_fairness

TOL = 1e-9


def biased(seed: int, n: int = 6000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    group = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2])
    y = (rng.random(n) < 0.4).astype(int)
    bias = np.where(group == "a", 0.15, np.where(group == "b", -0.1, 0.0))
    pred = (rng.random(n) < 0.2 + 0.5 * y + bias).astype(int)
    return y, pred, group


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_rates_and_disparities_match_fairlearn(seed: int) -> None:
    y, pred, group = biased(seed)
    result = group_fairness(pred, group, y)
    frame = MetricFrame(
        metrics={"sr": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y,
        y_pred=pred,
        sensitive_features=group,
    )
    assert [g.group for g in result.groups] == ["a", "b", "c"]
    for g in result.groups:
        assert g.count == int(np.sum(group == g.group)) and not g.too_small
        assert g.selection_rate == pytest.approx(frame.by_group.loc[g.group, "sr"], abs=TOL)
        assert g.tpr == pytest.approx(frame.by_group.loc[g.group, "tpr"], abs=TOL)
        assert g.fpr == pytest.approx(frame.by_group.loc[g.group, "fpr"], abs=TOL)
    dpd = demographic_parity_difference(y, pred, sensitive_features=group)
    assert result.demographic_parity_difference == pytest.approx(dpd, abs=TOL)
    dpr = demographic_parity_ratio(y, pred, sensitive_features=group)
    assert result.disparate_impact_ratio == pytest.approx(dpr, abs=TOL)
    eod = equalized_odds_difference(y, pred, sensitive_features=group)
    assert result.equalized_odds_difference == pytest.approx(eod, abs=TOL)
    # The disparity the data was built with shows: group a is selected more than group b.
    rates = {g.group: g.selection_rate for g in result.groups}
    assert rates["a"] - rates["b"] > 0.2


def test_small_groups_are_shown_but_left_out_of_the_disparities() -> None:
    y, pred, group = biased(3)
    group[:10] = "tiny"
    result = group_fairness(pred, group, y, min_group_size=30)
    tiny = next(g for g in result.groups if g.group == "tiny")
    assert tiny.too_small and tiny.count == 10
    big = group != "tiny"
    expected = demographic_parity_difference(y[big], pred[big], sensitive_features=group[big])
    assert result.demographic_parity_difference == pytest.approx(expected, abs=TOL)


def test_without_labels_only_selection_rates_and_missing_groups() -> None:
    pred = np.array([1, 0] * 50)
    group = np.array(["x", None] * 50, dtype=object)
    result = group_fairness(pred, group)
    assert result.equalized_odds_difference is None
    assert [(g.group, g.selection_rate) for g in result.groups] == [("(missing)", 0.0), ("x", 1.0)]
    assert math.isnan(result.groups[0].tpr)
    assert result.disparate_impact_ratio == 0.0
    with pytest.raises(InvalidInput, match="same length"):
        group_fairness([1, 0], ["a"])
