"""Token discovery: on this machine the CLI and SDK find the first admin's token by themselves,
and never send it anywhere else."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from keel.config import ADMIN_TOKEN_FILE, Settings
from keel.errors import Unauthenticated
from keel.sdk import Client
from keel.sdk.credentials import admin_token_path, discover_token, is_loopback

LOCAL = "http://127.0.0.1:8420"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory holding an admin-token file, as the first `keel up` leaves it."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / ADMIN_TOKEN_FILE).write_text("keel_from-the-file\n")
    monkeypatch.setenv("KEEL_HOME", str(data_dir))
    monkeypatch.delenv("KEEL_TOKEN", raising=False)
    return data_dir


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8420",
        "http://127.1.2.3",
        "http://localhost:8420",
        "http://LOCALHOST.",
        "http://[::1]:8420",
        "http://[::ffff:127.0.0.1]:8420",
    ],
)
def test_loopback_urls(url: str) -> None:
    assert is_loopback(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://keel.internal:8420",
        "http://10.0.0.5:8420",
        "http://0.0.0.0:8420",
        "http://[::]:8420",
        "http://127.0.0.1.attacker.example",
        "http://localhost.attacker.example",
        "http://[::ffff:10.0.0.1]",
        "not a url",
        "http://[::1",
    ],
)
def test_other_urls_are_not_loopback(url: str) -> None:
    assert not is_loopback(url)


def test_on_this_machine_the_admin_token_file_is_used(home: Path) -> None:
    assert discover_token(LOCAL) == "keel_from-the-file"


def test_an_explicit_token_or_keel_token_wins_over_the_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert discover_token(LOCAL, "keel_explicit") == "keel_explicit"
    monkeypatch.setenv("KEEL_TOKEN", "keel_from-env")
    assert discover_token(LOCAL) == "keel_from-env"
    assert discover_token(LOCAL, "keel_explicit") == "keel_explicit"
    assert discover_token(LOCAL, "") is None  # "" asks for no token at all


def test_another_host_never_gets_the_file_read(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[Path] = []
    original = Path.read_text

    def spy(path: Path, *args: str, **kwargs: str) -> str:
        read.append(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", spy)
    assert discover_token("http://keel.internal:8420") is None
    assert discover_token("https://10.0.0.5") is None
    assert read == []
    assert discover_token(LOCAL) == "keel_from-the-file"
    assert read == [home / ADMIN_TOKEN_FILE]


def test_the_default_data_dir_is_dot_keel_here_like_the_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEEL_HOME", raising=False)
    monkeypatch.delenv("KEEL_TOKEN", raising=False)
    assert discover_token(LOCAL) is None  # no file: no token
    (tmp_path / ".keel").mkdir()
    (tmp_path / ".keel" / ADMIN_TOKEN_FILE).write_text("keel_in-dot-keel\n")
    assert discover_token(LOCAL) == "keel_in-dot-keel"
    assert admin_token_path().resolve() == Settings.load(env={}).data_dir / ADMIN_TOKEN_FILE


def test_an_empty_or_unreadable_file_means_no_token(home: Path) -> None:
    (home / ADMIN_TOKEN_FILE).write_text("\n")
    assert discover_token(LOCAL) is None
    (home / ADMIN_TOKEN_FILE).unlink()
    (home / ADMIN_TOKEN_FILE).mkdir()  # not a file at all
    assert discover_token(LOCAL) is None


def test_the_client_authenticates_with_the_discovered_token(
    home: Path, server_transport: httpx.BaseTransport, admin_token: str
) -> None:
    (home / ADMIN_TOKEN_FILE).write_text(admin_token + "\n")
    with Client(url=LOCAL, transport=server_transport) as local:
        assert local.whoami().name == "admin"
        assert admin_token not in repr(local)
    # The same server under a name that is not loopback: the file stays unread, no token is sent.
    with (
        Client(url="http://keel.internal:8420", transport=server_transport) as remote,
        pytest.raises(Unauthenticated) as refused,
    ):
        remote.whoami()
    assert admin_token not in str(refused.value)


def test_the_token_stays_out_of_reprs_and_errors(
    home: Path, server_transport: httpx.BaseTransport, admin_token: str
) -> None:
    with Client(url=LOCAL, token="keel_wrong", transport=server_transport) as client:
        assert "keel_wrong" not in repr(client)
        with pytest.raises(Unauthenticated) as refused:
            client.whoami()
    assert "keel_wrong" not in str(refused.value)
    assert "keel_wrong" not in repr(refused.value.details)


def test_keel_up_s_note_finds_the_token_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`keel up --data-dir D --port P` notes D for P; a CLI run elsewhere, without KEEL_HOME,
    finds D's token for that port and only that port."""
    from keel.config import remember_local_server

    served = tmp_path / "srv"
    served.mkdir()
    (served / ADMIN_TOKEN_FILE).write_text("keel_from-srv\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("KEEL_HOME", raising=False)
    monkeypatch.delenv("KEEL_TOKEN", raising=False)
    assert discover_token("http://127.0.0.1:9000") is None
    import os

    remember_local_server(os.environ, 9000, served)
    assert discover_token("http://127.0.0.1:9000") == "keel_from-srv"
    assert discover_token("http://localhost:9000/") == "keel_from-srv"
    assert discover_token("http://127.0.0.1:9001") is None  # another port: ./.keel, empty here
    assert discover_token("https://keel.example.org:9000") is None  # never another host
    monkeypatch.setenv("KEEL_HOME", str(elsewhere))
    assert discover_token("http://127.0.0.1:9000") is None  # an explicit KEEL_HOME wins
