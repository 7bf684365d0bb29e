"""Every prediction the gateway answers goes to telemetry, off the response path.

`PredictionLog.record` only appends the request's rows to an in-memory buffer; a background
thread writes what has gathered at least once a second (or sooner, past `FLUSH_ROWS`), one batch
per (model, version), through the same validated, durable path as the SDK
(`keel.services.telemetry.Telemetry.log_predictions`). Memory is bounded by `max_rows`.

A row that cannot be written is never dropped silently: it is counted
(``keel_prediction_log_failures_total``, by model and reason), logged, and reported to
``on_failure`` (the gateway opens an incident there). A batch that fails for a passing reason
(the database busy, a full disk) is kept and tried again up to `MAX_ATTEMPTS` times; a batch the
telemetry service refuses as invalid is not retried.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from keel.errors import InvalidInput

log = logging.getLogger("keel.serving.log")

FLUSH_S = 1.0
FLUSH_ROWS = 50_000
MAX_ROWS = 500_000
MAX_ATTEMPTS = 3

# (model, version, table) -> None; raises when the rows could not be stored.
Writer = Callable[[str, int, pa.Table], None]
# (model, version, rows lost, reason): "overflow" (the buffer was full), "invalid" (telemetry
# refused the rows) or "write_error" (storing them failed MAX_ATTEMPTS times).
FailureHook = Callable[[str, int, int, str], None]


@dataclass
class _Batch:
    model: str
    version: int
    tables: list[pa.Table]
    attempts: int = 0

    @property
    def rows(self) -> int:
        return sum(t.num_rows for t in self.tables)


class PredictionLog:
    """A bounded buffer of prediction rows and the thread that writes it to telemetry."""

    def __init__(
        self,
        write: Writer,
        on_failure: FailureHook,
        *,
        flush_s: float = FLUSH_S,
        max_rows: int = MAX_ROWS,
    ) -> None:
        self._write = write
        self._on_failure = on_failure
        self.flush_s = flush_s
        self.max_rows = max_rows
        self._pending: dict[tuple[str, int], list[pa.Table]] = {}
        self._retry: list[_Batch] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="keel-prediction-log", daemon=True)
        self._thread.start()

    def record(self, model: str, version: int, rows: pa.Table) -> None:
        """Queue ``rows`` (already in the stored layout) for writing; never blocks on I/O."""
        with self._lock:
            if self._rows + rows.num_rows > self.max_rows:
                overflow = True
            else:
                overflow = False
                self._pending.setdefault((model, version), []).append(rows)
                self._rows += rows.num_rows
                self._idle.clear()
                if self._rows >= FLUSH_ROWS:
                    self._wake.notify()
        if overflow:
            self._failed(model, version, rows.num_rows, "overflow")

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Write everything queued now; True when the buffer emptied within ``timeout_s``."""
        with self._lock:
            self._wake.notify()
        return self._idle.wait(timeout_s)

    def close(self) -> None:
        """Write what is queued (one last try) and stop the thread."""
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=60)

    @property
    def queued_rows(self) -> int:
        return self._rows

    def _failed(self, model: str, version: int, rows: int, reason: str) -> None:
        log.error("%d prediction rows of %s v%s were not logged (%s)", rows, model, version, reason)
        try:
            self._on_failure(model, version, rows, reason)
        except Exception:  # the hook alerts; its own failure must not stop the log thread
            log.exception("reporting a prediction-log failure failed")

    def _take(self) -> list[_Batch]:
        with self._lock:
            pending, self._pending = self._pending, {}
            retry, self._retry = self._retry, []
        batches = [_Batch(m, v, tables) for (m, v), tables in pending.items()]
        return retry + batches

    def _write_batch(self, batch: _Batch, last_chance: bool) -> None:
        batch.attempts += 1
        try:
            table = pa.concat_tables(batch.tables, promote_options="default")
            self._write(batch.model, batch.version, table)
        except InvalidInput as exc:
            log.error("telemetry refused prediction rows of %s: %s", batch.model, exc.message)
            self._failed(batch.model, batch.version, batch.rows, "invalid")
        except Exception as exc:
            if batch.attempts >= MAX_ATTEMPTS or last_chance:
                log.error("storing prediction rows of %s failed: %s", batch.model, exc)
                self._failed(batch.model, batch.version, batch.rows, "write_error")
            else:
                log.warning(
                    "writing %d prediction rows of %s v%s failed (%s); will retry",
                    batch.rows,
                    batch.model,
                    batch.version,
                    exc,
                )
                with self._lock:
                    self._retry.append(batch)
                return
        with self._lock:
            self._rows -= batch.rows

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._stopping and self._rows < FLUSH_ROWS:
                    self._wake.wait(
                        self.flush_s
                    )  # woken early by flush(), close() or a full buffer
                stopping = self._stopping
            for batch in self._take():
                self._write_batch(batch, last_chance=stopping)
            with self._lock:
                if self._rows == 0:
                    self._idle.set()
            if stopping:
                return
