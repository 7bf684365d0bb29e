"""Evaluation data attached to a version, and the security scan of its artifact."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile

from keel.api.deps import Reader, RegistryDep, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.api.routers.versions import _filename
from keel.domain.evaluation import EvaluationDataset, ScanReport
from keel.errors import NotFound
from keel.schemas.base import Id
from keel.schemas.evaluation import EvaluationDatasetOut, ScanFindingOut, ScanReportOut
from keel.services.backend import Backend
from keel.services.evaluation import Evaluation

router = APIRouter(prefix=API_PREFIX + "/models/{name}/versions/{version}", tags=["evaluation"])


def get_evaluation(backend: Annotated[Backend, Depends(get_backend)]) -> Evaluation:
    return backend.evaluation


EvaluationDep = Annotated[Evaluation, Depends(get_evaluation)]


def dataset_out(dataset: EvaluationDataset) -> EvaluationDatasetOut:
    return EvaluationDatasetOut(
        model=dataset.model,
        version=dataset.version,
        sha256=dataset.sha256,
        format=dataset.format,
        rows=dataset.rows,
        columns=list(dataset.columns),
        uploaded_by=dataset.uploaded_by,
        uploaded_at=dataset.uploaded_at,
    )


def scan_out(report: ScanReport) -> ScanReportOut:
    return ScanReportOut(
        sha256=report.sha256,
        scanner=report.scanner,
        scanner_version=report.scanner_version,
        safe=report.safe,
        findings=[ScanFindingOut(severity=f.severity, message=f.message) for f in report.findings],
        scanned_at=report.scanned_at,
    )


@router.put(
    "/evaluation-data",
    summary="Attach evaluation data (multipart: a Parquet or CSV file with features and target)",
)
def attach_evaluation_data(
    name: str,
    version: Id,
    evaluation: EvaluationDep,
    caller: Writer,
    file: Annotated[UploadFile, File(description="Parquet or CSV, columns as in the signature.")],
) -> EvaluationDatasetOut:
    attached = evaluation.attach_dataset(caller, name, version, file.file, _filename(file.filename))
    return dataset_out(attached)


@router.get("/evaluation-data", summary="Show the evaluation data attached to a version")
def get_evaluation_data(
    name: str, version: Id, evaluation: EvaluationDep, _: Reader
) -> EvaluationDatasetOut:
    found = evaluation.dataset(name, version)
    if found is None:
        raise NotFound(
            f"{name} v{version} has no evaluation data. Attach it with "
            f"`keel eval-data attach {name} {version} FILE`.",
            {"model": name, "version": version},
        )
    return dataset_out(found)


@router.get("/scan", summary="Show the security scan of a version's artifact")
def get_scan(
    name: str, version: Id, registry: RegistryDep, evaluation: EvaluationDep, _: Reader
) -> ScanReportOut:
    found = registry.get_version(name, version)
    report = evaluation.scan_report(found.artifact.sha256)
    if report is None:
        raise NotFound(
            f"{name} v{version}'s artifact has not been scanned (it was registered before "
            "scanning existed). Register it again to scan it.",
            {"model": name, "version": version, "sha256": found.artifact.sha256},
        )
    return scan_out(report)
