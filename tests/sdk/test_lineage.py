"""Lineage captured from a real git checkout and the running interpreter."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from keel.sdk.lineage import GitState, capture_environment, capture_git, strip_credentials


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Ana", "-c", "user.email=ana@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "churn"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "remote", "add", "origin", "https://ana:hunter2@git.example.com/risk/churn.git")
    (repo / "train.py").write_text("print('training')\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def test_a_clean_checkout_records_commit_and_remote_without_credentials(checkout: Path) -> None:
    state = capture_git(checkout)
    assert state.commit == git(checkout, "rev-parse", "HEAD")
    assert state.repo_url == "https://git.example.com/risk/churn.git"
    assert "hunter2" not in repr(state)
    assert state.dirty is False


def test_the_working_directory_is_the_default(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(checkout)
    assert capture_git().commit == git(checkout, "rev-parse", "HEAD")


def test_a_modified_file_makes_it_dirty(checkout: Path) -> None:
    (checkout / "train.py").write_text("print('changed')\n")
    assert capture_git(checkout).dirty is True


def test_an_untracked_file_makes_it_dirty(checkout: Path) -> None:
    (checkout / "features.py").write_text("X = 1\n")
    assert capture_git(checkout).dirty is True


def test_outside_a_checkout_every_field_is_none(tmp_path: Path) -> None:
    assert capture_git(tmp_path) == GitState(commit=None, repo_url=None, dirty=None)


def test_without_git_installed_every_field_is_none(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(checkout / "no-bin-here"))
    assert capture_git(checkout) == GitState()


def test_a_checkout_without_a_remote_or_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert capture_git(tmp_path) == GitState(commit=None, repo_url=None, dirty=False)


@pytest.mark.parametrize(
    ("url", "stripped"),
    [
        ("https://ana:hunter2@git.example.com/r.git", "https://git.example.com/r.git"),
        ("https://ghp_token@git.example.com/r.git", "https://git.example.com/r.git"),
        ("https://git.example.com:8443/r.git", "https://git.example.com:8443/r.git"),
        ("ssh://git@git.example.com/r.git", "ssh://git.example.com/r.git"),
        ("git@git.example.com:team/r.git", "git@git.example.com:team/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
    ],
)
def test_credentials_are_stripped_from_remote_urls(url: str, stripped: str) -> None:
    assert strip_credentials(url) == stripped


def test_the_environment_lists_python_and_installed_packages() -> None:
    environment = capture_environment()
    assert environment.python_version == platform.python_version()
    assert environment.packages["scikit-learn"] == version("scikit-learn")
    assert environment.packages["numpy"] == version("numpy")
