"""A model's value model: what one prediction, or one month, is worth in the currency.

Three kinds, checked in `parse_value_model`:

* ``classification``: a value matrix, the value of each true positive, false positive, true
  negative and false negative (a cost is a negative value). The positive class is 1.
* ``regression``: ``per_prediction`` earned by each prediction, less ``per_unit_error`` for each
  unit of absolute error ``|prediction - label|``.
* ``declared``: a ``monthly`` value someone vouches for, when no label can price a prediction.

``expected_monthly_value`` is the business case: what the model was expected to earn a month
when it was proposed; ROI is shown next to it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from keel.errors import InvalidInput

MATRIX_CELLS = ("tp", "fp", "tn", "fn")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Bigger than any honest value of one prediction or month; beyond it floats lose the cents.
MAX_AMOUNT = 1e12


class ValueKind(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    DECLARED = "declared"


_FIELDS: Mapping[ValueKind, tuple[str, ...]] = {
    ValueKind.CLASSIFICATION: MATRIX_CELLS,
    ValueKind.REGRESSION: ("per_prediction", "per_unit_error"),
    ValueKind.DECLARED: ("monthly",),
}


@dataclass(frozen=True)
class ValueModel:
    """How Keel prices a model's predictions; ``amounts`` holds the kind's fields."""

    model: str
    kind: ValueKind
    currency: str
    amounts: Mapping[str, float]
    expected_monthly_value: float | None = None
    updated_by: str = ""
    updated_at: datetime | None = None


def _amount(raw: Mapping[str, Any], field: str, *, required: bool) -> float | None:
    value = raw.get(field)
    if value is None:
        if required:
            raise InvalidInput(
                f"The value model needs {field!r}: a number in the currency (negative for a cost).",
                {"field": field},
            )
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(
            f"The value model's {field!r} must be a number in the currency. Got {value!r}.",
            {"field": field},
        )
    number = float(value)
    if not math.isfinite(number) or abs(number) > MAX_AMOUNT:
        raise InvalidInput(
            f"The value model's {field!r} must be a finite number no bigger than "
            f"{MAX_AMOUNT:.0e} in size. Got {value!r}.",
            {"field": field},
        )
    return number


def parse_value_model(model: str, raw: Mapping[str, Any]) -> ValueModel:
    """Check a value model sent by a user; every refusal names the field and the fix.

    >>> parse_value_model("churn", {"kind": "declared", "monthly": 5000}).amounts
    {'monthly': 5000.0}
    >>> parse_value_model("churn", {"kind": "regression", "per_prediction": 1})
    Traceback (most recent call last):
    ...
    keel.errors.InvalidInput: The value model needs 'per_unit_error': ...
    """
    kind_raw = raw.get("kind")
    try:
        kind = ValueKind(str(kind_raw))
    except ValueError:
        raise InvalidInput(
            f"The value model's 'kind' must be one of {', '.join(k.value for k in ValueKind)}. "
            f"Got {kind_raw!r}.",
            {"field": "kind", "allowed": [k.value for k in ValueKind]},
        ) from None
    currency = raw.get("currency", "EUR")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise InvalidInput(
            f"The value model's 'currency' must be an ISO 4217 code such as EUR or USD. "
            f"Got {currency!r}.",
            {"field": "currency"},
        )
    known = {"kind", "currency", "expected_monthly_value", *_FIELDS[kind]}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidInput(
            f"A {kind.value} value model has no field {unknown[0]!r}; its fields are "
            f"{', '.join(_FIELDS[kind])} (and currency, expected_monthly_value).",
            {"field": unknown[0], "allowed": sorted(known)},
        )
    amounts = {f: _amount(raw, f, required=True) for f in _FIELDS[kind]}
    if kind is ValueKind.REGRESSION and (amounts["per_unit_error"] or 0.0) < 0:
        raise InvalidInput(
            "The value model's 'per_unit_error' is what one unit of absolute error costs, so it "
            f"must be 0 or more. Got {amounts['per_unit_error']!r}.",
            {"field": "per_unit_error"},
        )
    expected = _amount(raw, "expected_monthly_value", required=False)
    return ValueModel(
        model=model,
        kind=kind,
        currency=currency,
        amounts={k: float(v or 0.0) for k, v in amounts.items()},
        expected_monthly_value=expected,
    )


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The UTC start of ``month`` (YYYY-MM) and of the next one; refuses anything else.

    >>> [d.isoformat() for d in month_bounds("2026-12")]
    ['2026-12-01T00:00:00+00:00', '2027-01-01T00:00:00+00:00']
    """
    match = re.fullmatch(r"(\d{4})-(\d{2})", month or "")
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise InvalidInput(
            f"The month must be written YYYY-MM, for example 2026-11. Got {month!r}.",
            {"field": "month"},
        )
    year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=UTC)
    return start, end


MAX_MONTHS = 120


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (YYYY-MM, both included), at most 120.

    >>> months_between("2026-11", "2027-02")
    ['2026-11', '2026-12', '2027-01', '2027-02']
    """
    start, _ = month_bounds(first)
    end, _ = month_bounds(last)
    count = (end.year - start.year) * 12 + end.month - start.month + 1
    if not 1 <= count <= MAX_MONTHS:
        raise InvalidInput(
            f"The months must run forwards, from {first!r} to a month no more than "
            f"{MAX_MONTHS} months later. Got {first!r} to {last!r}.",
            {"field": "to", "from": first, "to": last},
        )
    return [
        f"{start.year + (start.month - 1 + i) // 12:04d}-{(start.month - 1 + i) % 12 + 1:02d}"
        for i in range(count)
    ]
