"""`keel dora` as a person and a script run it."""

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


def test_dora_as_json_and_as_a_table(keel_cli: Keel, churn: str) -> None:
    metrics = json.loads(ok(keel_cli("dora", "--model", churn, "--json")).stdout)
    assert (metrics["scope"], metrics["deployment_count"], metrics["frequency"]) == (
        "model churn",
        0,
        "Yearly",
    )
    assert metrics["change_failure_rate"] is None and metrics["deployments"] == []
    refused = keel_cli("dora", "--model", churn, "--team", "risk")
    assert refused.exit_code == 1 and "not both" in refused.output
