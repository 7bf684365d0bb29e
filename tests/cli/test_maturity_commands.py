"""`keel maturity` and `keel maturity attest` as a person and a script run them."""

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


def test_maturity_of_a_new_model_and_an_attestation(keel_cli: Keel, churn: str) -> None:
    [score] = json.loads(ok(keel_cli("maturity", "--model", churn, "--json")).stdout)
    assert (score["google"]["level"], score["microsoft"]["level"]) == (0, 0)
    registered = next(c for c in score["criteria"] if c["id"] == "versions_registered")
    assert registered["status"] == "missing"
    assert registered["next_step"] == "keel versions register MODEL FILE"
    ok(keel_cli("maturity", "attest", "ci_tests", "--comment", "CI on push", "--team", "risk"))
    [team] = json.loads(ok(keel_cli("maturity", "--team", "risk", "--json")).stdout)
    ci = next(c for c in team["criteria"] if c["id"] == "ci_tests")
    assert ci["status"] == "attested" and ci["evidence"][0]["note"] == "CI on push"
    everything = json.loads(ok(keel_cli("maturity", "--json")).stdout)
    assert [(s["scope"], s["subject"]) for s in everything] == [
        ("model", "churn"),
        ("team", "risk"),
    ]


def test_an_observed_criterion_cannot_be_attested(keel_cli: Keel, churn: str) -> None:
    refused = keel_cli("maturity", "attest", "monitoring", "--comment", "yes", "--model", churn)
    assert refused.exit_code == 1
    assert "decided from Keel's records" in refused.output
