"""`keel demo`'s refusals, before anything is written: a bad --as-of and an unreachable server.
(The seeding itself runs against a real `keel up` in tests/web/test_dashboard_browser.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from keel.cli.main import app

NOWHERE = ["--url", "http://127.0.0.1:9", "--token", "s3cret"]


@pytest.mark.parametrize(
    ("as_of", "says"),
    [
        ("yesterday", "is not a date"),
        ("2026-13-01", "is not a date"),
        ((datetime.now(UTC).date() + timedelta(days=2)).isoformat(), "is in the future"),
    ],
)
def test_an_as_of_that_is_not_a_past_date_names_the_option(as_of: str, says: str) -> None:
    result = CliRunner().invoke(app, [*NOWHERE, "demo", "--as-of", as_of])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert "--as-of" in line and says in line, line
    assert result.stdout == ""


def test_an_unreachable_server_says_so_and_how_to_start_one() -> None:
    result = CliRunner().invoke(app, [*NOWHERE, "demo", "--as-of", "2026-03-01"])
    assert result.exit_code == 1
    assert "Could not reach the Keel server at http://127.0.0.1:9" in result.stderr
    assert "keel up" in result.stderr and "s3cret" not in result.output
    assert "Demo portfolio seeded" not in result.stdout
