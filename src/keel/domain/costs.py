"""Money, FOCUS vocabulary and the rules that split a cost pool between models.

Money is kept in integer micro-units (a millionth of the currency unit) everywhere below the wire,
and shown as `Decimal`; never as a float, so sums come out exact.

>>> split_evenly_by_weight(100, {"a": 1, "b": 1, "c": 1})
{'a': 34, 'b': 33, 'c': 33}
>>> micros_to_decimal(1_250_000)
Decimal('1.25')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum

from keel.errors import InvalidInput

MICROS = 1_000_000
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")

# The columns Keel reads from every FOCUS 1.0-1.2 export; each is mandatory in all three versions.
REQUIRED_COLUMNS = (
    "BilledCost",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "EffectiveCost",
    "ServiceName",
)
DATETIME_COLUMNS = (
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
)
# Every column FOCUS 1.0, 1.1 or 1.2 defines. Anything else must carry the `x_` prefix the
# specification reserves for custom columns.
FOCUS_COLUMNS = frozenset(
    {
        *REQUIRED_COLUMNS,
        "AvailabilityZone",
        "BillingAccountId",
        "BillingAccountName",
        "BillingAccountType",
        "CapacityReservationId",
        "CapacityReservationStatus",
        "ChargeClass",
        "ChargeDescription",
        "ChargeFrequency",
        "CommitmentDiscountCategory",
        "CommitmentDiscountId",
        "CommitmentDiscountName",
        "CommitmentDiscountQuantity",
        "CommitmentDiscountStatus",
        "CommitmentDiscountType",
        "CommitmentDiscountUnit",
        "ConsumedQuantity",
        "ConsumedUnit",
        "ContractedCost",
        "ContractedUnitPrice",
        "InvoiceId",
        "InvoiceIssuerName",
        "ListCost",
        "ListUnitPrice",
        "PricingCategory",
        "PricingCurrency",
        "PricingCurrencyContractedUnitPrice",
        "PricingCurrencyEffectiveCost",
        "PricingCurrencyListUnitPrice",
        "PricingQuantity",
        "PricingUnit",
        "ProviderName",
        "PublisherName",
        "RegionId",
        "RegionName",
        "ResourceId",
        "ResourceName",
        "ResourceType",
        "ServiceCategory",
        "ServiceSubcategory",
        "SkuId",
        "SkuMeter",
        "SkuPriceDetails",
        "SkuPriceId",
        "SubAccountId",
        "SubAccountName",
        "SubAccountType",
        "Tags",
    }
)
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
DEFAULT_MODEL_TAG = "keel-model"
DEFAULT_TEAM_TAG = "keel-team"
DEFAULT_POOL = "*"  # the rule for every pool that has none of its own


class SplitRule(StrEnum):
    """How a pool of shared or untagged cost is divided between models."""

    PREDICTIONS = "predictions"  # in proportion to each model's predictions in the period
    COMPUTE_SECONDS = "compute_seconds"  # in proportion to serving compute-seconds
    EVEN = "even"  # the same share for every registered model


class AllocationSource(StrEnum):
    DIRECT = "direct"  # the row's tags named the model or team
    SPLIT = "split"  # a shared pool divided by its rule
    UNALLOCATED = "unallocated"  # kept visible, never dropped


class BudgetScope(StrEnum):
    MODEL = "model"
    TEAM = "team"
    PORTFOLIO = "portfolio"


def parse_month(month: str, field_name: str = "month") -> tuple[date, date]:
    """The first day of ``month`` (YYYY-MM) and the first day of the next one.

    >>> parse_month("2026-12")
    (datetime.date(2026, 12, 1), datetime.date(2027, 1, 1))
    """
    found = _MONTH.fullmatch(month.strip()) if isinstance(month, str) else None
    if found is None:
        raise InvalidInput(
            f"The '{field_name}' field must be a month as YYYY-MM, e.g. 2026-11. Got {month!r}.",
            {"field": field_name},
        )
    year, number = int(found.group(1)), int(found.group(2))
    start = date(year, number, 1)
    end = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return start, end


def micros_to_decimal(micros: int) -> Decimal:
    """Micro-units as the amount, without trailing zeros or an exponent.

    >>> micros_to_decimal(400_000_000), micros_to_decimal(-10_500)
    (Decimal('400'), Decimal('-0.0105'))
    """
    value = (Decimal(micros) / MICROS).normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def decimal_to_micros(amount: Decimal | str | int, field_name: str = "amount") -> int:
    """An amount in the currency as integer micro-units (half-even at the sixth decimal)."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidInput(
            f"The '{field_name}' field must be a decimal amount, e.g. 1250.00. Got {amount!r}.",
            {"field": field_name},
        ) from None
    if not value.is_finite():
        raise InvalidInput(
            f"The '{field_name}' field must be a finite amount. Got {amount!r}.",
            {"field": field_name},
        )
    return int((value * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def cents(micros: int) -> Decimal:
    """Round micro-units to the cent (half-even), for display and comparisons "to the cent"."""
    return (Decimal(micros) / MICROS).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def split_evenly_by_weight(amount: int, weights: Mapping[str, int | float]) -> dict[str, int]:
    """Split ``amount`` micro-units in proportion to ``weights`` so the parts sum to it exactly.

    Largest-remainder (Hamilton) apportionment: each part is the floor of its exact share, and
    the micro-units left over go to the largest remainders (ties by name). A negative amount (a
    credit) is split as its absolute value and given back its sign. Weights must not all be 0.
    """
    positive = {k: w for k, w in weights.items() if w > 0}
    total_weight = sum(positive.values())
    if not positive or total_weight <= 0:
        raise ValueError("split needs at least one positive weight")
    sign = -1 if amount < 0 else 1
    whole = abs(amount)
    exact = {
        k: Decimal(whole) * Decimal(str(w)) / Decimal(str(total_weight))
        for k, w in positive.items()
    }
    parts = {k: int(v) for k, v in exact.items()}
    left = whole - sum(parts.values())
    for key in sorted(exact, key=lambda k: (-(exact[k] - parts[k]), k))[:left]:
        parts[key] += 1
    return {k: sign * v for k, v in sorted(parts.items())}


@dataclass(frozen=True)
class Allocation:
    """One share of a period's cost: to a model (and its team), to a team, or unallocated."""

    model: str | None
    team: str | None
    pool: str
    source: AllocationSource
    micros: int
    reason: str = ""

    @property
    def amount(self) -> Decimal:
        return micros_to_decimal(self.micros)


@dataclass(frozen=True)
class CostImport:
    id: int
    sha256: str
    filename: str
    file_format: str
    rows: int
    effective_micros: int
    first_day: date | None
    last_day: date | None
    imported_by: str
    replayed: bool = False


@dataclass(frozen=True)
class UnitPrices:
    """What Keel charges for its own work; all 0 by default, so metering adds nothing unless an
    admin sets prices (a bill may already hold the machines Keel runs on)."""

    vcpu_hour_micros: int = 0
    gpu_hour_micros: int = 0
    gb_month_micros: int = 0
    per_thousand_predictions_micros: int = 0

    def as_dict(self) -> dict[str, Decimal]:
        return {
            "vcpu_hour": micros_to_decimal(self.vcpu_hour_micros),
            "gpu_hour": micros_to_decimal(self.gpu_hour_micros),
            "gb_month": micros_to_decimal(self.gb_month_micros),
            "per_thousand_predictions": micros_to_decimal(self.per_thousand_predictions_micros),
        }


@dataclass(frozen=True)
class MeteredCost:
    """One of Keel's own cost rows: what a model version used on a day, at the unit prices."""

    day: date
    model: str
    version: int | None
    team: str
    # predictions | serving_compute | evaluation | retraining | artifact_storage |
    # telemetry_storage
    kind: str
    quantity: Decimal
    unit: str
    micros: int


@dataclass(frozen=True)
class Budget:
    id: int
    scope: BudgetScope
    target: str  # model or team name; "" for the portfolio
    amount_micros: int
    thresholds: tuple[int, ...]
    created_by: str

    @property
    def name(self) -> str:
        return "portfolio" if self.scope == BudgetScope.PORTFOLIO else f"{self.scope}:{self.target}"


@dataclass(frozen=True)
class Forecast:
    """Month-end spend: what is spent so far plus the forecast of the days left."""

    method: str
    point: Decimal
    low: Decimal
    high: Decimal
    backtest_mape: float | None  # percent, on the held-out days; None with too little history
    history_days: int


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    month: str
    spent: Decimal
    forecast: Forecast
    thresholds_crossed: tuple[int, ...]
    forecast_over_budget: bool
    alerts: tuple[str, ...] = field(default_factory=tuple)

    @property
    def amount(self) -> Decimal:
        return micros_to_decimal(self.budget.amount_micros)


def check_thresholds(thresholds: object) -> tuple[int, ...]:
    """Percentages of the budget, 1 to 1000, each once; default 50, 80, 100."""
    if thresholds is None:
        return (50, 80, 100)
    if not isinstance(thresholds, list | tuple) or not thresholds:
        raise InvalidInput(
            "The 'thresholds' field must be a list of percentages, e.g. [50, 80, 100].",
            {"field": "thresholds"},
        )
    out: set[int] = set()
    for value in thresholds:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise InvalidInput(
                f"Each threshold must be a whole percentage from 1 to 1000. Got {value!r} instead.",
                {"field": "thresholds"},
            )
        out.add(value)
    return tuple(sorted(out))
