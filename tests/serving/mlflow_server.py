"""A real `mlflow models serve --env-manager local` on a free loopback port (from the dev
environment), for the tests and the benchmark that compare Keel's gateway with it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

MLFLOW = Path(sys.executable).parent / "mlflow"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def save_mlflow_model(model: object, example: object, path: Path) -> Path:
    """``model`` as an MLflow sklearn model directory (with a signature inferred from
    ``example``); the model file in it (MLflow 3 writes skops) is what Keel registers, so both
    serve the same bytes."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(example, model.predict(example))  # type: ignore[attr-defined]
    # Requirements given, so MLflow does not spend a minute inferring them from the environment.
    mlflow.sklearn.save_model(
        model, str(path), signature=signature, pip_requirements=["scikit-learn"]
    )
    (found,) = [p for p in path.iterdir() if p.stem == "model" and p.suffix in (".skops", ".pkl")]
    return found


@contextmanager
def mlflow_serve(model_dir: Path, *, workers: int = 1, timeout_s: float = 300) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"file://{model_dir.parent / 'mlruns'}",
        # MLflow execs `uvicorn` by name: the dev environment's own.
        "PATH": f"{MLFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = subprocess.Popen(
        [
            str(MLFLOW),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(workers),
            "--env-manager",
            "local",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert process.poll() is None, "mlflow models serve exited"
            try:
                if httpx.get(f"{url}/ping", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not start"
            time.sleep(0.2)
        yield url
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
