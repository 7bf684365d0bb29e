"""Compliance documents: a model's card and EU AI Act Annex IV technical documentation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from keel.api.deps import Reader, get_backend
from keel.api.routers import API_PREFIX
from keel.api.routers.jobs import job_out
from keel.schemas.base import Id
from keel.schemas.documents import DocumentExportIn
from keel.schemas.jobs import JobOut
from keel.services.backend import Backend
from keel.services.compliance import MEDIA_TYPES, ComplianceDocuments, document_headers
from keel.services.job_kinds import queue_compliance_export

router = APIRouter(prefix=API_PREFIX + "/models/{name}", tags=["documents"])


def get_compliance(backend: Annotated[Backend, Depends(get_backend)]) -> ComplianceDocuments:
    return backend.compliance


ComplianceDep = Annotated[ComplianceDocuments, Depends(get_compliance)]


@router.get(
    "/documents",
    summary="Export a version's technical documentation (md, html or json), gaps listed first",
    response_class=Response,
    responses={
        200: {
            "description": "The document, in the format asked for.",
            "content": {media.split(";")[0]: {} for media in MEDIA_TYPES.values()},
        }
    },
)
def export_document(
    name: str,
    compliance: ComplianceDep,
    _: Reader,
    version: Annotated[
        Id | None,
        Query(description="The version to document (default: production, else newest)."),
    ] = None,
    format: Annotated[
        str, Query(description="md, html or json. PDF: print the HTML from a browser.")
    ] = "html",
) -> Response:
    document = compliance.technical_documentation(name, version)
    body = compliance.render(document, format)
    filename = f"{document.model}-v{document.version}-technical-documentation.{format}"
    return Response(
        content=body,
        media_type=MEDIA_TYPES[format],
        headers={
            **document_headers(format),
            "Content-Disposition": f'inline; filename="{filename}"',
            "X-Keel-Document-Gaps": str(len(document.gaps)),
        },
    )


@router.post(
    "/documents/exports",
    status_code=202,
    summary="Queue an export of a version's technical documentation; 202: follow the job (its "
    "result holds the document)",
)
def queue_document_export(
    name: str,
    backend: Annotated[Backend, Depends(get_backend)],
    caller: Reader,
    body: DocumentExportIn | None = None,
) -> JobOut:
    body = body or DocumentExportIn()
    job = queue_compliance_export(
        backend.jobs, backend.compliance, caller, name, version=body.version, fmt=body.format
    )
    return job_out(job)
