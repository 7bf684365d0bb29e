"""A model's gate metrics are Keel's, not the model's: it predicts in the sandbox without the
labels, and Keel scores the predictions outside it.

Both models here are pickles whose code runs when loaded (stored with a clean scan by hand, as a
scanner bypass would leave them). One looks for the target column in the data it is handed and
predicts it; the other writes a forged result with perfect metrics and exits.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.services.evaluation_fixtures import SIGNATURE, attach, dataset, open_backend
from tests.services.test_sandbox import Malicious, register_as_if_scanned_clean

from keel.domain.evaluation import EvaluationSpec
from keel.errors import EvaluationFailed
from keel.services.backend import Backend

# Predicts the target when the data file it is handed has one (column "y"), else always 0.
PEEKER = (
    "type('Peeker', (), {"
    "'classes_': __import__('numpy').array([0, 1]),"
    "'predict': lambda self, x: (lambda d: d['y'].to_numpy() if 'y' in d.columns"
    " else __import__('numpy').zeros(len(x), dtype=int))"
    "(__import__('pandas').read_parquet('data.bin')),"
    "'predict_proba': lambda self, x: __import__('numpy').eye(2)[self.predict(x)],"
    "})()"
)
FORGER = """
import json, os
json.dump({"ok": True, "report": {"task": "classification", "rows": 600,
    "metrics": {"accuracy": 1.0, "roc_auc": 1.0}, "segments": {}, "fairness": [],
    "duration_s": 0.0}}, open("result.json", "w"))
os._exit(0)
"""


class Evaluated:
    """Unpickling evaluates ``expression``: the object it builds is the model."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def __reduce__(self) -> tuple[Any, ...]:
        return (eval, (self.expression,))


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = open_backend(tmp_path / "keel")
    yield opened
    opened.close()


def test_a_model_that_predicts_the_labels_it_is_handed_gets_no_labels(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = pickle.dumps(Evaluated(PEEKER))
    data = dataset(seed=3)

    # Control: handed the labelled data (as the evaluator once did), it scores perfectly.
    monkeypatch.chdir(tmp_path)
    data.to_parquet(tmp_path / "data.bin", index=False)
    peeker = pickle.loads(evil)
    assert (peeker.predict(data[["x1", "x2"]]) == data["y"].to_numpy()).all()
    os.remove(tmp_path / "data.bin")

    version = register_as_if_scanned_clean(backend, evil)
    attach(backend, version.version, data)
    report = backend.evaluation.evaluate(
        "churn", version.version, EvaluationSpec.from_signature(SIGNATURE)
    )
    # It never saw the target, so it predicted 0 everywhere: the share of 0s, not 1.0.
    assert report.rows == len(data)
    assert report.metrics["accuracy"] == pytest.approx(float(np.mean(data["y"] == 0)))
    assert report.metrics["accuracy"] < 0.8
    assert report.metrics["recall"] == 0.0


def test_a_forged_result_with_perfect_metrics_is_refused(backend: Backend) -> None:
    version = register_as_if_scanned_clean(backend, pickle.dumps(Malicious(FORGER)))
    attach(backend, version.version, dataset(seed=4))
    with pytest.raises(EvaluationFailed) as caught:
        backend.evaluation.evaluate(
            "churn", version.version, EvaluationSpec.from_signature(SIGNATURE)
        )
    assert caught.value.details["cause"] == "bad_result"
    assert "no predictions" in caught.value.message
