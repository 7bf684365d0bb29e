"""The security scan at upload: real scikit-learn models are safe, crafted pickles are not, and
nothing is ever unpickled to find out."""

from __future__ import annotations

import io
import pickle
import subprocess
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from tests.services.evaluation_fixtures import (
    ADMIN,
    RunsCommand,
    dataset,
    fair_model,
    joblib_bytes,
    open_backend,
    register,
)

from keel.domain.registry import ArtifactFlavor
from keel.services.scanning import scan_bytes


def _forest_pipeline() -> object:
    frame = dataset()
    return make_pipeline(
        OneHotEncoder(handle_unknown="ignore"), RandomForestClassifier(n_estimators=5)
    ).fit(frame[["region"]], frame["y"])


@pytest.mark.parametrize("save", ["pickle", "joblib", "joblib-compressed"])
def test_scikit_learn_models_scan_safe(save: str) -> None:
    for model in (fair_model(dataset()), _forest_pipeline()):
        if save == "pickle":
            data = pickle.dumps(model)
        else:
            buffer = io.BytesIO()
            joblib.dump(model, buffer, compress=3 if save == "joblib-compressed" else 0)
            data = buffer.getvalue()
        report = scan_bytes(data, "sha", ArtifactFlavor.JOBLIB)
        assert report.safe, report.findings
        assert report.scanner == "fickling"
        assert any("sklearn" in f.message for f in report.findings)


@pytest.mark.parametrize(
    "payload",
    [
        RunsCommand("true"),
        {"model": "ok", "hidden": RunsCommand("true")},
        # after a NumPy array's raw bytes, which plain fickling stops reading at
        [np.arange(1000.0), RunsCommand("true")],
        # inside an object array, which joblib writes as a nested pickle
        [np.array([RunsCommand("true"), 1], dtype=object)],
    ],
    ids=["top-level", "nested", "after-array", "object-array"],
)
def test_os_system_pickle_is_unsafe_wherever_it_hides(payload: object) -> None:
    buffer = io.BytesIO()
    joblib.dump(payload, buffer)
    report = scan_bytes(buffer.getvalue(), "sha", ArtifactFlavor.JOBLIB)
    assert not report.safe
    assert any("system" in f.message for f in report.findings)


@pytest.mark.parametrize(
    "call", [subprocess.call, eval, exec, __import__], ids=["subprocess", "eval", "exec", "import"]
)
def test_code_running_globals_are_unsafe(call: object) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, ...]:
            return (call, ("x",))

    assert not scan_bytes(pickle.dumps(Payload()), "sha", ArtifactFlavor.PICKLE).safe


def test_truncated_and_corrupt_pickles_are_unsafe() -> None:
    whole = joblib_bytes(fair_model(dataset()))
    for broken in (whole[: len(whole) // 2], whole + b"trailing", b"\x80\x04garbage"):
        report = scan_bytes(broken, "sha", ArtifactFlavor.JOBLIB)
        assert not report.safe
        assert any(
            word in f.message
            for f in report.findings
            for word in ("truncated", "corrupt", "follow")
        ), report.findings


def test_bytes_that_are_not_a_pickle_say_so() -> None:
    report = scan_bytes(b"\x08\x07\x12\x07pytorch", "sha", ArtifactFlavor.ONNX)
    assert report.safe
    assert "Not a pickle" in report.findings[0].message
    # a pickle does not become safe by being called something else
    disguised = pickle.dumps(RunsCommand("true"), protocol=0)
    assert not scan_bytes(disguised, "sha", ArtifactFlavor.OTHER).safe


def test_registration_stores_the_scan_before_returning_and_never_unpickles(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "marker"
    backend = open_backend(tmp_path / "keel")
    try:
        good = register(backend, joblib_bytes(fair_model(dataset())))
        evil = register(backend, pickle.dumps(RunsCommand(f"touch {marker}")), "m.pkl")
        good_scan = backend.evaluation.scan_report(good.artifact.sha256)
        evil_scan = backend.evaluation.scan_report(evil.artifact.sha256)
        assert good_scan is not None and good_scan.safe
        assert evil_scan is not None and not evil_scan.safe
        assert any("system" in f.message for f in evil_scan.findings)
        scans = backend.audit.events(ADMIN, action="artifact.scan")
        assert {(e.subject_id, e.details["safe"]) for e in scans} == {
            (good.artifact.sha256, True),
            (evil.artifact.sha256, False),
        }
        assert not marker.exists()
    finally:
        backend.close()
