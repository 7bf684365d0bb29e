"""The tables people see for value, DORA and maturity, rendered as a terminal would show them."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from rich.console import Console
from typer.testing import Result

from keel.cli.delivery import dora_view
from keel.cli.maturity import distribution_view, score_view
from keel.cli.value import roi_table, value_model_view
from keel.schemas.delivery import DoraOut
from keel.schemas.maturity import MaturityOut
from keel.schemas.value import MonthRoiOut, ValueModelOut

Keel = Callable[..., Result]


def rendered(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=120)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def test_views_show_what_the_json_says(keel_cli: Keel) -> None:
    def run(*args: str) -> Any:
        result = keel_cli(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    run("teams", "create", "risk")
    run("models", "create", "churn", "--team", "risk", "--owner", "ana", "--json")
    value = ValueModelOut.model_validate(
        run("value", "set", "churn", "--kind", "declared", "--monthly", "900", "--json")
    )
    assert "declared value model in EUR (monthly 900)" in rendered(value_model_view(value))
    months = [
        MonthRoiOut.model_validate(m)
        for m in run("value", "roi", "churn", "--from", "2026-11", "--json")
    ]
    table = rendered(roi_table(months))
    assert "900.00" in table and "unknown" in table
    dora = DoraOut.model_validate(run("dora", "--team", "risk", "--json"))
    assert "Deployment frequency" in rendered(dora_view(dora))
    scores = [MaturityOut.model_validate(s) for s in run("maturity", "--json")]
    assert "Google level 0/2" in rendered(score_view(scores[0]))
    assert "churn" in rendered(distribution_view(scores))
