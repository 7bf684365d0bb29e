"""`keel value set|show|roi` as a person and a script run them."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from typer.testing import Result

Keel = Callable[..., Result]


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def churn(keel_cli: Keel) -> str:
    ok(keel_cli("teams", "create", "risk"))
    ok(keel_cli("models", "create", "churn", "--team", "risk", "--owner", "ana"))
    return "churn"


def test_value_set_show_and_roi(keel_cli: Keel, churn: str) -> None:
    shown = ok(
        keel_cli(
            "value", "set", churn, "--kind", "classification", "--tp", "40", "--fp", "-5",
            "--tn", "0", "--fn", "-60", "--expected-monthly-value", "12000", "--json",
        )
    )  # fmt: skip
    assert json.loads(shown.stdout)["amounts"] == {"tp": 40, "fp": -5, "tn": 0, "fn": -60}
    again = json.loads(ok(keel_cli("value", "show", churn, "--json")).stdout)
    assert again["expected_monthly_value"] == 12000
    months = json.loads(
        ok(keel_cli("value", "roi", churn, "--from", "2026-10", "--to", "2026-11")).stdout
    )
    assert [m["month"] for m in months] == ["2026-10", "2026-11"]
    # No bill imported and no labelled predictions: the costs service reports 0, and ROI stays
    # undefined (never -100% or 0%).
    assert all(float(m["cost"]) == 0 and m["roi"] is None for m in months)


def test_a_bad_value_model_names_the_option(keel_cli: Keel, churn: str) -> None:
    refused = keel_cli("value", "set", churn, "--kind", "classification", "--tp", "1")
    assert refused.exit_code == 1
    assert "'fp'" in refused.output
    assert "no value model" in keel_cli("value", "show", churn).output
