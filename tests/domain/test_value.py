"""Value models: every kind of bad input is refused naming the field and the fix."""

from __future__ import annotations

import pytest

from keel.domain.value import months_between, parse_value_model
from keel.errors import InvalidInput

MATRIX = {"kind": "classification", "tp": 40, "fp": -5, "tn": 0, "fn": -60}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"kind": "profit"}, "kind"),
        ({}, "kind"),
        ({"kind": "classification", "tp": 1, "fp": 1, "tn": 1}, "fn"),
        ({**MATRIX, "tp": "lots"}, "tp"),
        ({**MATRIX, "tp": True}, "tp"),
        ({**MATRIX, "fn": float("nan")}, "fn"),
        ({**MATRIX, "fn": 1e13}, "fn"),
        ({**MATRIX, "currency": "euro"}, "currency"),
        ({**MATRIX, "monthly": 5}, "monthly"),
        ({"kind": "regression", "per_prediction": 1, "per_unit_error": -1}, "per_unit_error"),
        (
            {"kind": "declared", "monthly": 5, "expected_monthly_value": "x"},
            "expected_monthly_value",
        ),
    ],
)
def test_a_bad_value_model_is_refused_naming_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_value_model("churn", raw)
    assert refused.value.details["field"] == field
    assert repr(field) in refused.value.message


def test_each_kind_keeps_its_own_amounts() -> None:
    parsed = parse_value_model(
        "m", {"kind": "regression", "per_prediction": 2, "per_unit_error": 0}
    )
    assert parsed.amounts == {"per_prediction": 2.0, "per_unit_error": 0.0}
    assert parsed.currency == "EUR" and parsed.expected_monthly_value is None


@pytest.mark.parametrize(("first", "last"), [("2026-05", "2026-04"), ("2016-01", "2026-12")])
def test_a_month_range_runs_forwards_and_is_bounded(first: str, last: str) -> None:
    with pytest.raises(InvalidInput, match="months must run forwards"):
        months_between(first, last)
