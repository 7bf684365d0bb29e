"""The monthly executive report from Python (methods of `keel.sdk.Client`), e.g.::

report = keel.report("2026-11")                     # structured (ReportOut)
Path("report.html").write_text(keel.report_document("2026-11", "html"))
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel

from keel.errors import InvalidInput
from keel.schemas.report import ReportOut

M = TypeVar("M", bound=BaseModel)
_API = "/api/v1"
DOCUMENT_FORMATS = ("md", "html")


class _Http(Protocol):
    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


class ReportCalls:
    """The executive report part of `keel.sdk.Client`."""

    def report(self: _Http, month: str) -> ReportOut:
        """The executive report of ``month`` (YYYY-MM) as data."""
        data = self._json("GET", f"{_API}/report", params={"month": month, "format": "json"})
        return self._parse(ReportOut, data)

    def report_document(self: _Http, month: str, format: str = "html") -> str:
        """The report of ``month`` as Markdown (``md``) or one offline HTML page (``html``)."""
        if format not in DOCUMENT_FORMATS:
            raise InvalidInput(
                f"format must be one of {', '.join(DOCUMENT_FORMATS)} (or use report() for "
                f"data). Got {format!r}.",
                {"field": "format"},
            )
        answer = self._send("GET", f"{_API}/report", params={"month": month, "format": format})
        return answer.text
