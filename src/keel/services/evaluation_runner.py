"""The evaluation child process: load one model, score it on one dataset, write the report.

Run as ``python -m keel.services.evaluation_runner WORKDIR``. ``WORKDIR/request.json`` names the
files, their SHA-256s, the flavor, the spec and the signature's feature columns; the child writes
``WORKDIR/result.json`` (``{"ok": true, "report": ...}`` or ``{"ok": false, "kind", "message"}``).

It runs inside the model sandbox (`keel.services.sandbox`), which caps its address space and wall
clock; it caps its address space once more (RLIMIT_AS) before importing NumPy or scikit-learn. The
parent (`keel.services.evaluation`) only hands over artifacts whose scan passed, and the child
checks the hashes once more before it loads anything. skops files load with Keel's trusted types
only and ONNX graphs through onnxruntime (`keel.services.model_formats`): neither runs code from
the file; pickle flavors do, which is why all of this runs sandboxed.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# Exit code when even the error report could not be written because memory ran out.
EXIT_OUT_OF_MEMORY = 3


class ChildError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _limit_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, expected: str, what: str) -> None:
    actual = _sha256(path)
    if actual != expected:
        raise ChildError(
            "integrity",
            f"The {what} handed to the evaluator hashes to {actual}, not {expected}; "
            "it was not loaded.",
        )


def _load_model(path: Path, flavor: str, features: list[str]) -> Any:
    if flavor == "skops":
        from keel.services.model_formats import UntrustedTypes, load_skops

        try:
            return load_skops(path)
        except UntrustedTypes as exc:
            raise ChildError("untrusted_types", str(exc)) from None
    if flavor == "onnx":
        from keel.services.model_formats import OnnxModel

        try:
            return OnnxModel(path, features)
        except Exception as exc:  # onnxruntime raises its own kinds for a graph it cannot run
            raise ChildError(
                "model_error", f"onnxruntime could not load the ONNX graph: {exc}"
            ) from None
    if flavor in ("sklearn", "joblib"):
        import joblib

        return joblib.load(path)
    if flavor == "pickle":
        import pickle

        with path.open("rb") as f:
            return pickle.load(f)  # noqa: S301 - scanned clean at upload, hash re-checked above
    raise ChildError("flavor", f"Keel cannot evaluate artifacts of flavor {flavor!r}.")


def _read_data(path: Path, fmt: str) -> Any:
    import pandas as pd

    return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)


def _inputs(model: Any, data: Any, features: list[str]) -> Any:
    names = getattr(model, "feature_names_in_", None)
    wanted = [str(n) for n in names] if names is not None else features
    missing = [c for c in wanted if c not in data.columns]
    if missing:
        source = "the model was fitted on" if names is not None else "the signature lists"
        raise ChildError(
            "missing_columns",
            f"The evaluation data lacks column(s) {', '.join(map(repr, missing))} that {source}. "
            "Attach evaluation data with those columns, or register the version with a "
            "signature that matches the model.",
        )
    return data[wanted]


def _positive(labels: list[Any], wanted: str | None) -> Any:
    if wanted is not None:
        for label in labels:
            if str(label) == wanted:
                return label
        raise ChildError(
            "positive_label",
            f"The positive label {wanted!r} is not among the target's labels "
            f"({', '.join(map(str, labels))}).",
        )
    return max(labels)


def _classification(
    model: Any, y: Any, pred: Any, proba: Any, pos: Any, labels: list[Any]
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
        classes = list(model.classes_)
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


def evaluate(request: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Score the model named in ``request`` on its data; the report as plain JSON data."""
    started = time.monotonic()
    spec = request["spec"]
    model_path, data_path = workdir / "model.bin", workdir / "data.bin"
    _verify(model_path, request["model_sha256"], "model artifact")
    _verify(data_path, request["data_sha256"], "evaluation dataset")
    model = _load_model(model_path, request["flavor"], request["features"])
    data = _read_data(data_path, request["data_format"])
    target = spec["target"]
    needed = [target, *spec["protected"], *spec["segments"]]
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ChildError(
            "missing_columns",
            f"The evaluation data lacks column(s) {', '.join(map(repr, missing))} named by the "
            "evaluation (target, protected attributes, segments). Attach data that has them.",
        )
    from keel.services.model_formats import has_predict_proba

    x = _inputs(model, data, request["features"])
    y = data[target]
    try:
        pred = model.predict(x)
        proba = (
            model.predict_proba(x)
            if spec["task"] == "classification" and has_predict_proba(model)
            else None
        )
    except MemoryError:
        raise
    except Exception as exc:
        raise ChildError(
            "model_error",
            f"The model raised {type(exc).__name__} while predicting: {exc}. Check that the "
            "evaluation data has the types the model was trained on.",
        ) from None

    import numpy as np
    import pandas as pd

    pred = pd.Series(np.asarray(pred), index=data.index)
    segments: dict[str, dict[str, dict[str, float]]] = {}
    fairness: list[dict[str, Any]] = []
    if spec["task"] == "classification":
        labels = sorted(set(y.tolist()) | set(pred.tolist()), key=str)
        pos = _positive(labels, spec.get("positive_label"))

        def score(mask: Any) -> dict[str, float]:
            p = proba[mask.to_numpy()] if proba is not None else None
            return _classification(model, y[mask], pred[mask], p, pos, labels)

        metrics = score(pd.Series(True, index=data.index))
        for attribute in spec["protected"]:
            fairness.append(
                _fairness(
                    attribute,
                    data[attribute],
                    (y == pos).to_numpy(),
                    (pred == pos).to_numpy(),
                    int(spec["min_group_size"]),
                )
            )
    else:

        def score(mask: Any) -> dict[str, float]:
            return _regression(y[mask], pred[mask])

        metrics = score(pd.Series(True, index=data.index))
    for column in spec["segments"]:
        keys = data[column].astype(str)
        segments[column] = {
            str(group): {**score(keys == group), "rows": float((keys == group).sum())}
            for group in sorted(keys.unique())
        }
    return {
        "task": spec["task"],
        "rows": len(data),
        "metrics": metrics,
        "segments": segments,
        "fairness": fairness,
        "duration_s": time.monotonic() - started,
    }


def main(argv: list[str]) -> int:
    workdir = Path(argv[1])
    request = json.loads((workdir / "request.json").read_text())
    result_path = workdir / "result.json"
    try:
        _limit_memory(int(request["spec"]["memory_limit_mb"]))
        result: dict[str, Any] = {"ok": True, "report": evaluate(request, workdir)}
    except ChildError as exc:
        result = {"ok": False, "kind": exc.kind, "message": exc.message}
    except MemoryError:
        result = {"ok": False, "kind": "memory", "message": "memory limit reached"}
    except Exception as exc:
        tail = traceback.format_exc(limit=-3)[-2000:]
        result = {"ok": False, "kind": "crash", "message": f"{type(exc).__name__}: {exc}\n{tail}"}
    try:
        result_path.write_text(json.dumps(result, allow_nan=True))
    except MemoryError:
        return EXIT_OUT_OF_MEMORY
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
