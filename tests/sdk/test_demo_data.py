"""The demo's data comes from fixed seeds: ``as_of`` moves it in time and changes no number."""

from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
import pandas as pd

from keel.sdk.demo import MODELS
from keel.sdk.demo_data import SEED, Spend, focus_bill, traffic


def _days(end: date) -> list[date]:
    return [end - timedelta(days=3 - i) for i in range(3)]


def test_traffic_is_the_same_numbers_whatever_the_dates() -> None:
    data = MODELS[2].data
    early = traffic(data, np.random.default_rng(SEED), _days(date(2026, 3, 1)), 50, prefix="m")
    late = traffic(data, np.random.default_rng(SEED), _days(date(2026, 11, 30)), 50, prefix="m")
    numbers = [*data.columns, "latency_ms", "label"]
    pd.testing.assert_frame_equal(early[numbers], late[numbers])
    shift = pd.Timestamp("2026-11-30", tz="UTC") - pd.Timestamp("2026-03-01", tz="UTC")
    assert (late["ts"] - early["ts"]).eq(shift).all()


def test_a_drift_episode_moves_the_features_on_its_days_only() -> None:
    data, days = MODELS[2].data, _days(date(2026, 11, 30))
    stream = traffic(data, np.random.default_rng(SEED), days, 400, drifting=days[-1:], prefix="m")
    last = stream["ts"].dt.date == days[-1]
    first = data.features[0]
    before = (stream.loc[~last, first.name].mean() - first.mean) / first.sd
    during = (stream.loc[last, first.name].mean() - first.mean) / first.sd
    assert abs(before) < 0.2 and during > 1.2


def test_the_bill_is_focus_rows_that_only_the_dates_tell_apart() -> None:
    spend = [Spend("card-fraud", "fraud", 50.0)]
    march = pd.read_csv(io.StringIO(focus_bill(spend, _days(date(2026, 3, 4)))))
    week_later = pd.read_csv(io.StringIO(focus_bill(spend, _days(date(2026, 3, 11)))))
    assert list(march.columns[:3]) == ["BilledCost", "BillingCurrency", "BillingPeriodStart"]
    assert len(march) == 3 * 3  # a model, the GPU cluster and data transfer, each day
    assert set(march["ServiceName"]) == {"Compute", "GPU cluster", "Data transfer"}
    assert march["ChargePeriodStart"].iloc[0] == "2026-03-01T00:00:00Z"
    # Weekdays cost more than weekends: a week later, the same weekdays cost the same.
    assert (march["BilledCost"] > 0).all()
    assert march["BilledCost"].tolist() == week_later["BilledCost"].tolist()
    assert week_later["ChargePeriodStart"].iloc[0] == "2026-03-08T00:00:00Z"
