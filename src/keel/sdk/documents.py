"""Compliance documents (model card and EU AI Act Annex IV technical documentation)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import httpx

from keel.errors import InvalidInput, TransportError

DocumentFormat = Literal["md", "html", "json"]
FORMATS: tuple[str, ...] = ("md", "html", "json")
_API = "/api/v1"


class DocumentsMixin:
    """Compliance document export; mixed into `keel.sdk.Client`."""

    if TYPE_CHECKING:

        def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...

    def export_document(
        self,
        model: str,
        *,
        version: int | None = None,
        format: DocumentFormat | str = "html",
        path: str | os.PathLike[str] | None = None,
    ) -> str:
        """The technical documentation of ``model`` as Markdown, self-contained HTML or JSON.

        ``version`` defaults to the production version, else the newest. Fields the model's risk
        tier requires but Keel has no record of are listed first, under "Gaps". With ``path``
        the document is also written there (UTF-8).
        """
        if format not in FORMATS:
            raise InvalidInput(
                f"format must be one of {', '.join(FORMATS)}; got {format!r}. "
                "(PDF: open the HTML in a browser and print it.)",
                {"field": "format"},
            )
        params: dict[str, Any] = {"format": format}
        if version is not None:
            params["version"] = int(version)
        response = self._send(
            "GET", f"{_API}/models/{quote(model, safe='')}/documents", params=params
        )
        text = response.text
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
