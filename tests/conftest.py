"""Shared fixtures. Keep this file small: put the logic in helper modules next to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests import pg_cluster


@pytest.fixture(autouse=True)
def _apart_from_the_developers_keel(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the Keel of the person running the suite: the README's `./scripts/up.sh`
    leaves an admin token in the clone's ./.keel, and KEEL_TOKEN/KEEL_URL may be exported; the
    SDK and CLI would pick either up. Tests that want a data dir or token set their own."""
    monkeypatch.setenv("KEEL_HOME", str(tmp_path_factory.mktemp("keel-home")))
    # `keel up` notes its data directory per port under $XDG_STATE_HOME/keel: not the developer's.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
    for name in ("KEEL_TOKEN", "KEEL_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a real PostgreSQL server (maintenance database ``postgres``).

    ``$KEEL_TEST_DATABASE_URL`` if set, else a throwaway cluster for this session; skips (or fails
    with ``KEEL_REQUIRE_POSTGRES=1``) when neither is possible. See ``tests/pg_cluster.py``.
    """
    with pg_cluster.session_postgres_url() as url:
        yield url


@pytest.fixture
def postgres_database_url(postgres_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a brand-new empty database, dropped after the test."""
    with pg_cluster.fresh_database(postgres_url) as url:
        yield url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say in the log how the real-PostgreSQL tests ended, so a skipped run cannot pass unseen."""
    counts: dict[str, int] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if "postgres" in getattr(report, "keywords", {}) and report.when in ("call", "setup"):
                if outcome == "passed" and report.when != "call":
                    continue
                counts[outcome] = counts.get(outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items()) or "none ran"
    terminalreporter.write_line(f"PostgreSQL tests: {summary}")
