"""The one shape of every API error: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from keel.schemas.base import WireOut


class ErrorDetail(WireOut):
    code: str = Field(description="Stable, machine-readable: not_found, invalid_input, ...")
    message: str = Field(description="What is wrong and how to fix it, for a person.")
    details: dict[str, Any] = Field(description="The field(s) at fault and related values.")


class ErrorOut(WireOut):
    """Every 4xx and 5xx answer of the API."""

    error: ErrorDetail
