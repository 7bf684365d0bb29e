"""A real `mlflow server` on a free loopback port, with its own backend store and artifact root.

`mlflow` is a dev dependency: Keel itself never imports it; these tests use it as a user would.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

MLFLOW = Path(sys.executable).parent / "mlflow"
_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@dataclass
class MlflowServer:
    url: str
    root: Path
    log: list[str]


def _wait_until_healthy(url: str, process: subprocess.Popen[str], log: list[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "mlflow server exited:\n" + "".join(log)
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling a readiness probe, with a deadline
    raise AssertionError("mlflow server not healthy within 120 s:\n" + "".join(log))


@contextlib.contextmanager
def mlflow_server(root: Path) -> Iterator[MlflowServer]:
    """``mlflow server`` on port 0 (uvicorn picks a free port and logs it); stopped after."""
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_TOKEN", None)
    process = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=root,
        env=env,
        start_new_session=True,  # its uvicorn workers share the group we stop at the end
    )
    assert process.stdout is not None
    log: list[str] = []
    url = None
    for line in process.stdout:
        log.append(line)
        found = _LISTENING.search(line)
        if found:
            url = found.group(1)
            break
    threading.Thread(target=lambda: log.extend(process.stdout or ()), daemon=True).start()
    try:
        assert url is not None, "mlflow server did not start:\n" + "".join(log)
        _wait_until_healthy(url, process, log)
        yield MlflowServer(url, root, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
