"""The explanation child process: permutation importance and TreeSHAP for one model, one dataset.

Run as ``python -m keel.services.explanation_runner WORKDIR`` inside the model sandbox, like
`keel.services.evaluation_runner` (whose loading and checking it reuses). ``WORKDIR/request.json``
names the files and their SHA-256s, the flavor, the feature columns, the task, the target column,
``n_repeats``, ``budget_s``, ``shap`` and ``memory_limit_mb``; the child writes
``WORKDIR/result.json``: ``{"ok": true, "explanation": {...}}`` (`Explanation.to_dict`) or
``{"ok": false, "kind", "message"}``.

Unlike the evaluation child it is handed the labels: permutation importance scores the model
with each feature shuffled. That is why it is a separate process, started after the metrics
were computed from a run that never saw a label: what this process writes is the model's word
about its own importance, never its score.

**Budget.** The clock starts once the model and data are loaded. scikit-learn's
`permutation_importance` runs one repeat at a time (seed ``random_state + repeat``), so a run cut
short still yields every finished repeat; its scorer checks the clock after each prediction and
stops the run once the budget is spent ("the budget ran out after 3 of 5 repeats"). TreeSHAP runs
only with budget left; it cannot be interrupted, so the parent's wall-clock limit stays the last
word. One thread: the parent sets ``OMP_NUM_THREADS=1`` (HistGradientBoosting's permutation
importance took 55 s with default threads on 2 cores, 2 s with one).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from keel.domain.explainability import RANDOM_STATE, Explanation, FeatureImportance, ordered
from keel.services.evaluation_runner import (
    ChildError,
    _inputs,
    _load_model,
    _read_data,
    _verify,
    run_child,
)

# TreeSHAP explains at most this many rows (the first ones): its summary is stable long before.
SHAP_ROWS = 500
# Tree ensembles shap's TreeExplainer reads natively (checked by class name before shap, which
# takes seconds to import, is loaded at all).
SHAP_MODELS = frozenset(
    {
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
        "GradientBoostingClassifier",
        "GradientBoostingRegressor",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
        "IsolationForest",
        "XGBClassifier",
        "XGBRegressor",
        "LGBMClassifier",
        "LGBMRegressor",
    }
)


class _OutOfBudget(Exception):
    pass


def _permutation(
    model: Any, x: Any, y: Any, scoring: str, n_repeats: int, deadline: float
) -> tuple[list[list[float]], str | None]:
    """Per repeat, each feature's score drop; and why the run stopped early (None: it did not)."""
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import get_scorer

    scorer = get_scorer(scoring)

    def timed(estimator: Any, features: Any, target: Any) -> float:
        value = float(scorer(estimator, features, target))
        if time.monotonic() > deadline:
            raise _OutOfBudget
        return value

    rounds: list[list[float]] = []
    for repeat in range(n_repeats):
        try:
            found = permutation_importance(
                model, x, y, scoring=timed, n_repeats=1, random_state=RANDOM_STATE + repeat
            )
        except _OutOfBudget:
            done = len(rounds)
            return rounds, (
                f"permutation importance: the budget ran out after {done} of {n_repeats} repeats"
                if done
                else f"permutation importance: the budget ran out before the first of "
                f"{n_repeats} repeats finished; nothing was computed"
            )
        except MemoryError:
            raise
        except Exception as exc:
            raise ChildError(
                "model_error",
                f"The model raised {type(exc).__name__} during permutation importance: {exc}",
            ) from None
        rounds.append([float(v) for v in found.importances[:, 0]])
    return rounds, None


def _shap(model: Any, x: Any, deadline: float) -> tuple[list[float] | None, int, str | None]:
    """Mean |SHAP| per feature, the rows explained, and why there is none (None: there is)."""
    kind = type(model).__name__
    if kind not in SHAP_MODELS:
        return None, 0, f"TreeSHAP: {kind} is not a tree ensemble shap explains"
    if time.monotonic() > deadline:
        return None, 0, "TreeSHAP: skipped, the budget was spent on permutation importance"
    try:
        import shap
    except ImportError:
        return None, 0, "TreeSHAP: shap is not installed (install keel[explain])"
    import numpy as np

    rows = x.iloc[:SHAP_ROWS]
    try:
        values = shap.TreeExplainer(model).shap_values(rows, check_additivity=False)
    except MemoryError:
        raise
    except Exception as exc:
        return None, 0, f"TreeSHAP: shap could not explain {kind}: {type(exc).__name__}: {exc}"
    array = np.abs(np.asarray(values, dtype=np.float64))
    if isinstance(values, list):  # older shap: one (rows, features) array per class
        array = np.moveaxis(array, 0, -1)
    # (rows, features) or (rows, features, classes): mean over rows, then over classes.
    mean = array.mean(axis=0)
    per_feature = mean.mean(axis=1) if mean.ndim == 2 else mean
    if time.monotonic() > deadline:
        note = "TreeSHAP: finished past the budget"
        return [float(v) for v in per_feature], len(rows), note
    return [float(v) for v in per_feature], len(rows), None


def explain(request: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The explanation of the model in ``request`` on its data, as `Explanation.to_dict`."""
    model_path, data_path = workdir / "model.bin", workdir / "data.bin"
    _verify(model_path, request["model_sha256"], "model artifact")
    _verify(data_path, request["data_sha256"], "explanation data")
    model = _load_model(model_path, request["flavor"], request["features"])
    data = _read_data(data_path, "parquet")
    x = _inputs(model, data, request["features"])
    y = data[request["target"]]
    scoring = "accuracy" if request["task"] == "classification" else "r2"
    n_repeats, budget = int(request["n_repeats"]), float(request["budget_s"])
    deadline = time.monotonic() + budget
    rounds, stopped = _permutation(model, x, y, scoring, n_repeats, deadline)
    fallbacks = [stopped] if stopped else []
    shap_values: list[float] | None = None
    shap_rows = 0
    if rounds and request.get("shap", True):
        shap_values, shap_rows, why = _shap(model, x, deadline)
        fallbacks += [why] if why else []
    elif not rounds:
        fallbacks.append("TreeSHAP: skipped, permutation importance did not finish")
    else:
        fallbacks.append("TreeSHAP: not asked for by the policy")
    features = []
    if rounds:
        import numpy as np

        matrix = np.asarray(rounds, dtype=np.float64)  # (repeats, features)
        means, stds = matrix.mean(axis=0), matrix.std(axis=0)
        for index, name in enumerate(x.columns):
            shap_value = None if shap_values is None else shap_values[index]
            features.append(
                FeatureImportance(str(name), float(means[index]), float(stds[index]), shap_value)
            )
    return Explanation(
        scoring=scoring,
        rows=len(x),
        n_repeats=n_repeats,
        repeats_done=len(rounds),
        budget_s=budget,
        features=ordered(features),
        shap_rows=shap_rows,
        fallbacks=tuple(fallbacks),
    ).to_dict()


def main(argv: list[str]) -> int:
    return run_child(argv, "explanation", lambda r: int(r["memory_limit_mb"]), explain)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
