"""Alert rules decide fire / hold / clear from a series' newest windows, and refuse bad
definitions naming the field; the incident lifecycle allows only its moves; MTTA/MTTR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keel.domain.alerts import AlertRule, Comparison, Decision, decide, default_rules, parse_rule
from keel.domain.incidents import (
    Incident,
    IncidentStatus,
    Severity,
    check_transition,
    response_times,
)
from keel.domain.monitoring import Check, MetricPoint, Monitor, Status
from keel.errors import IllegalTransition, InvalidInput

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def window(i: int, *values: tuple[float | None, Status]) -> list[MetricPoint]:
    end = T0 + (i + 1) * HOUR
    return [
        MetricPoint("churn", 1, end - HOUR, end, Check.DRIFT, "income", "psi", v, 0.2, s)
        for v, s in values
    ]


PSI = AlertRule("churn", "psi", Check.DRIFT, Comparison.GT, 0.25, windows=3, metric="psi")


@pytest.mark.parametrize(
    ("series", "decision"),
    [
        ([], Decision.HOLD),
        ([[(0.3, Status.ALERT)], [(0.3, Status.ALERT)]], Decision.HOLD),  # 2 of 3 windows
        ([[(0.3, Status.ALERT)]] * 3, Decision.FIRE),
        ([[(0.3, Status.ALERT)], [(0.1, Status.OK)], [(0.3, Status.ALERT)]], Decision.HOLD),
        ([[(0.3, Status.ALERT)]] * 3 + [[(0.1, Status.OK)]], Decision.CLEAR),
        ([[(0.3, Status.ALERT)]] * 3 + [[(None, Status.NO_DATA)]], Decision.HOLD),  # no data
        ([[(0.25, Status.ALERT)]] * 3, Decision.CLEAR),  # > is strict
    ],
)
def test_decide_needs_n_consecutive_breaching_windows(
    series: list[list[tuple[float | None, Status]]], decision: Decision
) -> None:
    assert decide(PSI, [window(i, *w) for i, w in enumerate(series)]) == decision


def test_status_rules_follow_the_monitor_verdict() -> None:
    rule = AlertRule("churn", "drift", Check.DRIFT, windows=1)
    assert decide(rule, [window(0, (0.1, Status.WARNING))]) == Decision.CLEAR
    assert decide(rule, [window(0, (0.1, Status.ALERT))]) == Decision.FIRE


def test_default_rules_per_monitor_check() -> None:
    monitor = Monitor(
        model="churn", name="live", checks=(Check.DRIFT, Check.QUALITY, Check.FAIRNESS)
    )
    rules = {r.name: r for r in default_rules(monitor)}
    assert set(rules) == {"live-drift", "live-fairness"}
    assert (rules["live-drift"].windows, rules["live-drift"].severity) == (2, Severity.P3)
    assert rules["live-fairness"].metric == "disparate_impact"
    assert all(r.auto_resolve and r.comparison == Comparison.STATUS for r in rules.values())


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "x", "check": "drift", "colour": "red"}, "r.colour"),
        ({"name": "x", "check": "weather"}, "r.check"),
        ({"name": "x", "check": "drift", "comparison": ">"}, "r.threshold"),
        ({"name": "x", "check": "drift", "threshold": 1}, "r.threshold"),
        ({"name": "x", "check": "drift", "severity": "P9"}, "r.severity"),
        ({"name": "x", "check": "drift", "windows": 0}, "r.windows"),
        ({"name": "x", "check": "drift", "auto_resolve": "yes"}, "r.auto_resolve"),
        ({"check": "drift"}, "r.name"),
    ],
)
def test_parse_rule_names_the_bad_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_rule("churn", spec, "r")
    assert refused.value.details["field"] == field


def test_lifecycle_moves() -> None:
    check_transition(IncidentStatus.TRIGGERED, IncidentStatus.RESOLVED)
    check_transition(IncidentStatus.ACKNOWLEDGED, IncidentStatus.RESOLVED)
    with pytest.raises(IllegalTransition) as refused:
        check_transition(IncidentStatus.ACKNOWLEDGED, IncidentStatus.TRIGGERED)
    assert refused.value.details["allowed"] == ["resolved"]


def test_mtta_and_mttr_by_hand() -> None:
    def incident(ack_min: int | None, res_min: int | None) -> Incident:
        return Incident(
            1,
            "k",
            "churn",
            1,
            None,
            "t",
            Severity.P2,
            IncidentStatus.RESOLVED,
            {},
            None,
            None,
            "ana",
            T0,
            None if ack_min is None else T0 + timedelta(minutes=ack_min),
            None if res_min is None else T0 + timedelta(minutes=res_min),
            "",
        )

    times = response_times([incident(5, 60), incident(15, 120), incident(None, None)])
    assert times.mtta_seconds == 600.0  # (5 + 15) / 2 minutes
    assert times.mttr_seconds == 5400.0  # (60 + 120) / 2 minutes
    assert (times.incidents, times.acknowledged, times.resolved) == (3, 2, 2)
