"""The evaluation child process: load one model and predict one dataset's features.

Run as ``python -m keel.services.evaluation_runner WORKDIR``. ``WORKDIR/request.json`` names the
files, their SHA-256s, the flavor, the spec and the signature's feature columns; the child writes
``WORKDIR/predictions.arrow`` and ``WORKDIR/result.json`` (``{"ok": true, "predicted": {rows,
classes}}`` or ``{"ok": false, "kind", "message"}``). It is handed the evaluation data WITHOUT
its target column and computes no metric: the parent (`keel.services.evaluation_scoring`) scores
the predictions against the labels it kept, so a model cannot read, or fake, its own score.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Exit code when even the error report could not be written because memory ran out.
EXIT_OUT_OF_MEMORY = 3
# What the child hands back: one row per evaluation row, the prediction and, for classifiers
# with predict_proba, one probability column per class (in the order of ``classes``).
PREDICTIONS_FILE = "predictions.arrow"
PREDICTION_COLUMN = "prediction"
PROBA_PREFIX = "proba_"


class ChildError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _limit_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
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


def predict(request: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Load the model named in ``request``, predict every row of the features it is handed and
    write ``predictions.arrow``; the summary (rows, classes) as plain JSON data."""
    started = time.monotonic()
    spec = request["spec"]
    model_path, data_path = workdir / "model.bin", workdir / "data.bin"
    _verify(model_path, request["model_sha256"], "model artifact")
    _verify(data_path, request["data_sha256"], "evaluation features")
    model = _load_model(model_path, request["flavor"], request["features"])
    data = _read_data(data_path, request["data_format"])
    from keel.services.model_formats import has_predict_proba

    x = _inputs(model, data, request["features"])
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
    import pyarrow as pa
    import pyarrow.ipc as ipc

    columns: dict[str, Any] = {PREDICTION_COLUMN: _arrow_values(np.asarray(pred).ravel())}
    classes: list[Any] = []
    if proba is not None:
        matrix = np.asarray(proba, dtype=np.float64)
        classes = [_plain(c) for c in model.classes_]
        for i in range(matrix.shape[1] if matrix.ndim == 2 else 0):
            columns[f"{PROBA_PREFIX}{i}"] = pa.array(matrix[:, i])
    table = pa.table(columns)
    with ipc.new_file(workdir / PREDICTIONS_FILE, table.schema) as writer:
        writer.write_table(table)
    return {
        "rows": table.num_rows,
        "classes": classes,
        "duration_s": time.monotonic() - started,
    }


def _arrow_values(values: Any) -> Any:
    import pyarrow as pa

    if values.dtype == object:  # labels as Python objects: str, int, bool
        return pa.array([_plain(v) for v in values])
    return pa.array(values)


def _plain(value: Any) -> Any:
    """A class label as JSON data: NumPy scalars become Python ones."""
    return value.item() if hasattr(value, "item") else value


def run_child(
    argv: list[str],
    key: str,
    memory_limit_mb: Callable[[dict[str, Any]], int],
    work: Callable[[dict[str, Any], Path], Any],
) -> int:
    """The sandboxed child's protocol, shared by every runner: read ``request.json`` from the
    work directory in ``argv[1]``, cap memory, run ``work`` and write ``result.json`` as
    ``{"ok": true, key: ...}`` or ``{"ok": false, "kind", "message"}``."""
    workdir = Path(argv[1])
    request = json.loads((workdir / "request.json").read_text())
    result_path = workdir / "result.json"
    try:
        _limit_memory(memory_limit_mb(request))
        result: dict[str, Any] = {"ok": True, key: work(request, workdir)}
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


def main(argv: list[str]) -> int:
    return run_child(argv, "predicted", lambda r: int(r["spec"]["memory_limit_mb"]), predict)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
