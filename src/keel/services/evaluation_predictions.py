"""Read what the sandboxed model handed back: its predictions, as untrusted data.

The evaluation child ran model code, so everything it wrote is the model's word: the Arrow file
of predictions and the class list in ``result.json``. They are read as data (Arrow IPC, never a
pickle), and anything that does not fit the evaluation (another row count, a column type a
prediction cannot have, probabilities that are not finite numbers in [0, 1], an oversized class
list) fails the evaluation with cause ``bad_predictions`` instead of reaching the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from keel.errors import EvaluationFailed
from keel.services.evaluation_runner import PREDICTION_COLUMN, PREDICTIONS_FILE, PROBA_PREFIX

MAX_CLASSES = 10_000


def read_predictions(
    workdir: Path, *, rows: int, claimed: Mapping[str, Any], model: str, version: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None, list[Any]]:
    """(predictions, class probabilities or None, classes) from ``workdir``."""

    def bad(why: str) -> EvaluationFailed:
        return EvaluationFailed(
            f"Evaluating {model} v{version} failed: the model's predictions {why}. Nothing was "
            "recorded.",
            {"model": model, "version": version, "cause": "bad_predictions"},
        )

    classes = claimed.get("classes", [])
    if not isinstance(classes, list) or len(classes) > MAX_CLASSES:
        raise bad(f"came with a class list that is not a list of at most {MAX_CLASSES} labels")
    if not all(isinstance(c, str | int | float | bool) for c in classes):
        raise bad("came with class labels that are not strings, numbers or booleans")
    try:
        with pa.memory_map(str(workdir / PREDICTIONS_FILE)) as source:
            table = ipc.open_file(source).read_all()
    except (OSError, pa.ArrowException) as exc:
        raise bad(f"could not be read ({exc})") from None
    if table.num_rows != rows:
        raise bad(f"have {table.num_rows} rows for {rows} rows of evaluation data")
    expected = [PREDICTION_COLUMN, *(f"{PROBA_PREFIX}{i}" for i in range(len(classes)))]
    if table.column_names != expected:
        raise bad(f"have columns {table.column_names[:5]}, not {expected[:5]}")
    kind = table.schema.field(PREDICTION_COLUMN).type
    if not (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
    ):
        raise bad(f"are of type {kind}, not numbers, booleans or strings")
    predictions = table.column(PREDICTION_COLUMN).to_numpy(zero_copy_only=False)
    if table.column(PREDICTION_COLUMN).null_count:
        raise bad("have missing values")
    if not classes:
        return predictions, None, []
    try:
        proba = np.column_stack(
            [
                table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
                for name in expected[1:]
            ]
        )
    except (TypeError, ValueError, pa.ArrowException):
        raise bad("have class probabilities that are not numbers") from None
    if not np.isfinite(proba).all() or (proba < 0).any() or (proba > 1).any():
        raise bad("have class probabilities outside [0, 1]")
    return predictions, proba, list(classes)
