"""A real `keel up` process on a free loopback port, for tests that use Keel as a user would."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

KEEL = Path(sys.executable).parent / "keel"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    workdir: Path
    log: list[str]
    process: subprocess.Popen[str] | None = None
    pid: int = 0  # the `keel up` process, e.g. to read its memory from /proc

    @property
    def database(self) -> Path:
        return self.data_dir / "keel.db"

    def keel(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``keel ARGS...`` as a user on this machine runs it: no token given, KEEL_HOME set."""
        env = {k: v for k, v in os.environ.items() if k not in ("KEEL_TOKEN", "NO_COLOR")}
        env.update(KEEL_URL=self.url, KEEL_HOME=str(self.data_dir))
        return subprocess.run(
            [str(KEEL), *args],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.keel(*args)
        assert done.returncode == 0, f"keel {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def sqlite3(self, statement: str) -> None:
        tool = shutil.which("sqlite3")
        if tool is None:
            pytest.fail("This test needs the sqlite3 command-line tool: apt-get install sqlite3")
        subprocess.run([tool, str(self.database), statement], check=True, timeout=30)


@contextlib.contextmanager
def keel_up(tmp_path: Path, *, cwd: Path | None = None) -> Iterator[Server]:
    """A fresh `keel up` on a free loopback port, stopped after the test; run in ``cwd``
    (default ``tmp_path``), its data in ``tmp_path/data``."""
    data_dir, port, workdir = tmp_path / "data", _free_port(), cwd or tmp_path
    process = subprocess.Popen(
        [str(KEEL), "up", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=workdir,
    )
    assert process.stdout is not None
    log: list[str] = []
    # Read the server's own log until it says it is listening: no sleeping, no guessing.
    for line in process.stdout:
        log.append(line)
        if "Uvicorn running on" in line:
            break
    # Keep draining its log, so a chatty server never blocks on a full pipe.
    threading.Thread(target=lambda: log.extend(process.stdout or ()), daemon=True).start()
    try:
        assert process.poll() is None, "keel up exited:\n" + "".join(log)
        yield Server(f"http://127.0.0.1:{port}", data_dir, workdir, log, process, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
