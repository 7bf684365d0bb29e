"""Serving compute-seconds per model version, gathered in memory and written in batches.

The gateway's model workers report how long each batch took in the worker (`add`, called once per
batch, never writing). A background thread adds what has gathered to the ``compute_usage`` table
in one transaction every ``flush_s`` seconds, sooner when ``max_keys`` (model, version, hour)
entries are waiting, and once more on `close`: no write per request, and memory bounded by the
versions served per hour.

Why not derive it from telemetry: the prediction log's ``latency_ms`` is the whole request's
time in the gateway (parsing, routing, queueing), repeated on every row of the request, and
reading it back means scanning Parquet; the worker's own batch time is what the compute cost.

A flush that fails (the database away) keeps its seconds and adds them at the next one; seconds
gathered but not yet flushed when a process is killed -9 are lost (at most ``flush_s`` of them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from keel.store.sql.compute_usage import SqlComputeUsage, UsageKey

log = logging.getLogger("keel.costs.compute")

FLUSH_S = 60.0
MAX_KEYS = 10_000
SERVING = "serving"


def _wall() -> datetime:
    return datetime.now(UTC)


class ComputeMeter:
    def __init__(
        self,
        store: SqlComputeUsage | None,
        *,
        flush_s: float = FLUSH_S,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], datetime] = _wall,
    ) -> None:
        # None: metering is off (a backend without a cost store); what gathers is dropped.
        self.store = store
        self.flush_s = flush_s
        self.max_keys = max_keys
        self._clock = clock
        self._pending: dict[UsageKey, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keel-compute-meter", daemon=True)
        self._thread.start()

    def add(self, model: str, version: int, seconds: float) -> None:
        """Note ``seconds`` of serving compute for one batch of ``model`` v``version``."""
        hour = self._clock().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        key = (SERVING, model, version, hour)
        with self._lock:
            total, batches = self._pending.get(key, (0.0, 0))
            self._pending[key] = (total + max(seconds, 0.0), batches + 1)
            full = len(self._pending) >= self.max_keys
        if full:
            self._wake.set()

    @property
    def pending(self) -> int:
        """(model, version, hour) entries waiting for the next flush."""
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write what has gathered, in one transaction; return how many entries it wrote."""
        with self._flushing:
            with self._lock:
                taken, self._pending = self._pending, {}
            if not taken or self.store is None:
                return 0
            try:
                self.store.add(taken)
            except Exception:
                log.exception("writing %d serving compute entries failed; kept", len(taken))
                with self._lock:
                    for key, (seconds, batches) in taken.items():
                        total, count = self._pending.get(key, (0.0, 0))
                        self._pending[key] = (total + seconds, count + batches)
                return 0
            return len(taken)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self.flush()
