"""Burn-rate arithmetic against hand-computed cases (Google SRE workbook, "Alerting on SLOs").

Burn rate = error rate / (1 - objective). With a 99.9% objective the budget is 0.1% = 0.001.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keel.domain.slo import (
    BURN_RULES,
    AlertAction,
    Counts,
    Slo,
    SloKind,
    budget_remaining,
    burn_rate,
    check_definition,
    evaluate_rules,
    status_of,
    windows_needed,
)
from keel.errors import InvalidInput

H, M, D = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)
SLO = Slo(1, "churn", "availability", SloKind.AVAILABILITY, 0.999, 30, None, "ana",
          datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip


def test_burn_rate_by_hand() -> None:
    # 15 errors in 1000 requests: 0.015 / 0.001 = 15.0
    assert burn_rate(Counts(1000, 15), 0.999) == pytest.approx(15.0)
    # 99% objective, 3 bad of 200: 0.015 / 0.01 = 1.5
    assert burn_rate(Counts(200, 3), 0.99) == pytest.approx(1.5)
    # no traffic burns nothing
    assert burn_rate(Counts(0, 0), 0.999) == 0.0


def test_budget_remaining_by_hand() -> None:
    # 1,000,000 requests at 99.9% allow 1000 bad; 250 bad leaves 1 - 250/1000 = 0.75
    assert budget_remaining(Counts(1_000_000, 250), 0.999) == pytest.approx(0.75)
    # 1500 bad overspends: 1 - 1500/1000 = -0.5
    assert budget_remaining(Counts(1_000_000, 1500), 0.999) == pytest.approx(-0.5)
    assert budget_remaining(Counts(0, 0), 0.999) == 1.0


def _counts(**rates: tuple[int, int]) -> dict[timedelta, Counts]:
    """Counts per window; every window not named is 10,000 requests with none bad."""
    names = {"m5": 5 * M, "m30": 30 * M, "h1": H, "h6": 6 * H, "d3": 3 * D, "d30": 30 * D}
    out = {w: Counts(10_000, 0) for w in (*windows_needed(), 30 * D)}
    for name, (total, bad) in rates.items():
        out[names[name]] = Counts(total, bad)
    return out


def test_fast_burn_pages_only_when_both_windows_exceed_14_4() -> None:
    # 1h: 150 bad of 10,000 = 1.5% -> 0.015 / 0.001 = 15.0 > 14.4
    # 5m: 20 bad of 1,000 = 2% -> 20.0 > 14.4  => page (P1)
    firing = status_of(SLO, SLO.created_at, _counts(h1=(10_000, 150), m5=(1_000, 20))).firing
    assert firing is not None and firing.rule.action == AlertAction.PAGE
    assert firing.rule.severity == "P1"
    assert firing.long_burn == pytest.approx(15.0) and firing.short_burn == pytest.approx(20.0)

    # Same hour, but the last 5 minutes are clean (the problem stopped): 0 < 14.4 => no page
    cleared = status_of(SLO, SLO.created_at, _counts(h1=(10_000, 150), m5=(1_000, 0)))
    assert cleared.firing is None

    # 1h at exactly 14.4 (144 bad of 10,000): "exceed" is strict => no page
    exact = evaluate_rules(_counts(h1=(10_000, 144), m5=(1_000, 20)), 0.999)
    assert exact[0].long_burn == pytest.approx(14.4) and not exact[0].firing


def test_slow_burn_pages_at_6_over_6h_and_30m() -> None:
    # 6h: 70 bad of 10,000 = 0.7% -> 7.0 > 6;  30m: 8 bad of 1,000 = 0.8% -> 8.0 > 6
    # (1h and 5m stay clean, so the 14.4 rule does not fire) => page P2
    firing = status_of(SLO, SLO.created_at, _counts(h6=(10_000, 70), m30=(1_000, 8))).firing
    assert firing is not None and firing.rule == BURN_RULES[1] and firing.rule.severity == "P2"
    assert firing.long_burn == pytest.approx(7.0) and firing.short_burn == pytest.approx(8.0)


def test_ticket_at_1_over_3d_and_6h() -> None:
    # 3d: 15 bad of 10,000 = 0.15% -> 1.5 > 1;  6h: 12 bad of 10,000 -> 1.2 > 1 (< 6)
    # => ticket (P4)
    firing = status_of(SLO, SLO.created_at, _counts(d3=(10_000, 15), h6=(10_000, 12))).firing
    assert firing is not None and firing.rule.action == AlertAction.TICKET
    assert firing.rule.severity == "P4"
    # 3d burning at 1.5 but 6h at 0.5 (5 of 10,000): the short window says it stopped
    assert status_of(SLO, SLO.created_at, _counts(d3=(10_000, 15), h6=(10_000, 5))).firing is None


def test_status_reports_the_slo_window_budget() -> None:
    # 30d: 2,000,000 requests, 500 bad: budget 2000, 1 - 500/2000 = 0.75
    status = status_of(SLO, SLO.created_at, _counts(d30=(2_000_000, 500)))
    assert status.budget_remaining == pytest.approx(0.75)
    assert [r.firing for r in status.rules] == [False, False, False]


def test_definitions_are_validated_naming_the_field() -> None:
    assert check_definition("latency", 0.99, 28, 250.0) == SloKind.LATENCY
    for args, field in [
        (("uptime", 0.99, 30, None), "'kind'"),
        (("availability", 1.0, 30, None), "'objective'"),
        (("availability", 0.99, 7, None), "'window_days'"),
        (("latency", 0.99, 30, None), "'latency_threshold_ms'"),
        (("availability", 0.99, 30, 100.0), "'latency_threshold_ms'"),
    ]:
        with pytest.raises(InvalidInput, match=field):
            check_definition(*args)
