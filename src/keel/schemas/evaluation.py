"""Wire models of evaluation data and artifact scans."""

from __future__ import annotations

from datetime import datetime

from keel.schemas.base import WireOut


class EvaluationDatasetOut(WireOut):
    model: str
    version: int
    sha256: str
    format: str
    rows: int
    columns: list[str]
    uploaded_by: str
    uploaded_at: datetime


class ScanFindingOut(WireOut):
    severity: str
    message: str


class ScanReportOut(WireOut):
    sha256: str
    scanner: str
    scanner_version: str
    safe: bool
    findings: list[ScanFindingOut]
    scanned_at: datetime
