"""Formats that load without running code: skops and ONNX models register, pass the gates with
Keel's own metrics, and the security gate says what loading each flavor does."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io  # type: ignore[import-untyped,unused-ignore]
from skl2onnx import to_onnx  # type: ignore[import-untyped,unused-ignore]
from sklearn import metrics
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from tests.services.evaluation_fixtures import (
    ADMIN,
    SIGNATURE,
    attach,
    dataset,
    fair_model,
    joblib_bytes,
    open_backend,
    register,
)
from tests.services.test_sandbox import register_as_if_scanned_clean

from keel.domain.evaluation import EvaluationSpec
from keel.domain.governance import Gate, GateOutcome
from keel.domain.registry import ArtifactFlavor
from keel.errors import EvaluationFailed, UnsafeArtifact
from keel.services.backend import Backend

POLICY = """\
tier: unassessed
checks:
  performance:
    min: {accuracy: 0.7}
  security:
    max_artifact_mb: 50
    require_pinned_environment: false
"""


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = open_backend(tmp_path / "keel")
    opened.governance.apply_policy(ADMIN, POLICY)
    yield opened
    opened.close()


def gates(backend: Backend, version: int) -> dict[Gate, Any]:
    status = backend.governance.run_gates(ADMIN, "churn", version)
    return {g.gate: g for g in status.gates}


def loading_check(state: Any) -> dict[str, Any]:
    checks = state.result.evidence["checks"]
    found: dict[str, Any] = next(c for c in checks if c["check"] == "loading")
    return found


def test_a_skops_model_registers_as_skops_and_is_scored_like_scikit_learn(
    backend: Backend,
) -> None:
    train, held_out = dataset(seed=1), dataset(seed=2)
    model = fair_model(train)
    version = register(backend, skops.io.dumps(model), "model.skops")
    assert version.artifact.flavor == ArtifactFlavor.SKOPS
    attach(backend, version.version, held_out)

    report = backend.evaluation.evaluate(
        "churn", version.version, EvaluationSpec.from_signature(SIGNATURE)
    )
    x, y = held_out[["x1", "x2"]], held_out["y"]
    assert report.metrics["accuracy"] == pytest.approx(metrics.accuracy_score(y, model.predict(x)))
    assert report.metrics["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(y, model.predict_proba(x)[:, 1])
    )

    states = gates(backend, version.version)
    assert states[Gate.PERFORMANCE].outcome == GateOutcome.PASSED
    assert states[Gate.SECURITY].outcome == GateOutcome.PASSED
    assert loading_check(states[Gate.SECURITY])["detail"] == "skops: loads without running code"
    assert states[Gate.PERFORMANCE].result.evidence["sandbox"] == "bubblewrap"


@pytest.mark.parametrize(
    "estimator",
    [RandomForestClassifier(n_estimators=5, random_state=0), HistGradientBoostingClassifier()],
    ids=["random-forest", "hist-gradient-boosting"],
)
def test_tree_models_load_from_skops_with_keels_trusted_types(
    backend: Backend, estimator: Any
) -> None:
    train, held_out = dataset(seed=1), dataset(seed=2)
    model = estimator.fit(train[["x1", "x2"]], train["y"])
    assert skops.io.get_untrusted_types(data=skops.io.dumps(model))  # not skops' defaults
    version = register(backend, skops.io.dumps(model), "model.skops")
    attach(backend, version.version, held_out)
    report = backend.evaluation.evaluate(
        "churn", version.version, EvaluationSpec.from_signature(SIGNATURE)
    )
    x, y = held_out[["x1", "x2"]], held_out["y"]
    assert report.metrics["accuracy"] == pytest.approx(metrics.accuracy_score(y, model.predict(x)))


def test_an_onnx_classifier_is_scored_from_its_label_and_probability_outputs(
    backend: Backend,
) -> None:
    train, held_out = dataset(seed=1), dataset(seed=2)
    model = fair_model(train)
    graph = to_onnx(model, train[["x1", "x2"]].to_numpy(np.float32)[:1])
    version = register(backend, graph.SerializeToString(), "model.onnx")
    assert version.artifact.flavor == ArtifactFlavor.ONNX
    attach(backend, version.version, held_out)

    report = backend.evaluation.evaluate(
        "churn", version.version, EvaluationSpec.from_signature(SIGNATURE)
    )
    x, y = held_out[["x1", "x2"]], held_out["y"]
    # ONNX computes in float32: the same predictions, probabilities to about 1e-6.
    assert report.metrics["accuracy"] == pytest.approx(
        metrics.accuracy_score(y, model.predict(x)), abs=0.005
    )
    assert report.metrics["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(y, model.predict_proba(x)[:, 1]), abs=1e-4
    )
    assert report.metrics["log_loss"] == pytest.approx(
        metrics.log_loss(y, model.predict_proba(x)), abs=1e-4
    )
    states = gates(backend, version.version)
    assert states[Gate.PERFORMANCE].outcome == GateOutcome.PASSED
    assert states[Gate.SECURITY].outcome == GateOutcome.PASSED
    assert loading_check(states[Gate.SECURITY])["detail"] == "onnx: loads without running code"


def test_a_skops_file_with_an_untrusted_type_is_refused_and_never_loaded(
    backend: Backend,
) -> None:
    # A pipeline whose first step would call os.system on the evaluation data.
    model = make_pipeline(FunctionTransformer(os.system), fair_model(dataset(seed=1)))
    version = register(backend, skops.io.dumps(model), "model.skops")
    attach(backend, version.version, dataset(seed=2))

    states = gates(backend, version.version)
    security = states[Gate.SECURITY]
    assert security.outcome == GateOutcome.FAILED
    assert "types Keel does not trust (posix.system)" in loading_check(security)["detail"]
    assert states[Gate.PERFORMANCE].outcome == GateOutcome.ERROR
    # The upload scan already judged it unsafe: the evaluator refuses to load it at all.
    with pytest.raises(UnsafeArtifact, match=r"types Keel does not trust \(posix.system\)"):
        backend.evaluation.evaluate(
            "churn", version.version, EvaluationSpec.from_signature(SIGNATURE)
        )
    # Second wall: even with a clean scan on record (a scanner bypass), the sandboxed loader
    # builds nothing from a type Keel does not trust.
    bypassed = register_as_if_scanned_clean(backend, skops.io.dumps(model), "model.skops")
    attach(backend, bypassed.version, dataset(seed=2))
    with pytest.raises(EvaluationFailed, match=r"types Keel does not trust \(posix.system\)") as e:
        backend.evaluation.evaluate(
            "churn", bypassed.version, EvaluationSpec.from_signature(SIGNATURE)
        )
    assert e.value.details["cause"] == "untrusted_types"


def test_a_pickle_is_reported_as_running_code_only_in_the_sandbox(backend: Backend) -> None:
    version = register(backend, joblib_bytes(fair_model(dataset(seed=1))))
    attach(backend, version.version, dataset(seed=2))
    check = loading_check(gates(backend, version.version)[Gate.SECURITY])
    assert check["status"] == "pass"
    assert check["detail"] == "sklearn: runs code when loaded: only in the sandbox (bubblewrap)"


def test_a_torch_style_zip_is_not_called_safe(backend: Backend) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/version", b"3\n")
    version = register(backend, buffer.getvalue(), "model.pt")
    assert version.artifact.flavor == ArtifactFlavor.OTHER
    security = gates(backend, version.version)[Gate.SECURITY]
    assert security.outcome == GateOutcome.FAILED
    check = loading_check(security)
    assert check["status"] == "fail"
    assert check["loading"] == "not scanned: Keel cannot tell what loading it does"
    assert "save the model with skops (scikit-learn) or as ONNX" in check["detail"]
