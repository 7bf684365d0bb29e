"""A version's page: each gate's result with its evidence, approvals with their comments, the
signature, environment and lineage, and a download link; read through the services the API
uses (`Governance.status` is what ``GET .../gates`` answers)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse

from keel.errors import InvalidInput, NotFound
from keel.services.backend import Backend
from keel.web.model_page import parse_version
from keel.web.problem import problem_page
from keel.web.rendering import NO_STORE, templates
from keel.web.session import Reader, get_backend

router = APIRouter(include_in_schema=False)

_SCALARS = (str, int, float, bool, type(None))


def evidence_tables(
    evidence: Mapping[str, Any], title: str = "", depth: int = 0
) -> Iterator[tuple[str, list[str], list[list[Any]]]]:
    """The tables inside a gate's evidence: each list of records (checks, fairness groups, scan
    findings) and each mapping of numbers (metrics), titled by where they sit.

    >>> [t for t, _, _ in evidence_tables({"metrics": {"auc": 0.9}, "checks": [{"check": "a"}]})]
    ['metrics', 'checks']
    """
    for key, value in evidence.items():
        where = f"{title} / {key}" if title else str(key)
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            columns = list(dict.fromkeys(k for v in value for k in v))
            yield where, columns, [[_cell(v.get(c)) for c in columns] for v in value]
        elif isinstance(value, Mapping) and value:
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
                yield where, ["name", "value"], [[k, v] for k, v in value.items()]
            elif depth < 2:
                yield from evidence_tables(value, where, depth + 1)


def _cell(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    return json.dumps(value, default=str)


@router.get("/models/{name}/versions/{version}", response_class=HTMLResponse)
def version_page(
    request: Request,
    name: str,
    version: str,
    principal: Reader,
    backend: Annotated[Backend, Depends(get_backend)],
) -> HTMLResponse:
    try:
        found = backend.registry.get_version(name, parse_version(version))
        owner = backend.registry.get_model(name)
        status = backend.governance.status(owner.name, found.version)
    except (InvalidInput, NotFound) as error:
        return problem_page(request, principal.name, error)
    gates = [
        {
            "state": g,
            "tables": list(evidence_tables(g.result.evidence)) if g.result else [],
            "raw": json.dumps(g.result.evidence, indent=2, default=str) if g.result else "",
        }
        for g in status.gates
    ]
    context = {
        "principal": principal.name,
        "model": owner,
        "version": found,
        "status": status,
        "gates": gates,
    }
    response: HTMLResponse = templates.TemplateResponse(
        request, "version.html", context, headers=NO_STORE
    )
    return response


@router.get("/models/{name}/versions/{version}/artifact")
def version_artifact(
    request: Request,
    name: str,
    version: str,
    principal: Reader,
    backend: Annotated[Backend, Depends(get_backend)],
) -> Response:
    """The artifact, verified against its SHA-256 before the first byte (as the API's artifact
    route does), for a signed-in browser: a link cannot send the API's bearer token."""
    try:
        found, stream = backend.registry.open_artifact(name, parse_version(version))
    except (InvalidInput, NotFound) as error:
        return problem_page(request, principal.name, error)

    def chunks() -> Iterator[bytes]:
        with stream:
            yield from iter(lambda: stream.read(1 << 20), b"")

    filename = found.artifact.filename.replace('"', "")
    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={
            **NO_STORE,
            "Content-Length": str(found.artifact.size),
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Keel-Artifact-Sha256": found.artifact.sha256,
        },
    )
