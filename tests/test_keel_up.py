"""`keel up` as a user runs it: a real process, real HTTP on loopback, the embedded default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.running_keel import Server, keel_up


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Server]:
    with keel_up(tmp_path) as server:
        yield server


def test_keel_up_answers_healthz_on_the_embedded_default(
    running: Server,
) -> None:
    url, data_dir, lines = running.url, running.data_dir, running.log
    assert any(f"Keel is up at {url}" in line for line in lines), "".join(lines)
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200, ready.text
    assert (data_dir / "keel.db").exists()


def test_first_keel_up_creates_an_admin_and_its_token_file(
    running: Server,
) -> None:
    url, data_dir, lines = running.url, running.data_dir, running.log
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


def test_the_cli_finds_the_token_of_keel_up_with_data_dir_from_another_directory(
    running: Server, tmp_path: Path
) -> None:
    """A new user's path: `keel up --data-dir D --port P`, then `keel --url ... models list` from
    anywhere, with no KEEL_HOME and no token set."""
    import os
    import subprocess

    from tests.running_keel import KEEL

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("KEEL_HOME", "KEEL_TOKEN", "KEEL_URL")}
    done = subprocess.run(
        [str(KEEL), "--url", running.url, "whoami", "--json"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"admin"' in done.stdout
