"""The demo portfolio's data, made in code from fixed seeds: nothing is downloaded.

Every model of the demo (`keel.sdk.demo`) scores people or payments from three numeric features;
its rows come from `rows`, its month of live traffic from `traffic` and the month's bill from
`focus_bill`. The random numbers depend only on the seeds, never on the dates: ``as_of`` only
places the same numbers in time, so two runs with different ``--as-of`` dates show the same
portfolio shifted in time.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

SEED = 20261130
LABEL = "label"
GROUP = "group"


@dataclass(frozen=True)
class Feature:
    name: str
    mean: float
    sd: float
    weight: float  # its pull on the label, per standard deviation


@dataclass(frozen=True)
class Dataset:
    """How one model's rows are made: three features, and a protected group when ``fairness``."""

    features: tuple[Feature, Feature, Feature]
    fairness: bool = False

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.features]


def rows(data: Dataset, rng: np.random.Generator, n: int, *, shift: float = 0.0) -> pd.DataFrame:
    """``n`` labelled rows; ``shift`` moves the first two features by that many standard
    deviations (a drift episode) without changing how the label depends on them."""
    z = rng.normal(size=(n, 3))
    z[:, :2] += shift
    frame = pd.DataFrame({f.name: f.mean + f.sd * z[:, i] for i, f in enumerate(data.features)})
    logit = sum(f.weight * z[:, i] for i, f in enumerate(data.features))
    if data.fairness:
        group = rng.choice(np.array(["a", "b"]), size=n)
        frame[GROUP] = group
    frame[LABEL] = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return frame


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def traffic(
    data: Dataset,
    rng: np.random.Generator,
    days: Sequence[date],
    per_day: int,
    *,
    drifting: Iterable[date] = (),
    prefix: str,
) -> pd.DataFrame:
    """A day-by-day stream of scored requests (features, timestamps, latency, a few errors) and
    their true labels; the label column is split off by the caller, who scores the rows."""
    drifted = set(drifting)
    frames = []
    for day in days:
        n = int(per_day * rng.uniform(0.8, 1.2))
        frame = rows(data, rng, n, shift=1.6 if day in drifted else 0.0)
        offsets = np.sort(rng.uniform(9 * 3600, 17 * 3600, n))  # open from 09:00 to 17:00
        frame.insert(0, "ts", [day_start(day) + timedelta(seconds=float(s)) for s in offsets])
        frame["latency_ms"] = rng.gamma(2.0, 9.0, n)
        frame["error"] = ["timeout" if failed else None for failed in rng.random(n) < 0.004]
        frames.append(frame)
    stream = pd.concat(frames, ignore_index=True)
    stream.insert(0, "prediction_id", [f"{prefix}-{i:06d}" for i in range(len(stream))])
    return stream


@dataclass(frozen=True)
class Spend:
    """What a model costs a day, in dollars, tagged to it on the bill."""

    model: str
    team: str
    daily: float


def _stamp(moment: date) -> str:
    return f"{moment.isoformat()}T00:00:00Z"


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def focus_bill(spend: Sequence[Spend], days: Sequence[date], seed: int = SEED) -> str:
    """A FOCUS 1.0 billing export (CSV) over ``days``: a row a day per model (tagged), a shared
    GPU cluster nobody tagged (split by a rule) and data transfer nobody claims (unallocated)."""
    rng = np.random.default_rng(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "BilledCost",
            "BillingCurrency",
            "BillingPeriodStart",
            "BillingPeriodEnd",
            "ChargeCategory",
            "ChargePeriodStart",
            "ChargePeriodEnd",
            "EffectiveCost",
            "ServiceName",
            "Tags",
        ]
    )

    def charge(day: date, amount: float, service: str, tags: dict[str, str]) -> None:
        cost = str(Decimal(f"{amount:.2f}"))
        period = (_stamp(_month_start(day)), _stamp(_next_month(day)))
        charged = (_stamp(day), _stamp(day + timedelta(days=1)))
        writer.writerow([cost, "USD", *period, "Usage", *charged, cost, service, json.dumps(tags)])

    for day in days:
        for item in spend:
            amount = item.daily * rng.uniform(0.85, 1.15) * (1.25 if day.weekday() < 5 else 0.8)
            charge(day, amount, "Compute", {"keel-model": item.model, "keel-team": item.team})
        charge(day, 96.0 * rng.uniform(0.9, 1.1), "GPU cluster", {})
        charge(day, 11.0 * rng.uniform(0.5, 1.5), "Data transfer", {})
    return out.getvalue()
