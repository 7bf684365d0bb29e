"""Usage errors are one line on stderr naming the option and the fix, and exit 1 (README)."""

from __future__ import annotations

import pytest
from tests.cli.conftest import Keel

_PROFILE = ("profiles", "build", "--input", "x.parquet", "--model", "churn", "--version", "1")


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("alerts", "create", "churn", "--threshold", "1e309"), "'--threshold'"),
        (("alerts", "create", "churn", "--threshold", "-inf"), "'--threshold'"),
        (("alerts", "create", "churn", "--threshold", "nan"), "'--threshold'"),
        (("alerts", "create", "churn", "--threshold", "high"), "'--threshold'"),
        (("slo", "create", "churn", "--objective", "1e999"), "'--objective'"),
        (("slo", "create", "churn", "--objective", "0.99", "--latency-ms", "inf"), "--latency-ms"),
        (("monitor", "create", "churn", "--bogus"), "--bogus"),
        (("monitor", "create"), "'model'"),
        (("monitor", "delete", "one"), "'monitor_id'"),
        (("docs", "export", "churn", "--format", "pdf"), "'--format'"),
        (("no-such-command",), "no-such-command"),
        ((*_PROFILE, "--as", "window"), "'--at'"),
        ((*_PROFILE, "--as", "window", "--at", "noon"), "'--at'"),
        ((*_PROFILE, "--at", "2026-05-01T13:00Z"), "'--at'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_1(
    keel_cli: Keel, args: tuple[str, ...], names: str
) -> None:
    result = keel_cli(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and names in lines[0], lines[0]
    assert "--help' for usage." in lines[0]
    assert "Traceback" not in result.output
