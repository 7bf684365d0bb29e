"""Gate metrics from a model's predictions and the labels, computed in Keel's own process.

The model runs in the sandbox (`keel.services.evaluation_runner`) on the evaluation data's
feature columns only: it never sees the target, so it cannot compute, or fake, its own score. It
hands back its predictions (and class probabilities); this module joins them with the labels the
parent kept and computes accuracy, ROC AUC, the regression errors, the per-segment metrics and
the fairness groups. Everything here is plain NumPy, scikit-learn metrics and fairlearn over data,
never the model's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from keel.domain.evaluation import EvaluationSpec
from keel.errors import EvaluationFailed


def score(
    spec: EvaluationSpec,
    data: pd.DataFrame,
    predictions: np.ndarray[Any, Any],
    proba: np.ndarray[Any, Any] | None,
    classes: Sequence[Any],
    duration_s: float,
) -> dict[str, Any]:
    """The evaluation report (plain JSON data, see `EvaluationReport.from_dict`) of
    ``predictions`` (one per row of ``data``) against ``data[spec.target]``."""
    target = spec.target
    y = data[target]
    pred = pd.Series(predictions, index=data.index)
    segments: dict[str, dict[str, dict[str, float]]] = {}
    fairness: list[dict[str, Any]] = []
    if str(spec.task) == "classification":
        labels = sorted(set(y.tolist()) | set(pred.tolist()), key=str)
        pos = _positive(labels, spec.positive_label)

        def measure(mask: pd.Series) -> dict[str, float]:
            p = proba[mask.to_numpy()] if proba is not None else None
            return _classification(list(classes), y[mask], pred[mask], p, pos, labels)

        metrics = measure(pd.Series(True, index=data.index))
        for attribute in spec.protected:
            fairness.append(
                _fairness(
                    attribute,
                    data[attribute],
                    (y == pos).to_numpy(),
                    (pred == pos).to_numpy(),
                    int(spec.min_group_size),
                )
            )
    else:

        def measure(mask: pd.Series) -> dict[str, float]:
            return _regression(y[mask], pred[mask])

        metrics = measure(pd.Series(True, index=data.index))
    for column in spec.segments:
        keys = data[column].astype(str)
        segments[column] = {
            str(group): {**measure(keys == group), "rows": float((keys == group).sum())}
            for group in sorted(keys.unique())
        }
    return {
        "task": str(spec.task),
        "rows": len(data),
        "metrics": metrics,
        "segments": segments,
        "fairness": fairness,
        "duration_s": duration_s,
    }


def _positive(labels: list[Any], wanted: str | None) -> Any:
    if wanted is not None:
        for label in labels:
            if str(label) == wanted:
                return label
        raise EvaluationFailed(
            f"The positive label {wanted!r} is not among the target's labels "
            f"({', '.join(map(str, labels))}).",
            {"cause": "positive_label", "positive_label": wanted},
        )
    return max(labels)


def _classification(
    classes: list[Any], y: Any, pred: Any, proba: Any, pos: Any, labels: list[Any]
) -> dict[str, float]:
    from sklearn import metrics

    binary = len(labels) <= 2
    avg: dict[str, Any] = (
        {"pos_label": pos, "average": "binary"} if binary else {"average": "macro"}
    )
    out = {
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "precision": float(metrics.precision_score(y, pred, zero_division=0, **avg)),
        "recall": float(metrics.recall_score(y, pred, zero_division=0, **avg)),
        "f1": float(metrics.f1_score(y, pred, zero_division=0, **avg)),
    }
    if proba is not None and len(set(y.tolist())) > 1:
        if binary and pos in classes:
            out["roc_auc"] = float(metrics.roc_auc_score(y == pos, proba[:, classes.index(pos)]))
        elif not binary and set(y.tolist()) == set(classes):
            out["roc_auc"] = float(metrics.roc_auc_score(y, proba, multi_class="ovr"))
        out["log_loss"] = float(metrics.log_loss(y, proba, labels=classes))
    return out


def _regression(y: Any, pred: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    return {
        "mae": float(metrics.mean_absolute_error(y, pred)),
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
        "mape": float(metrics.mean_absolute_percentage_error(y, pred)),
        "r2": float(metrics.r2_score(y, pred)) if len(y) > 1 else float("nan"),
    }


def _fairness(attribute: str, groups: Any, y_pos: Any, pred_pos: Any, min_size: int) -> Any:
    import numpy as np
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    keys = groups.astype(str)
    frame = MetricFrame(
        metrics={
            "count": count,
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
        },
        y_true=y_pos,
        y_pred=pred_pos,
        sensitive_features=keys,
    )
    rows: list[dict[str, Any]] = []
    small: list[str] = []
    for group, values in frame.by_group.iterrows():
        in_group = (keys == group).to_numpy()
        n = int(values["count"])
        has_pos, has_neg = bool(y_pos[in_group].any()), bool((~y_pos[in_group]).any())
        rows.append(
            {
                "group": str(group),
                "count": n,
                "selection_rate": float(values["selection_rate"]),
                "tpr": float(values["tpr"]) if has_pos else None,
                "fpr": float(values["fpr"]) if has_neg else None,
                "too_small": n < min_size,
            }
        )
        if n < min_size:
            small.append(str(group))
    judged = ~keys.isin(small).to_numpy()
    dpd = eod = di = None
    if len({r["group"] for r in rows} - set(small)) >= 2:
        sf = keys[judged]
        dpd = float(
            demographic_parity_difference(y_pos[judged], pred_pos[judged], sensitive_features=sf)
        )
        eod = float(
            equalized_odds_difference(y_pos[judged], pred_pos[judged], sensitive_features=sf)
        )
        rates = [r["selection_rate"] for r in rows if not r["too_small"]]
        di = float(min(rates) / max(rates)) if max(rates) > 0 else None
    return {
        "attribute": attribute,
        "groups": rows,
        "demographic_parity_difference": dpd,
        "equalized_odds_difference": eod,
        "disparate_impact_ratio": None if di is None or np.isnan(di) else di,
        "too_small_groups": small,
    }
