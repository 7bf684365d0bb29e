"""Wire models for profiles computed outside the server (``keel profiles build --engine spark``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from keel.schemas.base import WireIn, WireOut
from keel.schemas.telemetry import BatchId


class ReferenceProfileIn(WireIn):
    """A ready reference profile: ``keel.stats.profile.DatasetProfile.to_dict()``."""

    profile: dict[str, Any]
    source: Annotated[str, Field(max_length=256)] = ""


class WindowProfileIn(WireIn):
    """A ready window profile on the current reference's bins, for one UTC hour."""

    hour: datetime
    profile: dict[str, Any]
    batch_id: BatchId | None = None


class WindowProfileOut(WireOut):
    model: str
    version: int
    hour: datetime
    batch_id: str
    rows: int
    replayed: bool = False
