"""The pure parts of deployments: plan files, analysis verdicts under Argo's limits, state moves,
and sticky routing (story 7)."""

from __future__ import annotations

from typing import Any

import pytest

from keel.domain.deployments import (
    AnalysisCounts,
    AnalysisLimits,
    ArmFigure,
    Check,
    DeploymentState,
    Metric,
    Move,
    Outcome,
    Strategy,
    Verdict,
    decide,
    judge_check,
    parse_plan,
    transition,
)
from keel.domain.traffic import Arm, ArmName, RouteKey, RouteKeySource, ServingPlan, pick_arm
from keel.errors import Conflict, InvalidInput

STEP = {"weight": 10, "minDuration": "1m", "checks": [{"metric": "error_rate", "absolute": 0.02}]}


def test_a_plan_file_reads_into_steps_checks_limits_and_a_route_key() -> None:
    plan = parse_plan(
        Strategy.CANARY,
        {
            "steps": [
                STEP,
                {
                    "weight": 50,
                    "minRequests": 500,
                    "checks": [
                        {"metric": "latency_p99_ms", "relative": 0.25},
                        {"metric": "live_accuracy", "relative": 0.05},
                    ],
                },
            ],
            "analysis": {"interval": "15s", "failureLimit": 1, "inconclusiveLimit": 2},
            "routeKey": {"header": "X-Customer-Id"},
        },
    )
    assert [s.weight for s in plan.steps] == [0.1, 0.5]
    assert plan.steps[0].min_duration_s == 60.0 and plan.steps[1].min_requests == 500
    assert plan.steps[1].checks[0] == Check(Metric.LATENCY_P99_MS, 0.25, relative=True)
    assert plan.analysis == AnalysisLimits(15.0, 1, 2, 4, 20)
    assert plan.route_key == RouteKey(RouteKeySource.HEADER, "X-Customer-Id")
    assert parse_plan(Strategy.CANARY, plan.to_dict(Strategy.CANARY)) == plan


def test_no_plan_file_gives_each_strategy_its_default() -> None:
    canary = parse_plan(Strategy.CANARY, None)
    assert [s.weight for s in canary.steps] == [0.1, 0.5]
    assert parse_plan(Strategy.SHADOW, None).mirror == 1.0
    assert parse_plan(Strategy.BLUE_GREEN, {"keepBlueSeconds": "5m"}).keep_blue_s == 300.0


@pytest.mark.parametrize(
    ("strategy", "document", "field"),
    [
        (Strategy.CANARY, [], "plan"),
        (Strategy.CANARY, {"stepz": []}, "stepz"),
        (Strategy.CANARY, {"steps": []}, "steps"),
        (Strategy.CANARY, {"steps": [{"minDuration": 60}]}, "steps[0].weight"),
        (Strategy.CANARY, {"steps": [{"weight": 0, "minDuration": 60}]}, "steps[0].weight"),
        (Strategy.CANARY, {"steps": [{"weight": 101, "minDuration": 60}]}, "steps[0].weight"),
        (Strategy.CANARY, {"steps": [{"weight": "10", "minDuration": 60}]}, "steps[0].weight"),
        (Strategy.CANARY, {"steps": [{"weight": 10}]}, "steps[0]"),
        (
            Strategy.CANARY,
            {"steps": [{"weight": 10, "minDuration": "soon"}]},
            "steps[0].minDuration",
        ),
        (Strategy.CANARY, {"steps": [{"weight": 10, "minRequests": 0}]}, "steps[0].minRequests"),
        (Strategy.CANARY, {"steps": [STEP, STEP]}, "steps[1].weight"),
        (
            Strategy.CANARY,
            {"steps": [{**STEP, "checks": [{"metric": "vibes", "absolute": 1}]}]},
            "steps[0].checks[0].metric",
        ),
        (
            Strategy.CANARY,
            {"steps": [{**STEP, "checks": [{"metric": "error_rate"}]}]},
            "steps[0].checks[0]",
        ),
        (
            Strategy.CANARY,
            {"steps": [{**STEP, "checks": [{"metric": "error_rate", "absolute": -1}]}]},
            "steps[0].checks[0].absolute",
        ),
        (
            Strategy.CANARY,
            {"steps": [{**STEP, "checks": [{"metric": "prediction_drift", "relative": 0.1}]}]},
            "steps[0].checks[0].relative",
        ),
        (Strategy.CANARY, {"analysis": {"failureLimit": -1}}, "analysis.failureLimit"),
        (Strategy.CANARY, {"analysis": {"interval": "0s"}}, "analysis.interval"),
        (
            Strategy.CANARY,
            {"analysis": {"consecutiveErrorLimit": 1.5}},
            "analysis.consecutiveErrorLimit",
        ),
        (Strategy.CANARY, {"routeKey": {"cookie": "id"}}, "routeKey"),
        (Strategy.CANARY, {"strategy": "shadow"}, "strategy"),
        (Strategy.SHADOW, {"steps": [STEP]}, "steps"),
        (Strategy.SHADOW, {"mirrorPercent": 0}, "mirrorPercent"),
        (Strategy.CANARY, {"mirrorPercent": 50}, "mirrorPercent"),
        (Strategy.DIRECT, {"keepBlueSeconds": 60}, "keepBlueSeconds"),
        (Strategy.BLUE_GREEN, {"smokeTest": "yes"}, "smokeTest"),
    ],
)
def test_a_bad_plan_names_the_field_and_the_fix(
    strategy: Strategy, document: Any, field: str
) -> None:
    with pytest.raises(InvalidInput) as bad:
        parse_plan(strategy, document)
    assert bad.value.details == {"field": field}
    assert bad.value.message.startswith(f"The plan's '{field}'")


def test_checks_judge_absolute_and_relative_thresholds_in_the_metric_s_direction() -> None:
    ceiling = Check(Metric.ERROR_RATE, 0.02)
    assert judge_check(ceiling, ArmFigure(0.01, 100), ArmFigure(0.0, 100), 20).verdict == (
        Verdict.SUCCESSFUL
    )
    assert judge_check(ceiling, ArmFigure(0.03, 100), ArmFigure(0.0, 100), 20).verdict == (
        Verdict.FAILED
    )
    slower = judge_check(
        Check(Metric.LATENCY_P99_MS, 0.25, relative=True),
        ArmFigure(13.0, 100),
        ArmFigure(10.0, 100),
        20,
    )
    assert (slower.verdict, slower.bound) == (Verdict.FAILED, 12.5)
    worse = judge_check(
        Check(Metric.LIVE_ACCURACY, 0.05, relative=True),
        ArmFigure(0.80, 100),
        ArmFigure(0.90, 100),
        20,
    )
    assert worse.verdict == Verdict.FAILED and worse.bound == pytest.approx(0.855)
    floor = Check(Metric.LIVE_ACCURACY, 0.7)
    assert judge_check(floor, ArmFigure(0.75, 50), ArmFigure(0.9, 50), 20).verdict == (
        Verdict.SUCCESSFUL
    )


def test_an_absolute_check_judges_the_canary_alone_a_relative_one_needs_stable() -> None:
    alone = judge_check(Check(Metric.ERROR_RATE, 0.05), ArmFigure(0.0, 50), ArmFigure(None, 0), 20)
    assert alone.verdict == Verdict.SUCCESSFUL
    relative = Check(Metric.ERROR_RATE, 0.5, relative=True)
    assert judge_check(relative, ArmFigure(0.0, 50), ArmFigure(None, 0), 20).verdict == (
        Verdict.INCONCLUSIVE
    )


def test_too_few_rows_is_inconclusive_and_missing_labels_skip_live_checks() -> None:
    few = judge_check(Check(Metric.ERROR_RATE, 0.02), ArmFigure(0.5, 5), ArmFigure(0.0, 500), 20)
    assert few.verdict == Verdict.INCONCLUSIVE
    unlabelled = judge_check(
        Check(Metric.LIVE_ACCURACY, 0.05, relative=True), ArmFigure(None, 0), ArmFigure(None, 0), 20
    )
    assert unlabelled.verdict == Verdict.SKIPPED


def run(
    verdicts: list[Verdict], limits: AnalysisLimits, *, step_done: bool = True
) -> list[Outcome]:
    counts, outcomes = AnalysisCounts(), []
    for verdict in verdicts:
        outcome, counts = decide(counts, verdict, limits, step_done=step_done)
        outcomes.append(outcome)
    return outcomes


def test_failure_limit_aborts_after_more_than_that_many_failures() -> None:
    assert run([Verdict.FAILED], AnalysisLimits(failure_limit=0)) == [Outcome.ABORT]
    limits = AnalysisLimits(failure_limit=2)
    assert run([Verdict.FAILED] * 3, limits, step_done=False) == [
        Outcome.WAIT,
        Outcome.WAIT,
        Outcome.ABORT,
    ]


def test_inconclusive_limit_pauses_and_only_counts_once_the_step_is_done() -> None:
    limits = AnalysisLimits(inconclusive_limit=1)
    assert run([Verdict.INCONCLUSIVE] * 5, limits, step_done=False) == [Outcome.WAIT] * 5
    assert run([Verdict.INCONCLUSIVE] * 2, limits) == [Outcome.WAIT, Outcome.PAUSE]


def test_consecutive_error_limit_counts_errors_in_a_row_only() -> None:
    limits = AnalysisLimits(consecutive_error_limit=2)
    in_a_row = [Verdict.ERROR, Verdict.ERROR, Verdict.ERROR]
    assert run(in_a_row, limits, step_done=False) == [Outcome.WAIT, Outcome.WAIT, Outcome.ABORT]
    broken = [Verdict.ERROR, Verdict.ERROR, Verdict.SUCCESSFUL, Verdict.ERROR, Verdict.ERROR]
    assert run(broken, limits, step_done=False) == [Outcome.WAIT] * 5


def test_a_success_advances_only_once_the_step_s_minimums_are_met() -> None:
    assert run([Verdict.SUCCESSFUL], AnalysisLimits(), step_done=False) == [Outcome.WAIT]
    assert run([Verdict.SUCCESSFUL], AnalysisLimits()) == [Outcome.ADVANCE]


def test_moves_follow_the_state_machine() -> None:
    state = transition(Strategy.CANARY, DeploymentState.PROGRESSING, Move.PAUSE)
    assert transition(Strategy.CANARY, state, Move.RESUME) == DeploymentState.PROGRESSING
    assert transition(Strategy.CANARY, state, Move.ABORT) == DeploymentState.ABORTED
    with pytest.raises(Conflict, match="has finished"):
        transition(Strategy.CANARY, DeploymentState.ABORTED, Move.RESUME)
    with pytest.raises(Conflict, match="cannot resume"):
        transition(Strategy.CANARY, DeploymentState.PROGRESSING, Move.RESUME)
    with pytest.raises(Conflict, match="cannot be promoted"):
        transition(Strategy.SHADOW, DeploymentState.PROGRESSING, Move.PROMOTE)


@pytest.mark.parametrize("weight", [0.1, 0.25, 0.5])
def test_sticky_routing_sends_each_key_to_one_arm_and_splits_by_weight(weight: float) -> None:
    """Story 7: 10,000 keys, each always reaches the same arm; the split is within 1.5 points."""
    plan = ServingPlan(
        "credit",
        (Arm(ArmName.STABLE, 1, 1 - weight), Arm(ArmName.CANARY, 2, weight)),
        route_key=RouteKey(RouteKeySource.HEADER, "X-Customer-Id"),
    )
    keys = [f"customer-{i}" for i in range(10_000)]
    first = [pick_arm(plan, key, 0.0).name for key in keys]
    # Again, with different draws: a keyed request ignores the draw.
    again = [pick_arm(plan, key, 0.999).name for key in keys]
    assert first == again
    share = first.count(ArmName.CANARY) / len(keys)
    assert abs(share - weight) <= 0.015
