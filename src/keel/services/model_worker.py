"""A model worker: one long-lived child process that loads one model version and answers
prediction batches over its stdin and stdout.

Run as ``python -m keel.services.model_worker WORKDIR`` inside the model sandbox
(`keel.services.sandbox.start_sandboxed`), started and watched by `keel.services.model_workers`.
``WORKDIR/request.json`` names the artifact's flavor, SHA-256 and the signature's feature columns;
``WORKDIR/model.bin`` is the artifact. The child checks the hash once more, loads the model with
the evaluator's loaders (skops with Keel's trusted types, ONNX through onnxruntime, pickle
flavors only here, in the sandbox), then says it is ready and serves frames until its stdin ends.

Frames (`keel.services.model_worker_frames`) are Arrow IPC streams: a batch holds the rows of one
or more requests (its metadata says how many rows each), so concurrent requests share one
``predict`` call. When a shared call raises, each request is retried alone, so one bad request
never fails its neighbours. The answer holds ``prediction`` and, for classifiers with
``predict_proba``, ``score`` (the positive class's probability for two classes, the winning
class's otherwise), and one error (or None) per request.

Model code may print: the protocol runs over a private copy of stdout, and fd 1 points at stderr.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO

from keel.services.model_worker_frames import (
    ERRORS_KEY,
    PREDICTION,
    SCORE,
    SIZES_KEY,
    read_frame,
    table_from_frame,
    table_to_frame,
    write_frame,
)

# Exit code after a MemoryError: the parent restarts a fresh worker (the model may leak).
EXIT_OUT_OF_MEMORY = 3


def _load(workdir: Path) -> tuple[Any, list[str]]:
    from keel.services.evaluation_runner import ChildError, _load_model, sha256_file

    request = json.loads((workdir / "request.json").read_text())
    path = workdir / "model.bin"
    actual = sha256_file(path)
    if actual != request["model_sha256"]:
        raise ChildError("integrity", f"the artifact hashes to {actual}, not the registered hash")
    features = [str(f) for f in request["features"]]
    return _load_model(path, str(request["flavor"]), features), features


def _score(model: Any, frame: Any) -> Any:
    import numpy as np

    from keel.services.model_formats import has_predict_proba

    if not has_predict_proba(model):
        return None
    proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] == 0:
        return None
    return proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)


def _predict(model: Any, frame: Any) -> tuple[Any, Any]:
    import numpy as np

    prediction = np.asarray(model.predict(frame))
    if prediction.ndim > 1:
        prediction = prediction.reshape(len(frame), -1)[:, 0]
    return prediction, _score(model, frame)


def _frame(table: Any) -> Any:
    """The batch as a pandas DataFrame, equal to ``table.to_pandas()``.

    When every column is float64 (a signature's float features: the common case), the frame is
    built from one 2-D array, about half the cost of `to_pandas` on a small batch; NaN stands for
    null either way. Any other mix of types goes through `to_pandas`.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if table.num_columns and all(t == pa.float64() for t in table.schema.types):
        values = np.column_stack([c.to_numpy() for c in table.columns])
        return pd.DataFrame(values, columns=list(table.column_names))
    return table.to_pandas()


def _answer(model: Any, features: list[str], table: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    sizes = [int(n) for n in json.loads(table.schema.metadata[SIZES_KEY])]
    frame = _frame(table)
    usable = [c for c in features if c in frame.columns] or list(frame.columns)
    if usable != list(frame.columns):
        frame = frame[usable]
    errors: list[str | None] = [None] * len(sizes)
    predictions: list[Any] = []
    scores: list[Any] = []
    try:
        prediction, score = _predict(model, frame)
        predictions, scores = [prediction], [score]
    except MemoryError:
        raise
    except Exception:
        start = 0
        for i, rows in enumerate(sizes):
            part = frame.iloc[start : start + rows]
            start += rows
            try:
                prediction, score = _predict(model, part)
            except MemoryError:
                raise
            except Exception as exc:
                errors[i] = f"{type(exc).__name__}: {exc}"[:500]
                prediction, score = np.full(rows, None, dtype=object), None
            predictions.append(prediction)
            scores.append(score if score is not None else np.full(rows, np.nan))
    values = np.concatenate(predictions) if len(predictions) > 1 else predictions[0]
    if values.dtype == object:
        values = [v.item() if hasattr(v, "item") else v for v in values]
    columns: dict[str, Any] = {PREDICTION: pa.array(values)}
    if any(s is not None for s in scores):
        columns[SCORE] = pa.array(
            np.concatenate([np.asarray(s, dtype=np.float64) for s in scores]), pa.float64()
        )
    answer = pa.table(columns)
    return answer.replace_schema_metadata({ERRORS_KEY: json.dumps(errors)})


def serve(source: BinaryIO, sink: BinaryIO, model: Any, features: list[str]) -> None:
    """Answer frames from ``source`` on ``sink`` until ``source`` ends."""
    while (frame := read_frame(source)) is not None:
        write_frame(sink, table_to_frame(_answer(model, features, table_from_frame(frame))))


def main(argv: list[str]) -> int:
    # The protocol's own stdout; whatever the model prints goes to stderr.
    sink = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    source = os.fdopen(0, "rb", buffering=0)
    try:
        model, features = _load(Path(argv[1]))
        import pandas  # noqa: F401 - imported before "ready": the first request must not pay it
    except MemoryError:
        write_frame(sink, json.dumps({"ok": False, "cause": "memory"}).encode())
        return EXIT_OUT_OF_MEMORY
    except Exception as exc:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        write_frame(sink, json.dumps({"ok": False, "cause": "load", "message": message}).encode())
        return 1
    write_frame(sink, json.dumps({"ok": True, "pid": os.getpid()}).encode())
    try:
        serve(source, sink, model, features)
    except MemoryError:
        return EXIT_OUT_OF_MEMORY
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
