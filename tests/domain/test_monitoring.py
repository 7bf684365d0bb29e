"""Monitor definitions: windows, the schedule's due-time, thresholds and verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from keel.domain.monitoring import (
    Check,
    Direction,
    DriftOverride,
    Monitor,
    MonitorChanges,
    Schedule,
    Status,
    Thresholds,
    Window,
    check_drift_columns,
    due_windows,
    next_due,
    parse_checks,
    verdict,
    worst,
)
from keel.errors import InvalidInput


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


# -- windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "minutes", "name"),
    [("hourly", 60, "hourly"), ("Daily", 1440, "daily"), ("360", 360, "360m"), (120, 120, "120m")],
)
def test_windows_by_name_or_minutes(given: str | int, minutes: int, name: str) -> None:
    window = Window.parse(given)
    assert (window.minutes, window.name) == (minutes, name)


@pytest.mark.parametrize("given", ["weekly", "90", 0, 30, 50_000, "-60"])
def test_a_bad_window_is_refused_naming_the_field(given: str | int) -> None:
    with pytest.raises(InvalidInput) as caught:
        Window.parse(given)
    assert caught.value.details["field"] == "window"
    assert "hourly" in caught.value.message or "multiple of 60" in caught.value.message


def test_windows_align_to_the_utc_epoch() -> None:
    assert Window(60).last_complete(at(13, 59)) == (at(12), at(13))
    assert Window(1440).last_complete(at(0, 1, day=2)) == (at(0, day=1), at(0, day=2))
    six_hours = Window(360)
    assert six_hours.last_complete(at(13, 0)) == (at(6), at(12))
    # A time given in another zone lands on the same UTC boundaries.
    plus_two = at(13, 30).astimezone(timezone(timedelta(hours=2)))
    assert Window(60).floor(plus_two) == at(13)


# -- schedule ----------------------------------------------------------------------------------


def test_a_new_monitor_is_due_for_the_newest_settled_window_only() -> None:
    schedule = Schedule(delay_minutes=5)
    # 12:03: the 11-12 window has not settled (5 minutes of grace), so 10-11 is the newest.
    assert due_windows(Window(60), schedule, None, at(12, 3)) == [(at(10), at(11))]
    assert due_windows(Window(60), schedule, None, at(12, 5)) == [(at(11), at(12))]


def test_nothing_is_due_until_the_next_window_settles() -> None:
    schedule = Schedule(delay_minutes=5)
    assert due_windows(Window(60), schedule, at(12), at(12, 30)) == []
    assert next_due(Window(60), schedule, at(12), at(12, 30)) == at(13, 5)
    assert due_windows(Window(60), schedule, at(12), at(13, 5)) == [(at(12), at(13))]
    assert next_due(Window(60), schedule, at(12), at(13, 5)) == at(13, 5)


def test_a_monitor_that_fell_behind_catches_up_oldest_first_within_the_backlog() -> None:
    due = due_windows(Window(60), Schedule(delay_minutes=0), at(5), at(9, 10))
    assert due == [(at(5), at(6)), (at(6), at(7)), (at(7), at(8)), (at(8), at(9))]
    capped = due_windows(Window(60), Schedule(delay_minutes=0), at(0), at(23), max_backlog=3)
    # The three newest missed windows; older gaps are left to a manual run.
    assert capped == [(at(20), at(21)), (at(21), at(22)), (at(22), at(23))]


def test_daily_windows_run_after_midnight_plus_the_delay() -> None:
    schedule = Schedule(delay_minutes=30)
    daily = Window(1440)
    assert next_due(daily, schedule, at(0, day=2), at(10, day=2)) == at(0, 30, day=3)
    assert due_windows(daily, schedule, at(0, day=2), at(0, 30, day=3)) == [
        (at(0, day=2), at(0, day=3))
    ]


def test_a_manual_only_monitor_is_never_due() -> None:
    off = Schedule(enabled=False)
    assert due_windows(Window(60), off, None, at(12)) == []
    assert next_due(Window(60), off, None, at(12)) is None


def test_schedule_delay_is_bounded() -> None:
    with pytest.raises(InvalidInput) as caught:
        Schedule(delay_minutes=-1)
    assert caught.value.details["field"] == "schedule.delay_minutes"


# -- thresholds and verdicts -------------------------------------------------------------------


def test_thresholds_round_trip_through_json() -> None:
    thresholds = Thresholds.from_dict(
        {
            "drift": {"income": {"method": "psi", "threshold": 0.2}},
            "drift_share": 0.3,
            "quality": {"out_of_range_share": 0.01},
            "performance": {"roc_auc": 0.75, "mae": 3.0},
            "fairness": {"min_disparate_impact": 0.9, "min_group_size": 50},
            "operations": {"latency_p95_ms": 250, "error_rate": 0.02},
        }
    )
    assert thresholds.drift["income"] == DriftOverride("psi", 0.2)
    assert thresholds.quality.out_of_range_share == 0.01
    assert thresholds.quality.missing_rate_change == 0.1  # default kept
    assert thresholds.fairness.min_group_size == 50
    assert Thresholds.from_dict(thresholds.to_dict()) == thresholds


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"drift": {"x": {"method": "magic"}}}, "thresholds.drift.x.method"),
        ({"drift": {"x": {"threshold": -1}}}, "thresholds.drift.x.threshold"),
        ({"drift": {"x": {"methd": "ks"}}}, "thresholds.drift.x.methd"),
        ({"drift_share": 0}, "thresholds.drift_share"),
        ({"performance": {"accuracy": "high"}}, "thresholds.performance.accuracy"),
        ({"performance": {"vibes": 1.0}}, "thresholds.performance.vibes"),
        ({"quality": {"missing_rate_change": -0.5}}, "thresholds.quality.missing_rate_change"),
        ({"fairness": {"min_group_size": 0}}, "thresholds.fairness.min_group_size"),
        ({"operations": {"latency_p99": 100}}, "thresholds.operations.latency_p99"),
        ({"latency": {}}, "thresholds.latency"),
    ],
)
def test_bad_thresholds_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Thresholds.from_dict(raw)
    assert caught.value.details["field"] == field
    assert field.split(".")[-1] in caught.value.message


def test_drift_overrides_must_fit_the_columns_kind() -> None:
    kinds = {"income": "numeric", "plan": "categorical"}
    check_drift_columns(Thresholds(drift={"plan": DriftOverride("psi")}), kinds)
    with pytest.raises(InvalidInput, match="chi_square") as caught:
        check_drift_columns(Thresholds(drift={"income": DriftOverride("chi_square")}), kinds)
    assert caught.value.details["field"] == "thresholds.drift.income.method"
    with pytest.raises(InvalidInput, match="income, plan"):
        check_drift_columns(Thresholds(drift={"age": DriftOverride("psi")}), kinds)


def test_verdicts_alert_past_the_limit_and_warn_close_to_it() -> None:
    assert verdict(0.5, 0.8, Direction.MIN) == Status.ALERT
    assert verdict(0.85, 0.8, Direction.MIN) == Status.WARNING
    assert verdict(0.9, 0.8, Direction.MIN) == Status.OK
    assert verdict(300.0, 250.0, Direction.MAX) == Status.ALERT
    assert verdict(240.0, 250.0, Direction.MAX) == Status.WARNING
    assert verdict(100.0, None, Direction.MAX) == Status.OK
    assert verdict(float("nan"), 1.0, Direction.MAX) == Status.NO_DATA
    assert worst([Status.OK, Status.ALERT, Status.NO_DATA]) == Status.ALERT
    assert worst([]) == Status.OK


# -- monitors ----------------------------------------------------------------------------------


def test_monitor_validation_names_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        Monitor(model="churn", checks=())
    assert caught.value.details["field"] == "checks"
    with pytest.raises(InvalidInput) as caught:
        Monitor(model="churn", version=0)
    assert caught.value.details["field"] == "version"
    with pytest.raises(InvalidInput, match="drift, quality") as caught:
        parse_checks(["drift", "latency"])
    assert parse_checks(["Drift", "fairness"]) == (Check.DRIFT, Check.FAIRNESS)


def test_changing_the_window_starts_a_new_series() -> None:
    monitor = Monitor(model="churn", last_window_end=at(12))
    assert MonitorChanges(thresholds=Thresholds(drift_share=0.2)).apply(monitor).last_window_end
    changed = MonitorChanges(window=Window(1440)).apply(monitor)
    assert changed.window.name == "daily" and changed.last_window_end is None
    following = MonitorChanges(clear_version=True).apply(Monitor(model="churn", version=3))
    assert following.version is None
