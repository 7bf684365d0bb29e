"""A model that raises, hangs, leaks or segfaults fails only its own requests, and its worker
comes back. The models are pickles of classes in a module written to a temporary directory,
which the sandbox binds read-only and puts on PYTHONPATH (the scanner would refuse them, so
they are handed to `ModelWorker` directly)."""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pyarrow as pa
import pytest

from keel.services.model_workers import ModelUnavailable, ModelWorker, Outcome, WorkerSpec

MODELS = """
import ctypes, os, time

class Doubler:
    def predict(self, frame):
        if (frame["x"] < 0).any():
            raise ValueError("negative x")
        if (frame["x"] == 13).any():
            time.sleep(3600)
        if (frame["x"] == 66).any():
            ctypes.string_at(0)  # a segfault
        if (frame["x"] == 99).any():
            hoard = []
            while True:
                hoard.append(bytearray(64 << 20))  # a leak, until the memory limit
        return frame["x"].to_numpy() * 2
"""


def _copy(source: Path, target: Path) -> None:
    target.write_bytes(source.read_bytes())


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelWorker]:
    where = tmp_path_factory.mktemp("models")
    (where / "misbehaving.py").write_text(MODELS)
    sys.path.insert(0, str(where))
    try:
        module = importlib.import_module("misbehaving")
        artifact = where / "model.pkl"
        artifact.write_bytes(pickle.dumps(module.Doubler()))
    finally:
        sys.path.remove(str(where))
    spec = WorkerSpec(
        "doubler", 1, "pickle", hashlib.sha256(artifact.read_bytes()).hexdigest(), ("x",)
    )
    src = Path(__file__).resolve().parents[2] / "src"
    made = ModelWorker(
        spec,
        lambda target: _copy(artifact, target),
        timeout_s=5.0,
        memory_mb=1024,
        readonly=(where,),
        env={"PYTHONPATH": f"{src}:{where}"},
    )
    made.start()
    yield made
    made.close()


def _ask(worker: ModelWorker, *xs: float) -> Future[Outcome]:
    return worker.submit(pa.table({"x": pa.array(xs, pa.float64())}))


def _fails(worker: ModelWorker, *xs: float) -> ModelUnavailable:
    with pytest.raises(ModelUnavailable) as raised:
        _ask(worker, *xs).result(timeout=120)
    return raised.value


def test_it_answers(worker: ModelWorker) -> None:
    assert _ask(worker, 1.0, 2.5).result(timeout=60).predictions == [2.0, 5.0]


def test_a_model_that_raises_fails_only_that_request(worker: ModelWorker) -> None:
    bad, good = _ask(worker, -1.0), _ask(worker, 3.0)
    assert bad.result(timeout=60).error == "ValueError: negative x"
    assert good.result(timeout=60).predictions == [6.0]


def _comes_back(worker: ModelWorker, old_pid: int) -> None:
    deadline = time.monotonic() + 120
    while not (worker.ready and worker.pid != old_pid):
        assert time.monotonic() < deadline, "the worker did not come back"
        time.sleep(0.05)
    assert _ask(worker, 4.0).result(timeout=60).predictions == [8.0]


def test_a_model_that_hangs_is_killed_after_the_timeout(worker: ModelWorker) -> None:
    pid, restarts = worker.pid, worker.restarts
    error = _fails(worker, 13.0)
    assert error.details["cause"] == "timeout"
    assert "5 s" in error.message
    _comes_back(worker, pid)
    assert worker.restarts == restarts + 1


def test_a_model_that_segfaults_is_restarted(worker: ModelWorker) -> None:
    pid = worker.pid
    error = _fails(worker, 66.0)
    assert error.details["cause"] == "crashed"
    assert "SIGSEGV" in error.message
    _comes_back(worker, pid)


def test_a_model_that_leaks_hits_its_memory_limit_and_is_restarted(worker: ModelWorker) -> None:
    pid = worker.pid
    error = _fails(worker, 99.0)
    assert error.details["cause"] in ("memory", "crashed")
    _comes_back(worker, pid)


def test_a_killed_worker_fails_its_batch_and_comes_back(worker: ModelWorker) -> None:
    pid = worker.pid
    os.kill(pid, signal.SIGKILL)
    # The request that meets the dead worker fails (or waits for the new one): never hangs.
    try:
        _ask(worker, 1.0).result(timeout=120)
    except ModelUnavailable as exc:
        assert exc.details["cause"] == "crashed"
    _comes_back(worker, pid)


def test_a_worker_killed_while_idle_comes_back_before_any_request_finds_it(
    worker: ModelWorker,
) -> None:
    pid = worker.pid
    os.kill(pid, signal.SIGKILL)
    _comes_back(worker, pid)  # no request is sent until it is back
