"""`keel report` writes the month's report as Markdown, offline HTML or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

Keel = Callable[..., Result]


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def test_report_in_each_format(keel_cli: Keel, tmp_path: Path) -> None:
    ok(keel_cli("teams", "create", "risk"))
    ok(keel_cli("models", "create", "churn", "--team", "risk", "--owner", "ana"))
    markdown = ok(keel_cli("report", "--month", "2026-11")).stdout
    assert markdown.startswith("# Keel executive report, 2026-11")
    assert "| portfolio cost |" in markdown  # no bill imported: the costs service says 0
    page = tmp_path / "report.html"
    ok(keel_cli("report", "--month", "2026-11", "--format", "html", "-o", str(page)))
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    data = json.loads(ok(keel_cli("report", "--month", "2026-11", "--json")).stdout)
    assert data["maturity"]["google"] == {"0": 1} and float(data["costs"]["total"]) == 0


def test_a_bad_month_or_format_is_refused(keel_cli: Keel) -> None:
    refused = keel_cli("report", "--month", "2026-13")
    assert refused.exit_code == 1 and "YYYY-MM" in refused.output
    pdf = keel_cli("report", "--month", "2026-11", "--format", "pdf")
    assert pdf.exit_code != 0 and "choose html, md or json" in pdf.output
