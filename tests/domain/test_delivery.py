"""DORA metrics on a scripted four-week history, checked by hand bucket by bucket.

The period is Mon 2026-09-07 to Mon 2026-10-05 (four ISO weeks). Deployments (promotions):

    churn v2  Tue 09-08 10:00, registered 09-07 10:00  lead 24 h
    churn v3  Tue 09-15 10:00, registered 09-14 22:00  lead 12 h  P1 incident #1 09-16 10:00,
              rolled back (v3 -> v2, #1) 09-16 12:00; #1 resolved 09-16 14:00
    churn v4  Wed 09-16 13:00, registered 09-16 11:00  lead 2 h   made while #1 was open: rework;
              a P1 on v4 09-25 is 9 days later, outside the 7-day window: not a failure
    fraud v1  Tue 09-22 10:00, registered 09-01 10:00  lead 504 h P3 incident #2: not a failure
    fraud v2  Tue 09-29 10:00, registered 09-28 10:00  lead 24 h  P2 incident #3 10-01, open
    price v1  Wed 09-30 10:00, registered 09-30 06:00  lead 4 h   (team pricing)
    churn v5  10-10, after the period: not counted
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keel.domain.delivery import (
    CanaryOutcome,
    DeliveryHistory,
    Deployment,
    IncidentRecord,
    Rollback,
    dora_metrics,
)

START, END = datetime(2026, 9, 7, tzinfo=UTC), datetime(2026, 10, 5, tzinfo=UTC)


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


TEAMS = {"churn": "risk", "fraud": "risk", "price": "pricing"}
DEPLOYMENTS = [
    Deployment("churn", "risk", 2, at(9, 8), at(9, 7), promotion_id=1),
    Deployment("churn", "risk", 3, at(9, 15), at(9, 14, 22), promotion_id=2),
    Deployment("churn", "risk", 4, at(9, 16, 13), at(9, 16, 11), promotion_id=4),
    Deployment("fraud", "risk", 1, at(9, 22), at(9, 1), promotion_id=5),
    Deployment("fraud", "risk", 2, at(9, 29), at(9, 28), promotion_id=6),
    Deployment("price", "pricing", 1, at(9, 30), at(9, 30, 6), promotion_id=7),
    Deployment("churn", "risk", 5, at(10, 10), at(10, 9), promotion_id=8),
]
HISTORY = DeliveryHistory(
    deployments=DEPLOYMENTS,
    rollbacks=[Rollback(1, "churn", 3, 2, at(9, 16, 12), incident_id=1)],
    incidents=[
        IncidentRecord(1, "churn", 3, "P1", at(9, 16), at(9, 16, 14)),
        IncidentRecord(2, "fraud", 1, "P3", at(9, 23), at(9, 24)),
        IncidentRecord(3, "fraud", 2, "P2", at(10, 1), None),
        IncidentRecord(4, "churn", 4, "P1", at(9, 25, 14), at(9, 25, 15)),
    ],
)


def scoped(model: str | None = None, team: str | None = None) -> DeliveryHistory:
    def keep(name: str) -> bool:
        return (model is None or name == model) and (team is None or TEAMS[name] == team)

    return DeliveryHistory(
        [d for d in HISTORY.deployments if keep(d.model)],
        [r for r in HISTORY.rollbacks if keep(r.model)],
        [i for i in HISTORY.incidents if keep(i.model)],
    )


def test_the_portfolio_by_hand() -> None:
    m = dora_metrics("portfolio", HISTORY, START, END)
    # Deployment days per ISO week: {09-08}, {09-15, 09-16}, {09-22}, {09-29, 09-30} = 1,2,1,2:
    # the median (1.5) is under 3, so not Daily; every week has one, so Weekly.
    assert [d.promotion_id for d in m.deployments] == [1, 2, 4, 5, 6, 7]
    assert (m.frequency, m.deployments_per_week) == ("Weekly", 1.5)
    # Lead times 2, 4, 12, 24, 24, 504 h: median 18 h < 24 h.
    assert (m.lead_time_hours, m.lead_time) == (18.0, "One day")
    # Failures: churn v3 (P1 #1) and fraud v2 (P2 #3); 2 of 6.
    assert [(f.deployment.promotion_id, f.cause) for f in m.failures] == [
        (2, "P1 incident"),
        (6, "P2 incident"),
    ]
    assert m.change_failure_rate == pytest.approx(1 / 3)
    assert m.change_failure == "16-45%"
    # #1 opened 10:00, rolled back 12:00 (before its 14:00 resolution): 2 h; #3 still open.
    assert [f.recovery_hours for f in m.failures] == [2.0, None]
    assert (m.recovery_hours, m.recovery) == (2.0, "One day")
    assert m.failures[0].rollback_id == 1 and m.failures[0].incident_id == 1
    # churn v4 went out while #1 was open.
    assert [d.promotion_id for d in m.rework] == [4]
    assert m.rework_rate == pytest.approx(1 / 6)
    assert m.commit_lead_time_hours is None  # lineage has no commit times here


def test_team_risk_by_hand() -> None:
    m = dora_metrics("team risk", scoped(team="risk"), START, END)
    # Days per week 1, 2, 1, 1: Weekly. Lead 2, 12, 24, 24, 504: median 24 h is not < 24 h.
    assert (len(m.deployments), m.frequency) == (5, "Weekly")
    assert (m.lead_time_hours, m.lead_time) == (24.0, "One week")
    assert (m.change_failure_rate, m.change_failure) == (0.4, "16-45%")


def test_model_churn_by_hand() -> None:
    m = dora_metrics("model churn", scoped(model="churn"), START, END)
    # Weeks 1, 2, 0, 0: medians 0.5 days and 0.5 weeks-with-one; September had 3 deployment
    # days, the 4 days of October none: median month 1.5 >= 1, so Monthly.
    assert m.frequency == "Monthly"
    assert (m.lead_time_hours, m.lead_time) == (12.0, "One day")
    assert m.change_failure_rate == pytest.approx(1 / 3) and m.change_failure == "16-45%"
    assert m.recovery_hours == 2.0 and m.rework_rate == pytest.approx(1 / 3)


def test_model_price_by_hand() -> None:
    m = dora_metrics("model price", scoped(model="price"), START, END)
    # One deployment in the last week: median week 0, median month (1, 0) 0.5: Yearly.
    assert (m.frequency, m.change_failure, m.lead_time) == ("Yearly", "0-15%", "One day")
    assert (m.recovery_hours, m.recovery) == (None, None)


def test_a_longer_failure_window_counts_the_late_p1() -> None:
    m = dora_metrics("model churn", scoped(model="churn"), START, END, failure_days=10)
    assert [f.deployment.version for f in m.failures] == [3, 4]
    assert m.failures[1].recovery_hours == 1.0


def test_an_empty_period_has_no_rates() -> None:
    m = dora_metrics("portfolio", HISTORY, at(11, 1), at(11, 8))
    assert (m.frequency, m.change_failure_rate, m.lead_time, m.rework_rate) == (
        "Yearly",
        None,
        None,
        None,
    )


def test_finished_canaries_count_once_serving_reports_them() -> None:
    history = DeliveryHistory(
        deployments=[],
        rollbacks=[],
        incidents=[],
        canaries=[
            CanaryOutcome(1, "churn", "risk", 7, at(9, 8), at(9, 8, 4), completed=True),
            CanaryOutcome(2, "churn", "risk", 7, at(9, 9), at(9, 8, 4), completed=False),
        ],
    )
    m = dora_metrics("model churn", history, START, END)
    assert [d.canary_id for d in m.deployments] == [1]
    assert [f.cause for f in m.failures] == ["aborted canary"]
    assert m.failures[0].recovery_hours == 24.0


def test_an_aborted_canary_no_deployment_covers_is_a_failed_deployment_of_its_own() -> None:
    history = DeliveryHistory(
        deployments=[],
        rollbacks=[],
        incidents=[],
        canaries=[
            CanaryOutcome(
                3,
                "churn",
                "risk",
                8,
                at(9, 10, 6),
                at(9, 9),
                completed=False,
                started_at=at(9, 10, 2),
            ),
        ],
    )
    m = dora_metrics("model churn", history, START, END)
    assert [(d.canary_id, d.at) for d in m.deployments] == [(3, at(9, 10, 2))]
    assert [(f.cause, f.recovery_hours) for f in m.failures] == [("aborted canary", 4.0)]
    assert m.lead_time_hours == 16.0
