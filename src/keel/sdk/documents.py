"""Compliance documents (model card and EU AI Act Annex IV technical documentation)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from keel.errors import InvalidInput, TransportError
from keel.schemas.documents import DocumentExportIn
from keel.schemas.jobs import JobOut
from keel.sdk.jobs import raise_if_unsuccessful, wait_for

M = TypeVar("M", bound=BaseModel)

DocumentFormat = Literal["md", "html", "json"]
FORMATS: tuple[str, ...] = ("md", "html", "json")
_API = "/api/v1"


class DocumentsMixin:
    """Compliance document export; mixed into `keel.sdk.Client`."""

    if TYPE_CHECKING:
        url: str

        def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...

        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

        def _parse(self, model: type[M], data: Any) -> M: ...

    def start_document_export(
        self,
        model: str,
        *,
        version: int | None = None,
        format: DocumentFormat | str = "html",
    ) -> JobOut:
        """Queue an export of ``model``'s technical documentation; returns the job at once
        (its result holds the document)."""
        if format not in FORMATS:
            raise InvalidInput(
                f"format must be one of {', '.join(FORMATS)}; got {format!r}. "
                "(PDF: open the HTML in a browser and print it.)",
                {"field": "format"},
            )
        body = DocumentExportIn(version=version, format=str(format)).model_dump(mode="json")
        answer = self._json(
            "POST", f"{_API}/models/{quote(model, safe='')}/documents/exports", json=body
        )
        return self._parse(JobOut, answer)

    def export_document(
        self,
        model: str,
        *,
        version: int | None = None,
        format: DocumentFormat | str = "html",
        path: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        on_progress: Callable[[JobOut], None] | None = None,
    ) -> str:
        """The technical documentation of ``model`` as Markdown, self-contained HTML or JSON,
        built in a job (queued, then waited for).

        ``version`` defaults to the production version, else the newest. Fields the model's risk
        tier requires but Keel has no record of are listed first, under "Gaps". With ``path``
        the document is also written there (UTF-8).
        """
        job = self.start_document_export(model, version=version, format=format)
        done = raise_if_unsuccessful(
            wait_for(self, job.id, timeout=timeout, on_progress=on_progress)
        )
        text = (done.result or {}).get("document")
        if not isinstance(text, str):
            raise TransportError(f"Job {job.id} finished without a document.")
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def technical_documentation(self, model: str, *, version: int | None = None) -> dict[str, Any]:
        """The structured document (the JSON export) as a dict: ``gaps`` first, then sections."""
        text = self.export_document(model, version=version, format="json")
        try:
            data = json.loads(text)
        except ValueError:
            raise TransportError("The server answered the JSON document with non-JSON.") from None
        if not isinstance(data, dict):
            raise TransportError(f"The server answered the JSON document with {data!r}.")
        return data
