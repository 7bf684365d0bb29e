"""What this process's telemetry ingest acknowledged and failed to store, for ``/metrics``.

These are process-local counters, as Prometheus expects counters to be: each API replica counts
what it served, a restart starts again at 0 (``rate()`` handles the reset), and ``sum()`` over
replicas is the fleet's total. Labels stay bounded: one series per (model, version) that this
process ingested for, and per model for write failures.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class IngestTotals:
    """A consistent copy of the counters at one moment."""

    rows: dict[tuple[str, str, str], int]  # (model, version or "", kind) -> rows acknowledged
    errors: dict[tuple[str, str], int]  # (model, version) -> prediction rows carrying an error
    write_failures: dict[tuple[str, str], int]  # (model, kind) -> batches that failed to store


class IngestCounters:
    """Thread-safe counters: ingest runs in the API's worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: Counter[tuple[str, str, str]] = Counter()
        self._errors: Counter[tuple[str, str]] = Counter()
        self._write_failures: Counter[tuple[str, str]] = Counter()

    def acknowledged(
        self, model: str, version: int | None, kind: str, rows: int, errors: int = 0
    ) -> None:
        label = "" if version is None else str(version)
        with self._lock:
            self._rows[(model, label, kind)] += rows
            if kind == "predictions":
                self._errors[(model, label)] += errors

    def write_failed(self, model: str, kind: str) -> None:
        with self._lock:
            self._write_failures[(model, kind)] += 1

    def totals(self) -> IngestTotals:
        with self._lock:
            return IngestTotals(dict(self._rows), dict(self._errors), dict(self._write_failures))
