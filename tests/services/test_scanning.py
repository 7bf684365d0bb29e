"""The security scan at upload: real scikit-learn models are safe, crafted pickles are not, and
nothing is ever unpickled to find out."""

from __future__ import annotations

import hashlib
import importlib
import io
import pickle
import pickletools
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
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

from keel.domain.evaluation import ScanReport
from keel.domain.registry import ArtifactFlavor
from keel.services.pickle_opcodes import HANDLED_OPCODES
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
        assert report.scanner == "keel"
        assert "fickling" in report.scanner_version  # the second opinion, and its version
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


def test_bytes_keel_did_not_scan_are_not_called_safe() -> None:
    report = scan_bytes(b"\x08\x07\x12\x07pytorch", "sha", ArtifactFlavor.ONNX)
    assert not report.safe
    assert "Not an ONNX model" in report.findings[0].message
    report = scan_bytes(b"\x00\x01 unknown", "sha", ArtifactFlavor.OTHER)
    assert not report.safe
    assert report.findings[0].message.startswith("Not scanned: unknown format")
    # a pickle does not become safe by being called something else
    disguised = pickle.dumps(RunsCommand("true"), protocol=0)
    assert not scan_bytes(disguised, "sha", ArtifactFlavor.OTHER).safe


def _small_model() -> LogisticRegression:
    return LogisticRegression().fit(np.eye(4, 2), [0, 1, 0, 1])


def test_a_self_contained_onnx_model_is_safe_and_one_with_external_data_is_not() -> None:
    import onnx
    from onnx.external_data_helper import set_external_data

    # skl2onnx and skops ship no type hints: imported by name (no mypy override needed)
    to_onnx = importlib.import_module("skl2onnx").to_onnx

    proto = to_onnx(_small_model(), np.eye(4, 2).astype("float32"))
    report = scan_bytes(proto.SerializeToString(), "sha", ArtifactFlavor.ONNX)
    assert report.safe, report.findings
    assert "ONNX model" in report.findings[0].message
    tensor = proto.graph.initializer[0] if proto.graph.initializer else None
    if tensor is None:  # the classifier keeps its weights in node attributes: add one
        tensor = proto.graph.initializer.add()
        tensor.CopyFrom(onnx.numpy_helper.from_array(np.zeros(2, "float32"), "w"))
    set_external_data(tensor, location="../../admin-token")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    report = scan_bytes(proto.SerializeToString(), "sha", ArtifactFlavor.ONNX)
    assert not report.safe
    assert "external files" in report.findings[0].message


def test_skops_files_are_judged_by_their_schema_and_trusted_types() -> None:
    skops_io = importlib.import_module("skops.io")
    skops_flavor = cast(ArtifactFlavor, "skops")  # the flavor the skops helper registers
    data = skops_io.dumps(_small_model())
    assert scan_bytes(data, "sha", skops_flavor).safe
    untrusted = skops_io.dumps({"model": _small_model(), "fn": subprocess.call})
    report = scan_bytes(untrusted, "sha", skops_flavor)
    assert not report.safe
    assert "subprocess" in report.findings[0].message or "call" in report.findings[0].message
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("data.pkl", pickle.dumps(RunsCommand("true")))
    report = scan_bytes(plain_zip.getvalue(), "sha", skops_flavor)
    assert not report.safe
    assert "schema.json" in report.findings[0].message


def test_the_walker_handles_every_pickle_opcode() -> None:
    assert {op.name for op in pickletools.opcodes} <= HANDLED_OPCODES


@pytest.mark.parametrize(
    ("prefix", "what"),
    [(b"ZF", "before 0.9.3"), (b"\x04\x22\x4d\x18", "lz4"), (b"\x5d\x00\x01", "compressed")],
)
def test_joblib_compressor_magic_is_read_as_joblib_reads_it(prefix: bytes, what: str) -> None:
    """``\\x5d\\x00`` is joblib's lzma magic even when the third byte is not 0."""
    report = scan_bytes(prefix + b"(garbage", "sha", ArtifactFlavor.JOBLIB)
    assert not report.safe
    assert what in report.findings[0].message


def test_every_compression_joblib_writes_is_scanned() -> None:
    for compress in ("zlib", "gzip", "bz2", "lzma", "xz"):
        buffer = io.BytesIO()
        joblib.dump(_small_model(), buffer, compress=(compress, 3))
        assert scan_bytes(buffer.getvalue(), "sha", ArtifactFlavor.JOBLIB).safe, compress
        buffer = io.BytesIO()
        joblib.dump(RunsCommand("true"), buffer, compress=(compress, 3))
        assert not scan_bytes(buffer.getvalue(), "sha", ArtifactFlavor.JOBLIB).safe, compress


def test_a_report_by_older_rules_counts_as_unsafe_until_the_artifact_is_scanned_again(
    tmp_path: Path,
) -> None:
    backend = open_backend(tmp_path / "keel")
    try:
        data = pickle.dumps(RunsCommand("true"))
        sha = hashlib.sha256(data).hexdigest()
        stale = ScanReport(sha, "fickling", "0.1.12", True, (), datetime.now(UTC))
        backend.evaluation.store.save_scan(stale, ADMIN.name)  # what the old scanner said
        report = backend.evaluation.scan_report(sha)
        assert report is not None and not report.safe
        assert "older rules" in report.findings[-1].message
        version = register(backend, data, "m.pkl")  # registering again rescans it
        report = backend.evaluation.scan_report(version.artifact.sha256)
        assert report is not None and report.scanner == "keel" and not report.safe
        assert any("posix.system" in f.message for f in report.findings)
    finally:
        backend.close()


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
