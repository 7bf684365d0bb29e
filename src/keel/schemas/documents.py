"""The wire format of compliance document exports queued as jobs."""

from __future__ import annotations

from pydantic import Field

from keel.schemas.base import Id, WireIn


class DocumentExportIn(WireIn):
    version: Id | None = Field(
        default=None, description="The version to document (default: production, else newest)."
    )
    format: str = Field(default="html", description="md, html or json.")
