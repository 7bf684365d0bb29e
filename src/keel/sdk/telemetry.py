"""Logging predictions from serving code: a call only enqueues; a background thread sends.

`PredictionLogger.log` stamps ids and times and appends to an in-memory buffer; it never touches
the network, so a single-row call costs microseconds. A daemon thread turns the buffer into Arrow
IPC batches (one per model version, up to ``batch_rows`` rows) and uploads them, retrying a failed
upload with the same batch id, which the server stores once. `flush` waits for everything logged
so far; the client flushes at exit too.

Memory is bounded by ``max_pending_rows``. When the buffer is full, ``on_full="drop"`` (default)
drops the new rows at once and counts them in ``stats().dropped_rows``: serving must never wait
for monitoring. ``on_full="block"`` waits up to ``block_timeout_s`` for room, then drops.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from keel.errors import InvalidInput, KeelError, TransportError
from keel.schemas.telemetry import IngestReceiptOut, ReferenceOut, RetentionOut

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("keel.sdk.telemetry")
M = TypeVar("M", bound=BaseModel)

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"

SendBatch = Callable[[str, int, bytes, str], None]
"""``send(model, version, arrow_ipc_bytes, batch_id)``: upload one batch, raise on failure."""


@dataclass(frozen=True)
class LoggerStats:
    pending_rows: int
    sent_rows: int
    dropped_rows: int  # buffer full
    failed_rows: int  # refused by the server (e.g. a column the signature lacks)
    last_error: str | None


@dataclass
class _Entry:
    model: str
    version: int
    rows: int
    features: Any  # list of dicts, or a DataFrame / Arrow table
    columns: dict[str, list[Any]]  # prediction_id, ts, prediction, score, latency_ms, error


def _as_list(value: Any, rows: int, name: str) -> list[Any]:
    if value is None:
        return [None] * rows
    if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
        values = [value]
    else:
        values = value.tolist() if hasattr(value, "tolist") else list(value)
    if len(values) != rows:
        raise InvalidInput(
            f"{name} has {len(values)} value(s) but features has {rows} row(s); give one per row.",
            {"field": name},
        )
    return values


def _one(value: Any) -> Any:
    """A single row's value, given bare or as a one-element list."""
    if type(value) is list or type(value) is tuple:
        if len(value) != 1:
            raise InvalidInput(
                f"One row of features takes one value per argument; got {len(value)}.",
                {"field": "predictions"},
            )
        return value[0]
    return value


def _timestamps(values: list[Any]) -> pa.Array:
    """Epoch seconds (what the logger records) or datetimes (what a caller may give) as UTC
    microsecond timestamps; naive datetimes are taken as UTC."""
    import numpy as np
    import pyarrow as pa

    kind = pa.timestamp("us", tz="UTC")
    if all(type(v) is float for v in values):
        micros = (np.asarray(values, dtype=np.float64) * 1e6).astype(np.int64)
        return pa.array(micros, pa.int64()).cast(kind)
    return pa.array(
        [datetime.fromtimestamp(v, UTC) if isinstance(v, float | int) else v for v in values],
        kind,
    )


def _rows_of(features: Any) -> tuple[Any, int]:
    if isinstance(features, Mapping):
        return [features], 1
    if isinstance(features, list | tuple):
        return list(features), len(features)
    if hasattr(features, "num_rows"):  # Arrow table
        return features, int(features.num_rows)
    if hasattr(features, "columns") and hasattr(features, "__len__"):  # DataFrame
        return features, len(features)
    raise InvalidInput(
        "features must be a dict (one row), a list of dicts, a pandas DataFrame or an Arrow "
        f"table; got {type(features).__name__}.",
        {"field": "features"},
    )


def arrow_table(data: Any) -> pa.Table:
    """A DataFrame, Arrow table or list of dicts as an Arrow table (DataFrame index dropped).

    A column Arrow cannot give one type (numbers mixed with text) is sent as text, so the server
    names it and the type the signature expects, instead of a raw Arrow error here.
    """
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, list):
        names = list(dict.fromkeys(key for row in data for key in row))
        return pa.table({n: _arrow_column([row.get(n) for row in data]) for n in names})
    try:
        return pa.Table.from_pandas(data, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.table({str(name): _arrow_column(data[name].tolist()) for name in data.columns})


def _arrow_column(values: list[Any]) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if _is_missing(v) else str(v) for v in values], pa.string())


def _is_missing(value: Any) -> bool:
    """None, NaN, or pandas' NA and NaT (told apart by type name: pandas is not imported here)."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def ipc_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue())


def _batch_table(entries: list[_Entry]) -> pa.Table:
    import pyarrow as pa

    dict_rows: list[Any] = []
    frames: list[pa.Table] = []
    columns: dict[str, list[Any]] = {}
    # Rows given as dicts are typed together (an int here and a float there is a float column);
    # DataFrames keep their own types.
    ordered = sorted(entries, key=lambda e: not isinstance(e.features, list))
    for entry in ordered:
        if isinstance(entry.features, list):
            dict_rows.extend(entry.features)
        else:
            frames.append(arrow_table(entry.features))
        for name, values in entry.columns.items():
            columns.setdefault(name, []).extend(values)
    parts = ([arrow_table(dict_rows)] if dict_rows else []) + frames
    features = pa.concat_tables(parts, promote_options="permissive")
    fixed = {name: values for name, values in columns.items() if any(v is not None for v in values)}
    fixed["ts"] = _timestamps(columns["ts"])
    table = pa.table(fixed)
    for name in features.column_names:
        table = table.append_column(name, features.column(name))
    return table


class PredictionLogger:
    """A bounded buffer of predictions and the thread that uploads it."""

    def __init__(
        self,
        send: SendBatch,
        *,
        batch_rows: int = 10_000,
        max_pending_rows: int = 1_000_000,
        flush_interval_s: float = 1.0,
        on_full: Literal["drop", "block"] = "drop",
        block_timeout_s: float = 0.1,
        retries: int = 5,
    ) -> None:
        if on_full not in ("drop", "block"):
            raise InvalidInput("on_full must be 'drop' or 'block'.", {"field": "on_full"})
        self._send = send
        self.batch_rows = batch_rows
        self.max_pending_rows = max_pending_rows
        self.flush_interval_s = flush_interval_s
        self.on_full = on_full
        self.block_timeout_s = block_timeout_s
        self.retries = retries
        self._queue: deque[_Entry] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._in_flight = 0
        self._sent = 0
        self._dropped = 0
        self._failed = 0
        self._last_error: str | None = None
        self._closed = False
        self._flush_requested = False
        self._prefix = uuid.uuid4().hex[:20]
        self._counter = itertools.count()
        # Imported now, not by the thread at exit: a module imported during interpreter shutdown
        # cannot register its exit hooks, and Arrow's pandas shim imports one that does.
        import concurrent.futures.thread  # noqa: F401

        import pyarrow.ipc  # noqa: F401

        self._thread = threading.Thread(target=self._run, name="keel-telemetry", daemon=True)
        self._thread.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    def __repr__(self) -> str:
        return f"PredictionLogger(pending_rows={self._pending}, on_full={self.on_full!r})"

    # -- the hot path --------------------------------------------------------------------------

    def log(
        self,
        model: str,
        version: int,
        features: Any,
        predictions: Any,
        *,
        scores: Any = None,
        ids: Any = None,
        timestamps: Any = None,
        latencies_ms: Any = None,
        errors: Any = None,
    ) -> list[str]:
        """Enqueue rows; return their prediction ids (generated when not given)."""
        if type(features) is dict:
            # One row, the serving hot path: no list building beyond one element per column,
            # and the time as epoch seconds (turned into timestamps on the sending thread).
            rows = 1
            given = [f"{self._prefix}{next(self._counter):012d}" if ids is None else _one(ids)]
            entry = _Entry(
                model,
                int(version),
                1,
                [features],
                {
                    "prediction_id": given,
                    "ts": [time.time() if timestamps is None else _one(timestamps)],
                    "prediction": [_one(predictions)],
                    "score": [_one(scores)],
                    "latency_ms": [_one(latencies_ms)],
                    "error": [_one(errors)],
                },
            )
        else:
            entry, given = self._entry(
                model, version, features, predictions, scores, ids, timestamps, latencies_ms, errors
            )
            rows = entry.rows
        with self._lock:
            if self._pending + rows > self.max_pending_rows and not self._make_room(rows):
                self._dropped += rows
                return given
            self._queue.append(entry)
            self._pending += rows
            if self._pending >= self.batch_rows:
                self._wake.notify()
        return given

    def _entry(
        self,
        model: str,
        version: int,
        features: Any,
        predictions: Any,
        scores: Any,
        ids: Any,
        timestamps: Any,
        latencies_ms: Any,
        errors: Any,
    ) -> tuple[_Entry, list[str]]:
        rows_data, rows = _rows_of(features)
        if ids is None:
            given = [f"{self._prefix}{next(self._counter):012d}" for _ in range(rows)]
        else:
            given = [str(i) for i in _as_list(ids, rows, "ids")]
        stamps = [time.time()] * rows if timestamps is None else _as_list(timestamps, rows, "ts")
        columns = {
            "prediction_id": given,
            "ts": stamps,
            "prediction": _as_list(predictions, rows, "predictions"),
            "score": _as_list(scores, rows, "scores"),
            "latency_ms": _as_list(latencies_ms, rows, "latencies_ms"),
            "error": _as_list(errors, rows, "errors"),
        }
        return _Entry(model, int(version), rows, rows_data, columns), given

    def _make_room(self, rows: int) -> bool:
        """With the lock held: wait for room when blocking is allowed; True once there is."""
        if self.on_full == "drop" or self._closed:
            return False
        deadline = time.monotonic() + self.block_timeout_s
        while self._pending + rows > self.max_pending_rows:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._wake.notify()
            self._room.wait(left)
        return True

    # -- control -------------------------------------------------------------------------------

    def stats(self) -> LoggerStats:
        with self._lock:
            return LoggerStats(
                self._pending, self._sent, self._dropped, self._failed, self._last_error
            )

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Send everything logged so far; True when it all left before ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flush_requested = True
            self._wake.notify()
            while self._pending or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if not self._thread.is_alive():
                    return False
                self._idle.wait(left if left is None else min(left, 1.0))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Flush, then stop the thread (idempotent; runs at interpreter exit)."""
        if self._closed:
            return
        self.flush(timeout)
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout)

    # -- the sending thread --------------------------------------------------------------------

    def _take(self) -> list[_Entry] | None:
        with self._lock:
            while not self._queue:
                if self._closed:
                    return None
                self._flush_requested = False
                self._idle.notify_all()
                self._wake.wait(self.flush_interval_s)
            if self._pending < self.batch_rows and not (self._flush_requested or self._closed):
                self._wake.wait(self.flush_interval_s)  # let a batch build up
            taken: list[_Entry] = []
            rows = 0
            while self._queue and rows < self.batch_rows:
                entry = self._queue.popleft()
                taken.append(entry)
                rows += entry.rows
            self._pending -= rows
            self._in_flight += rows
            self._room.notify_all()
            return taken

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            groups: dict[tuple[str, int], list[_Entry]] = {}
            for entry in taken:
                groups.setdefault((entry.model, entry.version), []).append(entry)
            for (model, version), entries in groups.items():
                rows = sum(e.rows for e in entries)
                ok = self._deliver(model, version, entries)
                with self._lock:
                    self._in_flight -= rows
                    if ok:
                        self._sent += rows
                    else:
                        self._failed += rows
            with self._lock:
                self._idle.notify_all()

    def _deliver(self, model: str, version: int, entries: list[_Entry]) -> bool:
        batch_id = uuid.uuid4().hex
        try:
            body = ipc_bytes(_batch_table(entries))
        except Exception as exc:  # a value Arrow cannot type: the rows cannot be sent
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.warning("keel: dropped %s prediction rows: %s", model, self._last_error)
            return False
        for attempt in range(self.retries + 1):
            try:
                self._send(model, version, body, batch_id)
                return True
            except TransportError as exc:
                self._last_error = exc.message
                if attempt == self.retries or (self._closed and attempt >= 1):
                    break
                time.sleep(min(0.2 * 2**attempt, 5.0))  # back off before retrying the same id
            except KeelError as exc:  # refused: sending it again would not help
                self._last_error = exc.message
                log.warning("keel: the server refused %s predictions: %s", model, exc.message)
                return False
        log.warning("keel: could not deliver %s predictions: %s", model, self._last_error)
        return False


def _close_at_exit(ref: weakref.ref[PredictionLogger]) -> None:
    logger = ref()
    if logger is not None:
        logger.close()


def default_logger_options() -> dict[str, Any]:
    """Buffer settings from the environment (``KEEL_TELEMETRY_BATCH_ROWS``,
    ``KEEL_TELEMETRY_MAX_PENDING_ROWS``), for deployments that tune them without code."""
    options: dict[str, Any] = {}
    for key, env in (
        ("batch_rows", "KEEL_TELEMETRY_BATCH_ROWS"),
        ("max_pending_rows", "KEEL_TELEMETRY_MAX_PENDING_ROWS"),
    ):
        raw = os.environ.get(env)
        if raw and raw.isdigit() and int(raw) > 0:
            options[key] = int(raw)
    return options


def labels_table(ids: Sequence[Any], labels: Sequence[Any], timestamps: Any = None) -> pa.Table:
    import pyarrow as pa

    ids_list = [str(i) for i in _as_list(ids, len(ids), "ids")]
    columns: dict[str, Any] = {
        "prediction_id": pa.array(ids_list, pa.string()),
        "label": pa.array(_as_list(labels, len(ids_list), "labels")),
    }
    if timestamps is not None:
        stamps = _as_list(timestamps, len(ids_list), "timestamps")
        columns["ts"] = pa.array(stamps, pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


# -- the client's methods ----------------------------------------------------------------------


class _Http(Protocol):
    url: str

    def _send(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _parse(self, model: type[M], data: Any) -> M: ...


def _model_path(name: str) -> str:
    return f"/api/v1/models/{quote(name, safe='')}"


class TelemetryCalls:
    """Prediction logging, labels and reference profiles: methods of `keel.sdk.Client`.

    ::

        ids = keel.log_predictions("churn", 3, features=row, predictions=[1], scores=[0.83])
        keel.log_labels("churn", ids=ids, labels=[0])        # when the truth is known
        keel.flush()                                          # also done at exit
    """

    _prediction_logger: PredictionLogger | None = None
    telemetry_options: dict[str, Any] | None = None

    def _logger(self: _Http) -> PredictionLogger:
        found: PredictionLogger | None = getattr(self, "_prediction_logger", None)
        if found is None:
            send = functools.partial(_upload_batch, self)
            options = {
                **default_logger_options(),
                **(getattr(self, "telemetry_options", None) or {}),
            }
            found = PredictionLogger(send, **options)
            self._prediction_logger = found  # type: ignore[attr-defined]
        return found

    def log_predictions(
        self,
        model: str,
        version: int,
        features: Any,
        predictions: Any,
        *,
        scores: Any = None,
        ids: Any = None,
        timestamps: Any = None,
        latencies_ms: Any = None,
        errors: Any = None,
    ) -> list[str]:
        """Queue predictions of ``model``/``version`` for upload; return their ids.

        ``features`` is one row (a dict), a list of dicts, a DataFrame or an Arrow table;
        ``predictions`` (and optional ``scores``, ``ids``, ``timestamps``, ``latencies_ms``,
        ``errors``) give one value per row, or a single value for one row. The call never waits
        for the network (see `PredictionLogger` for the bounded buffer); the ids are what
        `log_labels` joins on later.
        """
        return TelemetryCalls._logger(self).log(  # type: ignore[arg-type]
            model,
            version,
            features,
            predictions,
            scores=scores,
            ids=ids,
            timestamps=timestamps,
            latencies_ms=latencies_ms,
            errors=errors,
        )

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Send every logged prediction now; True when all left within ``timeout`` seconds."""
        logger = self._prediction_logger
        return True if logger is None else logger.flush(timeout)

    def telemetry_stats(self) -> LoggerStats:
        """Rows waiting, sent, dropped (buffer full) and refused by the server."""
        logger = self._prediction_logger
        return LoggerStats(0, 0, 0, 0, None) if logger is None else logger.stats()

    def _close_telemetry(self) -> None:
        if self._prediction_logger is not None:
            self._prediction_logger.close()

    def upload_predictions(
        self: _Http, model: str, version: int, data: Any, *, batch_id: str | None = None
    ) -> IngestReceiptOut:
        """Send a table of predictions now, in one request (the CLI's import uses this)."""
        path = f"{_model_path(model)}/versions/{int(version)}/predictions/upload"
        return _post_table(self, path, ipc_bytes(arrow_table(data)), batch_id)

    def log_labels(
        self: _Http,
        model: str,
        *,
        ids: Sequence[Any],
        labels: Sequence[Any],
        timestamps: Any = None,
    ) -> IngestReceiptOut:
        """Record ground truth for earlier predictions (joined on their ids); sent at once."""
        body = ipc_bytes(labels_table(ids, labels, timestamps))
        return _post_table(self, f"{_model_path(model)}/labels/upload", body, None)

    def upload_labels(
        self: _Http, model: str, data: Any, *, batch_id: str | None = None
    ) -> IngestReceiptOut:
        """Send a table of labels now, in one request: columns ``prediction_id``, ``label`` and
        optionally ``ts`` (the CLI's ``keel telemetry labels`` uses this)."""
        path = f"{_model_path(model)}/labels/upload"
        return _post_table(self, path, ipc_bytes(arrow_table(data)), batch_id)

    def set_reference(
        self: _Http,
        model: str,
        version: int,
        data: Any,
        *,
        bins: int = 20,
        top_k: int = 50,
        source: str = "",
    ) -> ReferenceOut:
        """Profile ``data`` (a DataFrame, Arrow table or list of dicts, typically the training
        data) on the server as the version's reference for drift."""
        params: dict[str, Any] = {"bins": bins, "top_k": top_k}
        if source:
            params["source"] = source
        response = self._send(
            "PUT",
            f"{_model_path(model)}/versions/{int(version)}/reference",
            content=parquet_bytes(arrow_table(data)),
            headers={"Content-Type": PARQUET},
            params=params,
        )
        return self._parse(ReferenceOut, response.json())

    def get_reference(self: _Http, model: str, version: int) -> ReferenceOut:
        data = self._json("GET", f"{_model_path(model)}/versions/{int(version)}/reference")
        return self._parse(ReferenceOut, data)

    def set_telemetry_retention(self: _Http, model: str, days: int) -> RetentionOut:
        """Keep ``days`` of raw predictions and labels; older ones are deleted."""
        data = self._json(
            "PUT", f"{_model_path(model)}/telemetry-retention", json={"days": int(days)}
        )
        return self._parse(RetentionOut, data)


def _post_table(http: _Http, path: str, body: bytes, batch_id: str | None) -> IngestReceiptOut:
    """POST an Arrow IPC stream to a bulk ingest route; its receipt."""
    response = http._send(
        "POST",
        path,
        content=body,
        headers={"Content-Type": ARROW_STREAM},
        params={"batch_id": batch_id} if batch_id else {},
    )
    return http._parse(IngestReceiptOut, response.json())


def _upload_batch(http: _Http, model: str, version: int, body: bytes, batch_id: str) -> None:
    http._send(
        "POST",
        f"{_model_path(model)}/versions/{int(version)}/predictions/upload",
        content=body,
        headers={"Content-Type": ARROW_STREAM},
        params={"batch_id": batch_id},
    )
