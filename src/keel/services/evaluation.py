"""Evaluation: the data a version is judged on, its security scan, and Keel's own metrics.

Reported metrics are stored but not trusted: `Evaluation.evaluate` runs the version's artifact on
the evaluation dataset attached to a version, in a child process (`evaluation_runner`) inside the
model sandbox (`keel.services.sandbox`: no data directory, no network, no secrets) with a memory
cap (RLIMIT_AS) and a wall-clock limit (the whole process tree is killed). The parent never
unpickles anything, and it hands over only artifacts whose scan at upload found them safe. The
report records the sandbox mechanism (``"bubblewrap"``, or ``"none"`` under ``KEEL_SANDBOX=none``).
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from keel.domain.evaluation import EvaluationDataset, EvaluationReport, EvaluationSpec, ScanReport
from keel.domain.model_formats import untrusted_message
from keel.domain.permissions import Permission, Principal, authorize
from keel.domain.registry import ArtifactFlavor, ModelVersion
from keel.domain.signature import Column, ColumnRole, ColumnType, Signature
from keel.domain.telemetry import PARQUET_MEDIA_TYPE
from keel.errors import (
    EvaluationFailed,
    InvalidInput,
    KeelError,
    MalformedUpload,
    PayloadTooLarge,
    UnsafeArtifact,
)
from keel.services.evaluation_predictions import read_predictions
from keel.services.evaluation_runner import EXIT_OUT_OF_MEMORY, sha256_file
from keel.services.evaluation_scoring import score
from keel.services.leftovers import workdir_prefix
from keel.services.model_formats import untrusted_skops_types
from keel.services.registry import Registry
from keel.services.sandbox import SandboxLimits, mechanism, run_sandboxed
from keel.services.scanning import current_report
from keel.services.telemetry_io import UploadLimits, read_limited
from keel.store.sql.compute_usage import SqlComputeUsage
from keel.store.sql.evaluation import SqlEvaluationStore

EVALUABLE_FLAVORS = frozenset(
    {
        ArtifactFlavor.SKLEARN,
        ArtifactFlavor.JOBLIB,
        ArtifactFlavor.PICKLE,
        ArtifactFlavor.SKOPS,
        ArtifactFlavor.ONNX,
    }
)
# Roles whose columns evaluation data must carry: what the model reads, the label, and the
# attributes fairness is judged on.
REQUIRED_ROLES = (ColumnRole.FEATURE, ColumnRole.TARGET, ColumnRole.PROTECTED_ATTRIBUTE)
_STDERR_TAIL = 2000
_OUTPUT_LIMIT = 64 * 1024


def _format_of(data: bytes, filename: str) -> str:
    name = filename.lower()
    if name.endswith((".parquet", ".pq")) or data.startswith(b"PAR1"):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    raise InvalidInput(
        f"The evaluation data file {filename!r} is neither Parquet nor CSV. Upload a .parquet "
        "or .csv file.",
        {"field": "file", "filename": filename},
    )


def _parse(data: bytes, fmt: str, limits: UploadLimits) -> pd.DataFrame:
    """The file as a DataFrame, refused (413) past ``limits`` before it is decoded whole."""
    if fmt == "csv":
        # CSV is not compressed, so its size on the wire bounds its decoded bytes; its lines
        # (less the header) bound its rows.
        limits.check(max(data.count(b"\n") - 1, 0), 0)
    try:
        if fmt == "parquet":
            frame: pd.DataFrame = read_limited(data, PARQUET_MEDIA_TYPE, limits).to_pandas()
            return frame
        return pd.read_csv(io.BytesIO(data))
    except PayloadTooLarge:
        raise
    except Exception as exc:  # pyarrow and pandas raise many kinds; all mean "unreadable"
        raise MalformedUpload(
            f"The evaluation data is not readable {fmt.upper()}: {exc}. Check the file, or "
            "upload it again.",
            {"field": "file", "format": fmt},
        ) from None


def _type_ok(series: pd.Series, column: Column) -> bool:
    values = series.dropna()
    kind = series.dtype.kind
    if column.dtype == ColumnType.FLOAT:
        return kind in "iuf" or (kind == "b")
    if column.dtype == ColumnType.INTEGER:
        if kind in "iu":
            return True
        return kind == "f" and bool((values == values.round()).all())
    if column.dtype == ColumnType.BOOLEAN:
        return kind == "b" or (kind in "iu" and bool(values.isin([0, 1]).all()))
    if column.dtype == ColumnType.STRING:
        return kind in "OSU" or isinstance(series.dtype, pd.StringDtype)
    if column.dtype == ColumnType.CATEGORICAL:
        return kind != "f" or isinstance(series.dtype, pd.CategoricalDtype)
    # DATETIME: datetime values, or text that parses as dates.
    if kind == "M":
        return True
    try:
        pd.to_datetime(values)
    except (ValueError, TypeError):
        return False
    return True


def check_against_signature(frame: pd.DataFrame, signature: Signature) -> None:
    """Refuse data that does not fit the version's signature, naming the column and the fix."""
    if frame.empty:
        raise InvalidInput(
            "The evaluation data has no rows. Upload labelled rows to evaluate on.",
            {"field": "file"},
        )
    by_name = {c.name: c for c in signature.columns}
    for name in frame.columns:
        if str(name) not in by_name:
            raise InvalidInput(
                f"The evaluation data has column {name!r}, which is not in the version's "
                f"signature. Remove it, or register a version whose signature has it "
                f"(signature columns: {', '.join(by_name)}).",
                {"field": "file", "column": str(name)},
            )
    for column in signature.columns:
        if column.role in REQUIRED_ROLES and column.name not in frame.columns:
            raise InvalidInput(
                f"The evaluation data lacks column {column.name!r} ({column.role}, "
                f"{column.dtype}). Add it: evaluation needs every feature, the target and the "
                "protected attributes.",
                {"field": "file", "column": column.name, "expected": str(column.dtype)},
            )
        if column.name not in frame.columns:
            continue
        series = frame[column.name]
        if not _type_ok(series, column):
            raise InvalidInput(
                f"Column {column.name!r} of the evaluation data holds {series.dtype} values; "
                f"the signature expects {column.dtype}.",
                {"field": "file", "column": column.name, "expected": str(column.dtype)},
            )
        if not column.nullable and bool(series.isna().any()):
            raise InvalidInput(
                f"Column {column.name!r} of the evaluation data has missing values; the "
                "signature says it is never empty.",
                {"field": "file", "column": column.name},
            )


def _read_limited(stream: BinaryIO, limit: int) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"Evaluation data may be at most {limit} bytes; raise KEEL_MAX_ARTIFACT_BYTES on "
            "the server to allow more.",
            {"field": "file", "limit_bytes": limit},
        )
    return data


def child_env() -> dict[str, str]:
    """Added to the sandbox's own (PATH, HOME, TMPDIR, LANG): one BLAS thread (less address
    space reserved), and joblib in serial mode (the sandbox has no writable /dev/shm)."""
    env = {var: "1" for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env["JOBLIB_MULTIPROCESSING"] = "0"
    return env


class Evaluation:
    """Evaluation datasets, scan reports and sandboxed evaluation runs."""

    def __init__(
        self,
        store: SqlEvaluationStore,
        registry: Registry,
        *,
        max_dataset_bytes: int,
        upload_limits: UploadLimits | None = None,
        compute_usage: SqlComputeUsage | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        # Each evaluation's sandboxed run is metered here (costs price it per vCPU-hour).
        self.compute_usage = compute_usage
        self.max_dataset_bytes = max_dataset_bytes
        self.upload_limits = upload_limits or UploadLimits()

    def scan_report(self, sha256: str) -> ScanReport | None:
        """The stored security scan of the artifact with this SHA-256, if any (one by older
        scanner rules counts as unsafe)."""
        return current_report(self.store.get_scan(sha256))

    def dataset(self, model: str, version: int) -> EvaluationDataset | None:
        """The evaluation dataset attached to a version, if any (`NotFound` for no version)."""
        return self.store.get_dataset(model, version)

    def data_frame(self, dataset: EvaluationDataset) -> pd.DataFrame:
        """The rows of an attached evaluation dataset (read back from the artifact store)."""
        return _parse(self._read(dataset.sha256), dataset.format, self.upload_limits)

    def attach_dataset(
        self, by: Principal, model: str, version: int, stream: BinaryIO, filename: str
    ) -> EvaluationDataset:
        """Validate a Parquet or CSV file against the version's signature and attach it.

        Nothing is stored unless the file parses and fits the signature; the record is audited.
        """
        found = self.registry.get_version(model, version)
        authorize(by, Permission.WRITE, self.registry.get_model(model).team)
        data = _read_limited(stream, self.max_dataset_bytes)
        fmt = _format_of(data, filename)
        frame = _parse(data, fmt, self.upload_limits)
        check_against_signature(frame, found.signature)
        stored = self.registry.artifacts.put_bytes(data, max_bytes=self.max_dataset_bytes)
        return self.store.put_dataset(
            EvaluationDataset(
                model=found.model,
                version=found.version,
                sha256=stored.sha256,
                format=fmt,
                rows=len(frame),
                columns=tuple(str(c) for c in frame.columns),
                uploaded_by=by.name,
                uploaded_at=datetime.now(UTC),
            )
        )

    def evaluate(
        self,
        model: str,
        version: int,
        spec: EvaluationSpec,
        *,
        data_of_version: int | None = None,
    ) -> EvaluationReport:
        """Run ``version``'s artifact on the evaluation data of ``data_of_version`` (default: the
        same version) in a separate process under ``spec``'s time and memory limits.

        Raises `UnsafeArtifact` when the artifact has no scan or an unsafe one (it is never
        loaded), `EvaluationFailed` with the child's error otherwise.
        """
        found = self.registry.get_version(model, version)
        self._check_safe(found)
        if found.artifact.flavor not in EVALUABLE_FLAVORS:
            raise EvaluationFailed(
                f"Keel evaluates skops, ONNX, scikit-learn, joblib and pickle artifacts; "
                f"{model} v{version} is {found.artifact.flavor}.",
                {"model": model, "version": version, "flavor": str(found.artifact.flavor)},
            )
        data_version = version if data_of_version is None else data_of_version
        dataset = self.store.get_dataset(model, data_version)
        if dataset is None:
            raise EvaluationFailed(
                f"{model} v{data_version} has no evaluation data. Attach it with "
                f"`keel eval-data attach {model} {data_version} FILE`.",
                {"model": model, "version": data_version, "cause": "no_data"},
            )
        data = _parse(self._read(dataset.sha256), dataset.format, self.upload_limits)
        needed = [spec.target, *spec.protected, *spec.segments]
        missing = [c for c in needed if c not in data.columns]
        if missing:
            raise EvaluationFailed(
                f"The evaluation data lacks column(s) {', '.join(map(repr, missing))} named by "
                "the evaluation (target, protected attributes, segments). Attach data that has "
                "them.",
                {"model": model, "version": version, "cause": "missing_columns"},
            )
        with tempfile.TemporaryDirectory(prefix=workdir_prefix("eval")) as tmp:
            workdir = Path(tmp)
            self._copy(found.artifact.sha256, workdir / "model.bin")
            # The model gets the features, never the target: it cannot score itself.
            data.drop(columns=[spec.target]).to_parquet(workdir / "data.bin", index=False)
            request = {
                "model_sha256": found.artifact.sha256,
                "data_sha256": sha256_file(workdir / "data.bin"),
                "data_format": "parquet",
                "flavor": str(found.artifact.flavor),
                "features": [c.name for c in found.signature.features],
                "spec": spec.to_dict(),
            }
            (workdir / "request.json").write_text(json.dumps(request))
            began = time.monotonic()
            try:
                predicted = self._run_child(workdir, spec, model, version)
            finally:
                self._meter(model, version, time.monotonic() - began)
            pred, proba, classes = read_predictions(
                workdir, rows=len(data), claimed=predicted, model=model, version=version
            )
        report = score(spec, data, pred, proba, classes, float(predicted.get("duration_s", 0)))
        return EvaluationReport.from_dict({**report, "sandbox": mechanism()})

    def _meter(self, model: str, version: int, seconds: float) -> None:
        if self.compute_usage is not None:
            hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            self.compute_usage.add({("evaluation", model, version, hour): (seconds, 1)})

    def loading_problem(self, found: ModelVersion) -> str | None:
        """Why the version's skops file would not load without running code (types Keel does
        not trust, or not a skops file at all); None when it would, or for other flavors.

        Reads only the archive's schema: nothing in the file is constructed.
        """
        if found.artifact.flavor != ArtifactFlavor.SKOPS:
            return None
        with tempfile.TemporaryDirectory(prefix="keel-skops-") as tmp:
            path = Path(tmp) / "model.skops"
            try:
                self._copy(found.artifact.sha256, path)
                untrusted = untrusted_skops_types(path=path)
            except KeelError as exc:
                return exc.message
            except Exception as exc:  # zipfile, json and skops raise many kinds: unreadable
                return (
                    f"the artifact is named .skops but is not a readable skops file ({exc}); "
                    "save the model with skops.io.dump and register a new version"
                )
        return untrusted_message(untrusted) if untrusted else None

    def _check_safe(self, found: ModelVersion) -> None:
        report = self.scan_report(found.artifact.sha256)
        details = {"model": found.model, "version": found.version, "sha256": found.artifact.sha256}
        if report is None:
            raise UnsafeArtifact(
                f"{found.model} v{found.version}'s artifact has no security scan, so Keel will "
                "not load it. Register it again to have it scanned.",
                details,
            )
        if not report.safe:
            worst = next((f.message for f in report.findings if f.severity != "LIKELY_SAFE"), "")
            raise UnsafeArtifact(
                f"{found.model} v{found.version}'s artifact failed the security scan "
                f"({worst}); Keel will not load it. Re-export the model without the flagged "
                "code and register a new version.",
                {**details, "findings": [f.message for f in report.findings]},
            )

    def _read(self, sha256: str) -> bytes:
        return b"".join(self.registry.artifacts.iter_verified(sha256))

    def _copy(self, sha256: str, target: Path) -> None:
        with target.open("wb") as out:
            for chunk in self.registry.artifacts.iter_verified(sha256):
                out.write(chunk)

    def _run_child(
        self, workdir: Path, spec: EvaluationSpec, model: str, version: int
    ) -> dict[str, Any]:
        details: dict[str, Any] = {"model": model, "version": version}
        ran = run_sandboxed(
            [sys.executable, "-m", "keel.services.evaluation_runner", str(workdir)],
            workdir=workdir,
            limits=SandboxLimits(wall_seconds=spec.time_limit_s, memory_mb=spec.memory_limit_mb),
            env=child_env(),
            output_limit_bytes=_OUTPUT_LIMIT,
        )
        if ran.timed_out:
            raise EvaluationFailed(
                f"Evaluating {model} v{version} took longer than {spec.time_limit_s:g} s and "
                "was stopped. Raise the policy's time limit or use a smaller evaluation "
                "dataset.",
                {**details, "cause": "timeout", "limit_s": spec.time_limit_s},
            )
        result_path = workdir / "result.json"
        if not result_path.exists():
            if ran.returncode == EXIT_OUT_OF_MEMORY:
                raise self._memory_error(spec, details)
            tail = ran.output.decode(errors="replace")[-_STDERR_TAIL:]
            raise EvaluationFailed(
                f"The evaluation process for {model} v{version} died (exit code "
                f"{ran.returncode}) without a result. {tail}".strip(),
                {**details, "cause": "crash", "exit_code": ran.returncode},
            )
        result = _child_result(result_path, details)
        if result.get("ok") is True:
            predicted = result.get("predicted")
            if not isinstance(predicted, dict):
                raise EvaluationFailed(
                    f"The evaluation process for {model} v{version} said it succeeded but "
                    "handed back no predictions; the model's code may have written that. "
                    "Nothing was recorded.",
                    {**details, "cause": "bad_result"},
                )
            return predicted
        if result.get("kind") == "memory":
            raise self._memory_error(spec, details)
        raise EvaluationFailed(
            f"Evaluating {model} v{version} failed: {str(result.get('message', ''))[:4000]}",
            {**details, "cause": str(result.get("kind", "crash"))[:100]},
        )

    @staticmethod
    def _memory_error(spec: EvaluationSpec, details: dict[str, Any]) -> EvaluationFailed:
        return EvaluationFailed(
            f"Evaluating {details['model']} v{details['version']} needed more than "
            f"{spec.memory_limit_mb} MB of memory and was stopped. Raise the policy's memory "
            "limit or use a smaller evaluation dataset.",
            {**details, "cause": "memory", "limit_mb": spec.memory_limit_mb},
        )


# The child's result.json is written by a process that ran model code: read it as untrusted.
_RESULT_LIMIT = 1 << 20


def _child_result(path: Path, details: dict[str, Any]) -> dict[str, Any]:
    try:
        raw = path.read_bytes()[: _RESULT_LIMIT + 1]
        result = json.loads(raw) if len(raw) <= _RESULT_LIMIT else None
    except (OSError, ValueError):
        result = None
    if not isinstance(result, dict):
        raise EvaluationFailed(
            f"The evaluation process for {details['model']} v{details['version']} left an "
            "unreadable result; the model's code may have written it. Nothing was recorded.",
            {**details, "cause": "bad_result"},
        )
    return result
