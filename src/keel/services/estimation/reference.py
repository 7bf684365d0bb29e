"""The estimation reference: which rows of a reference dataset an estimator learns from, and the
fit itself (run by the ``estimation-fit`` job).

A reference dataset feeds estimation when, besides the features, it carries the model's
``prediction`` and the true label (the signature's target column, or ``label``); a classifier's
also carries its ``score`` (the positive class's probability, as telemetry logs it). Those rows
are the NannyML "reference period": the model's outputs where the labels are known.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from keel.domain.estimation import EstimationMethod
from keel.domain.signature import ColumnRole, Signature
from keel.domain.telemetry import LABEL, PREDICTION, SCORE
from keel.errors import InvalidInput
from keel.services.estimation.dle_model import ErrorModel, fit_error_model
from keel.services.monitoring_checks import CLASSIFICATION_TARGETS
from keel.services.telemetry_validation import logged_columns
from keel.stats.estimation.cbpe import CBPEReference, fit_cbpe

# Rows kept for the fit: enough for the calibration and the error model, small enough to store.
MAX_REFERENCE_ROWS = 200_000
SAMPLE_SEED = 0


def normalized_labels(values: pa.ChunkedArray | pa.Array) -> npt.NDArray[Any]:
    """Labels or predictions as NumPy, as the performance check reads them: booleans as 0/1,
    whole floats as ints, text as str."""
    array = np.asarray(values.to_numpy(zero_copy_only=False))
    if array.dtype == np.bool_:
        return array.astype(np.int64)
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        return array.astype(np.int64)
    if array.dtype.kind == "O":
        return array.astype(str)
    return array


def target_column(signature: Signature) -> str:
    targets = signature.with_role(ColumnRole.TARGET)
    return targets[0].name if targets else LABEL


def method_for(signature: Signature, labels: npt.NDArray[Any]) -> EstimationMethod:
    targets = signature.with_role(ColumnRole.TARGET)
    classifier = targets[0].dtype in CLASSIFICATION_TARGETS if targets else labels.dtype.kind != "f"
    return EstimationMethod.CBPE if classifier else EstimationMethod.DLE


def estimation_rows(
    table: pa.Table, signature: Signature
) -> tuple[EstimationMethod, pa.Table] | None:
    """The reference rows estimation learns from, or None when ``table`` lacks the model's
    predictions or the labels (a plain training set: drift works, estimation does not)."""
    target = target_column(signature)
    if PREDICTION not in table.column_names or target not in table.column_names:
        return None
    labels = normalized_labels(table.column(target).drop_null())
    method = method_for(signature, labels)
    features = [c.name for c in logged_columns(signature) if c.name in table.column_names]
    keep: dict[str, pa.ChunkedArray] = {
        PREDICTION: table.column(PREDICTION),
        LABEL: table.column(target),
    }
    if method == EstimationMethod.CBPE:
        if SCORE not in table.column_names:
            raise InvalidInput(
                f"The reference has predictions and labels but no '{SCORE}' column: CBPE reads "
                "the model's score (the positive class's probability). Add it, or leave out "
                "the predictions to set a drift reference only.",
                {"field": SCORE},
            )
        keep[SCORE] = table.column(SCORE)
    else:
        keep.update({name: table.column(name) for name in features})
    rows = pa.table(keep).filter(pa.compute.is_valid(table.column(target)))
    if rows.num_rows > MAX_REFERENCE_ROWS:
        pick = np.sort(
            np.random.default_rng(SAMPLE_SEED).choice(rows.num_rows, MAX_REFERENCE_ROWS, False)
        )
        rows = rows.take(pa.array(pick))
    return method, rows


def to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def from_parquet(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


@dataclass(frozen=True)
class FittedEstimator:
    """What a fit leaves: CBPE's numbers, or DLE's error model (and its file)."""

    method: EstimationMethod
    cbpe: CBPEReference | None = None
    dle: ErrorModel | None = None

    def params(self) -> dict[str, Any]:
        if self.cbpe is not None:
            return {**self.cbpe.to_dict(), "summary": self.summary()}
        assert self.dle is not None
        return {"method": "dle", "summary": self.summary()}

    def summary(self) -> dict[str, Any]:
        if self.cbpe is not None:
            return {
                "method": "cbpe",
                "classes": [str(c) for c in self.cbpe.classes],
                "calibrated": list(self.cbpe.calibrated),
            }
        assert self.dle is not None
        return {
            "method": "dle",
            "features": [*self.dle.encoding.numeric, *self.dle.encoding.categorical],
            "abs_error_sd": self.dle.reference.abs_error_sd,
        }


def fit(method: EstimationMethod, rows: pa.Table) -> FittedEstimator:
    """Fit the estimator of ``method`` on the reference rows."""
    labels = normalized_labels(rows.column(LABEL))
    predictions = normalized_labels(rows.column(PREDICTION))
    if method == EstimationMethod.CBPE:
        score_column = rows.column(SCORE)
        if score_column.null_count:
            raise InvalidInput(
                f"{score_column.null_count} reference rows have no score; CBPE needs the "
                "model's score on every reference row.",
                {"field": SCORE},
            )
        classes = sorted(set(labels.tolist()) | set(predictions.tolist()))
        if len(classes) > 2:
            raise InvalidInput(
                f"The reference holds {len(classes)} classes. Telemetry logs one score per "
                "prediction (the positive class's probability), so Keel estimates binary "
                "classifiers from it; a multiclass model needs a score per class.",
                {"field": SCORE, "classes": [str(c) for c in classes]},
            )
        score = np.asarray(score_column.to_numpy(zero_copy_only=False), dtype=np.float64)
        return FittedEstimator(method, cbpe=fit_cbpe(labels, score))
    features = [n for n in rows.column_names if n not in (PREDICTION, LABEL, SCORE)]
    columns = {n: rows.column(n).to_numpy(zero_copy_only=False) for n in features}
    model = fit_error_model(columns, predictions.astype(np.float64), labels.astype(np.float64))
    return FittedEstimator(method, dle=model)


def load(
    method: EstimationMethod, params: dict[str, Any], model_file: bytes | None
) -> FittedEstimator:
    """A stored fit, loaded back (DLE's model through skops' trusted-types check)."""
    if method == EstimationMethod.CBPE:
        return FittedEstimator(method, cbpe=CBPEReference.from_dict(params))
    if model_file is None:
        raise InvalidInput("The stored DLE estimator has no error model; set the reference again.")
    return FittedEstimator(method, dle=ErrorModel.from_bytes(model_file))
