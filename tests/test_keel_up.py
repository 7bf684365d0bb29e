"""`keel up` as a user runs it: a real process, real HTTP on loopback, the embedded default."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    keel = Path(sys.executable).parent / "keel"
    data_dir, port = tmp_path / "data", _free_port()
    process = subprocess.Popen(
        [str(keel), "up", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    lines: list[str] = []
    # Read the server's own log until it says it is listening: no sleeping, no guessing.
    for line in process.stdout:
        lines.append(line)
        if "Uvicorn running on" in line or process.poll() is not None:
            break
    try:
        yield f"http://127.0.0.1:{port}", data_dir, lines
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_keel_up_answers_healthz_on_the_embedded_default(
    running: tuple[str, Path, list[str]],
) -> None:
    url, data_dir, lines = running
    assert any(f"Keel is up at {url}" in line for line in lines), "".join(lines)
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200, ready.text
    assert (data_dir / "keel.db").exists()


def test_first_keel_up_creates_an_admin_and_its_token_file(
    running: tuple[str, Path, list[str]],
) -> None:
    url, data_dir, lines = running
    token_file = data_dir / "admin-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert token.startswith("keel_")
    assert sum(token in line for line in lines) == 1  # printed once
    assert httpx.get(f"{url}/api/v1/models").status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{url}/api/v1/teams", json={"name": "risk"}, headers=auth).status_code == 201
    assert httpx.get(f"{url}/api/v1/teams", headers=auth).json()["items"][0]["name"] == "risk"
    assert httpx.get(f"{url}/api/v1/users/me", headers=auth).json()["name"] == "admin"
    assert httpx.get(f"{url}/").status_code == 303  # the dashboard sends strangers to /login
    assert "Keel" in httpx.get(f"{url}/", headers=auth).text
