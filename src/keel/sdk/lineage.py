"""Where a model came from: the git checkout it was trained in and the Python environment."""

from __future__ import annotations

import importlib.metadata
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from keel.schemas import EnvironmentSpec

_COMMIT = re.compile(r"[0-9a-f]{7,64}")
_MAX_TEXT = 256  # the wire format's ShortText limit
_GIT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class GitState:
    """The checkout a model was trained in; every field is None outside a git work tree."""

    commit: str | None = None
    repo_url: str | None = None
    dirty: bool | None = None


def _git(args: list[str], cwd: Path | None) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # git is not installed, or hung
    return done.stdout if done.returncode == 0 else None


def strip_credentials(url: str) -> str:
    """The remote URL without any ``user:password@`` (or token) part: lineage is not a secret.

    >>> strip_credentials("https://bob:s3cret@git.example.com/team/churn.git")
    'https://git.example.com/team/churn.git'
    >>> strip_credentials("git@git.example.com:team/churn.git")
    'git@git.example.com:team/churn.git'
    """
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        # scp-like "git@host:path" names an SSH login, never a password.
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def capture_git(cwd: Path | None = None) -> GitState:
    """Commit, origin URL (credentials stripped) and dirty flag of the checkout at ``cwd``."""
    inside = _git(["rev-parse", "--is-inside-work-tree"], cwd)
    if inside is None or inside.strip() != "true":
        return GitState()
    head = (_git(["rev-parse", "HEAD"], cwd) or "").strip()
    remote = (_git(["remote", "get-url", "origin"], cwd) or "").strip()
    url = strip_credentials(remote) if remote else None
    # Untracked files count as dirty: a new, uncommitted training script or config changes what
    # the commit alone would reproduce.
    status = _git(["status", "--porcelain"], cwd)
    return GitState(
        commit=head if _COMMIT.fullmatch(head) else None,
        repo_url=url if url is not None and len(url) <= _MAX_TEXT else None,
        dirty=None if status is None else bool(status.strip()),
    )


def capture_environment() -> EnvironmentSpec:
    """This interpreter's Python version and installed distributions (name -> version)."""
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        version = dist.version
        # The first one found wins, as it does for imports: sys.path order.
        if name and version and name not in packages and len(name) <= _MAX_TEXT:
            packages[name] = version[:_MAX_TEXT]
    return EnvironmentSpec(
        python_version=platform.python_version(),
        packages=dict(sorted(packages.items(), key=lambda item: item[0].lower())),
    )
