"""Which API token a client sends when the caller names none.

In order: the ``token`` argument; ``$KEEL_TOKEN``; and, only for a server on this machine (a
loopback address or ``localhost``), the first admin's token that ``keel up`` wrote to
``<data dir>/admin-token``. The data directory is ``$KEEL_HOME`` when set; else the one that
``keel up`` on that port said it serves (noted in ``~/.local/state/keel/local-servers.json``,
so the CLI works from any directory and with ``keel up --data-dir``); else ``./.keel``. The file
is never read for any other host: its token must not travel over the network to another machine.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from keel.config import ADMIN_TOKEN_FILE, data_dir_from, local_server_data_dir

# Settings.load's default; tests/sdk/test_credentials.py checks the two agree.


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine: 127.0.0.0/8, ::1 or localhost.

    >>> is_loopback("http://127.0.0.1:8420"), is_loopback("http://[::1]:8420")
    (True, True)
    >>> is_loopback("http://localhost:8420"), is_loopback("https://keel.internal")
    (True, False)
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def admin_token_path(env: Mapping[str, str] | None = None) -> Path:
    """``<data dir>/admin-token``, where the first ``keel up`` leaves the admin's token."""
    env = os.environ if env is None else env
    return data_dir_from(env) / ADMIN_TOKEN_FILE


def _read_token(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        # Missing or not ours to read: send no token and let the server say what it needs.
        return None
    return text.strip() or None


def discover_token(
    url: str, token: str | None = None, env: Mapping[str, str] | None = None
) -> str | None:
    """The token to send to ``url``, or None to send none (see the module's docstring).

    An explicit ``token`` always wins; ``""`` means "send none" and skips the lookup.
    """
    if token is not None:
        return token or None
    env = os.environ if env is None else env
    from_env = env.get("KEEL_TOKEN")
    if from_env:
        return from_env
    if not is_loopback(url):
        return None
    if not env.get("KEEL_HOME"):
        served = local_server_data_dir(env, _port(url))
        if served is not None:
            found = _read_token(served / ADMIN_TOKEN_FILE)
            if found:
                return found
    return _read_token(admin_token_path(env))


def _port(url: str) -> int:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return port or (443 if parts.scheme == "https" else 80)
