"""Model workers: each loaded model version runs in a long-lived sandboxed child process.

Model code never runs in Keel's own process. A `ModelWorker` owns one child
(`keel.services.model_worker`, started by `keel.services.sandbox.start_sandboxed`) and one
dispatcher thread. Requests queue up; the dispatcher sends every request waiting at that moment as
one batch (micro-batching: concurrent requests share one ``predict`` call) and hands each its own
rows back. What can go wrong is answered per request, and the worker heals itself:

- the model raises: that request's outcome names the exception; the worker keeps serving;
- the model hangs: after ``timeout_s`` the child is killed and the batch fails with ``timeout``;
- the model crashes or is killed (a segfault, ``kill -9``), or runs out of memory (it leaks into
  the sandbox's address-space limit): the batch fails with ``crashed`` or ``memory``;
- after a kill or a crash a fresh child is started at once; requests that arrive meanwhile wait
  for it (within their timeout), so the failures are bounded by the batch that was running;
- a child that dies while idle is noticed within `WATCH_INTERVAL_S` and replaced, and a restart
  that failed is retried, so a worker comes back without waiting for a request to find it dead.

`ModelWorkers` keeps one worker per (model, version), started on first use. It loads only a
version that may be served (`Servable`): its security gate passed (see `servable_problem`).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from keel.errors import KeelError
from keel.services.leftovers import workdir_prefix
from keel.services.model_worker import EXIT_OUT_OF_MEMORY
from keel.services.model_worker_frames import (
    _HEADER,
    ERRORS_KEY,
    MAX_FRAME_BYTES,
    PREDICTION,
    SCORE,
    SIZES_KEY,
    table_from_frame,
    table_to_frame,
)
from keel.services.sandbox import SandboxLimits, start_sandboxed, stop_sandboxed

log = logging.getLogger("keel.serving.workers")

LOAD_TIMEOUT_S = 120.0
# After a version failed to load, requests fail at once for this long before loading is retried
# (a model that cannot load must not make every request wait for another attempt).
RETRY_LOAD_AFTER_S = 5.0
# A batch never holds more rows than this (a single larger request is sent alone).
MAX_BATCH_ROWS = 10_000
# While no request waits, the dispatcher looks at its child this often: a child killed while idle
# (kill -9, the OOM killer) is replaced before the next request meets it, and a restart that
# failed is tried again every `RETRY_LOAD_AFTER_S`.
WATCH_INTERVAL_S = 0.25


class ModelUnavailable(KeelError):
    """The model could not answer this request; ``details.cause`` says why."""

    code = "model_unavailable"
    status = 503


@dataclass(frozen=True)
class WorkerSpec:
    model: str
    version: int
    flavor: str
    sha256: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """One request's answer: its predictions and scores, or the error that replaced them."""

    predictions: list[Any]
    scores: list[float | None] | None
    error: str | None = None


@dataclass
class _Pending:
    table: pa.Table
    future: Future[Outcome] = field(default_factory=Future)


class _Dead(Exception):
    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message


def _child_env() -> dict[str, str]:
    env = {var: "1" for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env["JOBLIB_MULTIPROCESSING"] = "0"
    return env


def _exit_reason(returncode: int) -> tuple[str, str]:
    if returncode == EXIT_OUT_OF_MEMORY:
        return "memory", "the model ran out of memory (its worker's limit) and was restarted"
    # bubblewrap reports a child killed by signal N as exit code 128 + N, as a shell does.
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if number:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return "crashed", f"the model's worker process died ({name}) and was restarted"
    return "crashed", f"the model's worker process exited (code {returncode}) and was restarted"


class ModelWorker:
    """One sandboxed child process serving one model version, restarted when it dies."""

    def __init__(
        self,
        spec: WorkerSpec,
        copy_artifact: Callable[[Path], None],
        *,
        timeout_s: float,
        memory_mb: int,
        on_restart: Callable[[WorkerSpec, str], None] | None = None,
        readonly: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        on_batch: Callable[[WorkerSpec, float], None] | None = None,
    ) -> None:
        """``readonly`` and ``env`` add paths and variables to the sandbox (tests bind a
        directory of misbehaving models and put it on ``PYTHONPATH``); ``on_batch`` hears the
        seconds each answered batch took in the worker (serving compute metering)."""
        self.spec = spec
        self._on_batch = on_batch
        self._readonly = tuple(readonly)
        self._env = {**_child_env(), **(env or {})}
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.restarts = 0
        self._copy_artifact = copy_artifact
        self._on_restart = on_restart
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._child: subprocess.Popen[bytes] | None = None
        self._pid = 0
        self._workdir: Path | None = None
        self._buffer = bytearray()
        self._closed = False
        self._ready = threading.Event()
        self._started = threading.Event()
        self._load_error: _Dead | None = None
        self._retry_at = 0.0  # when `_heal` may try a failed restart again (monotonic seconds)
        self._thread = threading.Thread(
            target=self._dispatch, name=f"keel-model-{spec.model}-v{spec.version}", daemon=True
        )

    # -- public -----------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The worker's process id as this host sees it (the sandbox's outer process)."""
        return self._pid

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._child is not None and self._child.poll() is None

    def start(self) -> None:
        """Load the model in a new child and wait until it is ready; raise `ModelUnavailable`
        when it cannot load.

        The child is started from the dispatcher thread, never the caller's: bubblewrap's
        ``--die-with-parent`` kills the sandbox when the *thread* that started it ends, and the
        caller may be a short-lived thread of a pool.
        """
        self._thread.start()
        self._started.wait()
        error = self._load_error
        if error is not None:
            self.close()
            raise self._unavailable(error.cause, f"it did not load: {error.message}")

    def submit(self, table: pa.Table) -> Future[Outcome]:
        """Queue one request's rows; the future holds its `Outcome` or a `ModelUnavailable`."""
        pending = _Pending(table)
        if self._closed:
            pending.future.set_exception(self._unavailable("stopped", "the worker was stopped"))
        else:
            self._queue.put(pending)
        return pending.future

    def close(self) -> None:
        """Stop the dispatcher and the child; queued requests fail with ``stopped``."""
        self._closed = True
        child = self._child
        if child is not None:
            with suppress(OSError):
                child.kill()  # a batch in flight fails now rather than after its timeout
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout_s + 5)
        self._stop_child()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    # -- the child --------------------------------------------------------------------------------

    def _spawn(self) -> None:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=workdir_prefix("serve")))
            self._copy_artifact(self._workdir / "model.bin")
            request = {
                "model_sha256": self.spec.sha256,
                "flavor": self.spec.flavor,
                "features": list(self.spec.features),
            }
            (self._workdir / "request.json").write_text(json.dumps(request))
        self._buffer.clear()
        self._ready.clear()
        try:
            child = start_sandboxed(
                [sys.executable, "-m", "keel.services.model_worker", str(self._workdir)],
                workdir=self._workdir,
                limits=SandboxLimits(wall_seconds=0, memory_mb=self.memory_mb),
                env=self._env,
                readonly=self._readonly,
            )
        except (KeelError, OSError) as exc:  # e.g. the sandbox is unavailable
            message = getattr(exc, "message", None) or str(exc)
            self._load_error = _Dead("load_failed", message)
            raise self._unavailable("load_failed", f"it did not start: {message}") from None
        self._child, self._pid = child, child.pid
        try:
            hello = json.loads(self._read_frame(time.monotonic() + LOAD_TIMEOUT_S))
        except _Dead as dead:
            self._stop_child()
            self._load_error = dead
            raise self._unavailable("load_failed", f"it did not load: {dead.message}") from None
        if not isinstance(hello, dict) or hello.get("ok") is not True:
            self._stop_child()
            why = hello.get("message", "unknown") if isinstance(hello, dict) else "bad greeting"
            self._load_error = _Dead("load_failed", str(why)[:1000])
            raise self._unavailable("load_failed", f"it did not load: {str(why)[:1000]}")
        self._load_error = None
        self._ready.set()

    def _stop_child(self) -> int | None:
        child, self._child = self._child, None
        if child is None:
            return None
        return stop_sandboxed(child)

    def _stderr_tail(self) -> str:
        if self._workdir is None:
            return ""
        with suppress(OSError):
            return (self._workdir / "stderr.log").read_bytes()[-1000:].decode(errors="replace")
        return ""

    def _died(self) -> _Dead:
        child = self._child
        returncode = child.wait(timeout=30) if child is not None else -signal.SIGKILL
        cause, message = _exit_reason(returncode)
        return _Dead(cause, message)

    def _read_frame(self, deadline: float) -> bytes:
        child = self._child
        assert child is not None and child.stdout is not None
        fd = child.stdout.fileno()
        while True:
            if len(self._buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(self._buffer)
                if size > MAX_FRAME_BYTES:
                    raise _Dead("bad_answer", f"the model's worker sent a {size}-byte answer")
                end = _HEADER.size + size
                if len(self._buffer) >= end:
                    frame = bytes(self._buffer[_HEADER.size : end])
                    del self._buffer[:end]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Dead("timeout", f"the model took longer than {self.timeout_s:g} s")
            try:
                readable, _, _ = select.select([fd], [], [], left)
                if not readable:
                    continue
                chunk = os.read(fd, 1 << 20)
            except (OSError, ValueError):  # closed under us: the worker is being stopped
                raise _Dead("stopped", "the worker was stopped") from None
            if not chunk:
                raise self._died()
            self._buffer += chunk

    def _exchange(self, table: pa.Table) -> pa.Table:
        child = self._child
        if child is None:
            raise _Dead("restarting", "the model's worker is restarting")
        assert child.stdin is not None
        frame = table_to_frame(table)
        try:
            child.stdin.write(_HEADER.pack(len(frame)) + frame)
        except (BrokenPipeError, OSError):
            raise self._died() from None
        return table_from_frame(self._read_frame(time.monotonic() + self.timeout_s))

    # -- dispatching ------------------------------------------------------------------------------

    def _unavailable(self, cause: str, message: str) -> ModelUnavailable:
        spec = self.spec
        return ModelUnavailable(
            f"{spec.model} v{spec.version} could not answer: {message}.",
            {"model": spec.model, "version": spec.version, "cause": cause},
        )

    def _take(self, first: _Pending) -> list[_Pending]:
        batch, rows = [first], first.table.num_rows
        while rows < MAX_BATCH_ROWS:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break
            batch.append(item)
            rows += item.table.num_rows
        return batch

    def _dispatch(self) -> None:
        try:
            self._spawn()
        except ModelUnavailable:
            pass  # start() reports the load error
        except Exception as exc:  # copying the artifact failed: reported the same way
            self._load_error = _Dead("load_failed", f"{type(exc).__name__}: {exc}")
        finally:
            self._started.set()
        if self._load_error is not None:
            return
        while True:
            try:
                first = self._queue.get(timeout=WATCH_INTERVAL_S)
            except queue.Empty:
                self._heal()
                continue
            if first is None:
                break
            batch = self._take(first)
            if self._child is None and not self._restart("restarting"):
                error = self._load_error or _Dead("load_failed", "it did not load")
                for item in batch:
                    item.future.set_exception(self._unavailable(error.cause, error.message))
                continue
            try:
                began = time.monotonic()
                answer = self._exchange(_combined(batch))
                if self._on_batch is not None:
                    self._on_batch(self.spec, time.monotonic() - began)
                outcomes = _split(answer, [item.table.num_rows for item in batch])
            except _Dead as dead:
                for item in batch:
                    item.future.set_exception(self._unavailable(dead.cause, dead.message))
                self._stop_child()
                self._restart(dead.cause)
                continue
            for item, outcome in zip(batch, outcomes, strict=True):
                item.future.set_result(outcome)
        while True:  # closing: whatever is still queued fails
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                return
            if left is not None:
                left.future.set_exception(self._unavailable("stopped", "the worker was stopped"))

    def _heal(self) -> None:
        """Between requests: replace a child that died while idle, or retry a failed restart."""
        if self._closed:
            return
        child = self._child
        if child is None:
            if time.monotonic() >= self._retry_at:
                self._restart("restarting")
            return
        returncode = child.poll()
        if returncode is not None:
            cause, _ = _exit_reason(returncode)
            self._stop_child()
            self._restart(cause)

    def _restart(self, cause: str) -> bool:
        if self._closed:
            return False
        self.restarts += 1
        log.warning(
            "restarting the worker of %s v%s (%s)", self.spec.model, self.spec.version, cause
        )
        if self._on_restart is not None:
            self._on_restart(self.spec, cause)
        try:
            self._spawn()
        except ModelUnavailable:
            self._retry_at = time.monotonic() + RETRY_LOAD_AFTER_S
            log.error(
                "the worker of %s v%s did not come back (tried again in %g s): %s",
                self.spec.model,
                self.spec.version,
                RETRY_LOAD_AFTER_S,
                self._stderr_tail(),
            )
            return False
        return True


def _combined(batch: Sequence[_Pending]) -> pa.Table:
    tables = [item.table for item in batch]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    sizes = json.dumps([t.num_rows for t in tables]).encode()
    return table.replace_schema_metadata({SIZES_KEY: sizes})


def _split(answer: pa.Table, sizes: list[int]) -> list[Outcome]:
    """The child's answer, cut back into one `Outcome` per request; read as untrusted data."""
    try:
        errors = json.loads((answer.schema.metadata or {}).get(ERRORS_KEY, b"null"))
    except ValueError:
        errors = None
    if (
        answer.num_rows != sum(sizes)
        or PREDICTION not in answer.column_names
        or not isinstance(errors, list)
        or len(errors) != len(sizes)
    ):
        raise _Dead("bad_answer", "the model's worker answered with the wrong number of rows")
    predictions = answer.column(PREDICTION).to_pylist()
    scores = answer.column(SCORE).to_pylist() if SCORE in answer.column_names else None
    outcomes, start = [], 0
    for rows, error in zip(sizes, errors, strict=True):
        end = start + rows
        outcomes.append(
            Outcome(
                predictions[start:end],
                None if scores is None else scores[start:end],
                None if error is None else str(error)[:1000],
            )
        )
        start = end
    return outcomes


class Servable(Protocol):
    """Where workers come from: whether a version may be loaded, and its artifact."""

    def servable_problem(self, model: str, version: int) -> str | None: ...

    def worker_spec(self, model: str, version: int) -> WorkerSpec: ...

    def copy_artifact(self, sha256: str, target: Path) -> None: ...


class ModelWorkers:
    """One `ModelWorker` per (model, version), started on first use and kept until closed."""

    def __init__(
        self,
        source: Servable,
        *,
        timeout_s: float = 10.0,
        memory_mb: int = 2048,
        on_restart: Callable[[WorkerSpec, str], None] | None = None,
        on_batch: Callable[[WorkerSpec, float], None] | None = None,
    ) -> None:
        self.source = source
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._on_restart = on_restart
        self._on_batch = on_batch
        self._workers: dict[tuple[str, int], ModelWorker] = {}
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self._failed: dict[tuple[str, int], tuple[float, ModelUnavailable]] = {}

    def loaded(self, model: str, version: int) -> ModelWorker | None:
        """The running worker of this version, without starting one."""
        return self._workers.get((model, version))

    def worker(self, model: str, version: int) -> ModelWorker:
        """The worker of this version, loading it first (blocking) when needed."""
        key = (model, version)
        found = self._workers.get(key)
        if found is not None:
            return found
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            found = self._workers.get(key)
            if found is not None:
                return found
            failed = self._failed.get(key)
            if failed is not None and time.monotonic() - failed[0] < RETRY_LOAD_AFTER_S:
                raise failed[1]
            try:
                made = self._load(model, version)
            except ModelUnavailable as exc:
                self._failed[key] = (time.monotonic(), exc)
                raise
            self._failed.pop(key, None)
            self._workers[key] = made
            return made

    def _load(self, model: str, version: int) -> ModelWorker:
        problem = self.source.servable_problem(model, version)
        if problem is not None:
            raise ModelUnavailable(
                f"{model} v{version} is not loaded: {problem}.",
                {"model": model, "version": version, "cause": "not_servable"},
            )
        spec = self.source.worker_spec(model, version)
        made = ModelWorker(
            spec,
            lambda target: self.source.copy_artifact(spec.sha256, target),
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
            on_restart=self._on_restart,
            on_batch=self._on_batch,
        )
        made.start()
        return made

    def __iter__(self) -> Iterator[ModelWorker]:
        return iter(list(self._workers.values()))

    def close(self) -> None:
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()
