"""Model versions: upload with metadata, read, download the verified artifact, move status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from keel.api import convert
from keel.api.deps import Reader, RegistryDep, Writer
from keel.api.forms import Utf8FormRoute, require_utf8_fields
from keel.api.routers import API_PREFIX
from keel.domain.lifecycle import VersionStatus
from keel.errors import InvalidInput
from keel.schemas import Page, StatusChange, VersionIn, VersionOut
from keel.schemas.base import Id

router = APIRouter(
    prefix=API_PREFIX + "/models/{name}/versions", tags=["versions"], route_class=Utf8FormRoute
)


def _metadata(raw: str) -> VersionIn:
    try:
        return VersionIn.model_validate_json(raw or "{}")
    except ValidationError as exc:
        problems = [
            {
                "field": "metadata." + ".".join(str(p) for p in e["loc"])
                if e["loc"]
                else "metadata",
                "problem": e["msg"],
            }
            for e in exc.errors()
        ]
        first = problems[0]
        raise InvalidInput(
            f"Invalid '{first['field']}': {first['problem']}.", {"problems": problems}
        ) from None


def _filename(raw: str | None) -> str:
    # Keep only the last path component, whatever the client's OS: names are for people,
    # never used as paths.
    name = PureWindowsPath(PurePosixPath(raw or "").name).name
    return name[:256] or "artifact"


@router.post("", status_code=201, summary="Register a new version (multipart: artifact + metadata)")
def register_version(
    name: str,
    registry: RegistryDep,
    caller: Writer,
    _utf8: Annotated[None, Depends(require_utf8_fields)],
    artifact: Annotated[UploadFile, File(description="The model file.")],
    metadata: Annotated[str, Form(description="JSON of VersionIn.")] = "{}",
    sha256: Annotated[
        str | None,
        Form(pattern=r"^[0-9a-f]{64}$", description="The client's hash; a mismatch is refused."),
    ] = None,
) -> VersionOut:
    draft = convert.version_draft(_metadata(metadata))
    version = registry.register_version(
        caller, name, artifact.file, _filename(artifact.filename), draft, declared_sha256=sha256
    )
    return convert.version_out(version)


@router.get("", summary="List a model's versions, newest first")
def list_versions(
    name: str,
    registry: RegistryDep,
    _: Reader,
    status: VersionStatus | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[VersionOut]:
    page = registry.list_versions(name, status=status, cursor=cursor, limit=limit)
    return Page[VersionOut](
        items=[convert.version_out(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.get("/{version}", summary="Show a version")
def get_version(name: str, version: Id, registry: RegistryDep, _: Reader) -> VersionOut:
    return convert.version_out(registry.get_version(name, version))


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        yield from iter(lambda: stream.read(1 << 20), b"")


@router.get(
    "/{version}/artifact",
    summary="Download the artifact, verified against its SHA-256 before the first byte is sent",
    response_class=StreamingResponse,
)
def download_artifact(
    name: str, version: Id, registry: RegistryDep, _: Reader
) -> StreamingResponse:
    found, stream = registry.open_artifact(name, version)
    filename = found.artifact.filename.replace('"', "")
    return StreamingResponse(
        _chunks(stream),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(found.artifact.size),
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Keel-Artifact-Sha256": found.artifact.sha256,
        },
    )


@router.post("/{version}/status", summary="Move a version through its lifecycle")
def set_status(
    name: str, version: Id, body: StatusChange, registry: RegistryDep, caller: Writer
) -> VersionOut:
    changed = registry.set_status(caller, name, version, body.status, body.reason)
    return convert.version_out(changed)
